"""``/openapi/v3`` (and its per group-version documents) and ``/openapi/v2``, generated.

kubectl reads these: ``kubectl explain`` walks the v3 document of the
resource's group-version; ``kubectl apply``/``create`` look in it for a
``fieldValidation`` parameter on the kind's PATCH operation and, when found,
leave validation to the server (``?fieldValidation=Strict``; see
:mod:`tests.kube.fields`), else validate on the client with v2.

Each document is built from what the server serves: the declared resources
(one path per list, object and subresource, each operation tagged with
``x-kubernetes-group-version-kind``), the schemas of custom resources from
their CRDs (named as the API server names them, ``dev.rekindle.v1alpha1.TrainingJob``,
``metadata`` as a reference to ``ObjectMeta``, and a ``…List`` kind), and the
built-in kinds from :mod:`tests.kube.core_schemas`; each document holds the
definitions its kinds refer to. v2 is the same, in Swagger 2.0's shape
(``#/definitions/…``, CRD schemas stripped as the API server strips them for
v2: no ``nullable``, no ``x-kubernetes-validations``, no ``anyOf``/``allOf``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kmock

from tests.kube import core_schemas, discovery
from tests.kube.store import Store

REF = core_schemas.REF_PREFIX
META_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object."
)
KIND_DESCRIPTION = "Kind is a string value representing the REST resource this object represents."
FIELD_VALIDATION = (
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH)"
    " containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default), Strict."
)
#: Query parameters of writing operations (name, description), as the API server lists them.
WRITE_PARAMETERS = (
    ("dryRun", "When present, indicates that modifications should not be persisted."),
    ("fieldManager", "A name associated with the actor or entity that is making these changes."),
    ("fieldValidation", FIELD_VALIDATION),
)
#: The patch types of a built-in kind's PATCH; a custom resource takes all but strategic merge
#: (kubectl picks a merge patch for it because its PATCH does not list strategic merge).
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
CUSTOM_PATCH_TYPES = PATCH_TYPES[:3]

Resource = tuple[kmock.resource, kmock.ResourceInfo]


def definition_name(group: str, version: str, kind: str) -> str:
    """A custom kind's definition name (group reversed): ``dev.rekindle.v1alpha1.TrainingJob``."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _property(ref: str, description: str) -> dict[str, Any]:
    return {"allOf": [{"$ref": REF + ref}], "description": description}


def crd_schemas(crd: Mapping[str, Any]) -> dict[tuple[str, str, str], tuple[str, dict[str, Any]]]:
    """Each served version's kind and list kind: ``(group, version, kind) -> (name, schema)``."""
    spec = crd.get("spec") or {}
    group, names = str(spec.get("group", "")), spec.get("names") or {}
    kind = str(names.get("kind", ""))
    list_kind = str(names.get("listKind") or f"{kind}List")
    found: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
    for served in spec.get("versions") or []:
        if not served.get("served", True):
            continue
        version = str(served["name"])
        schema = copy.deepcopy((served.get("schema") or {}).get("openAPIV3Schema") or {})
        schema.setdefault("type", "object")
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = {"type": "string", "description": API_VERSION_DESCRIPTION}
        properties["kind"] = {"type": "string", "description": KIND_DESCRIPTION}
        properties["metadata"] = _property(core_schemas.OBJECT_META, META_DESCRIPTION)
        schema["x-kubernetes-group-version-kind"] = [
            {"group": group, "kind": kind, "version": version}
        ]
        name = definition_name(group, version, kind)
        found[(group, version, kind)] = (name, schema)
        found[(group, version, list_kind)] = (
            definition_name(group, version, list_kind),
            {
                "type": "object",
                "description": f"{list_kind} is a list of {kind}",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string", "description": API_VERSION_DESCRIPTION},
                    "kind": {"type": "string", "description": KIND_DESCRIPTION},
                    "items": {"type": "array", "items": {"$ref": REF + name}},
                    "metadata": _property(core_schemas.LIST_META, META_DESCRIPTION),
                },
                "x-kubernetes-group-version-kind": [
                    {"group": group, "kind": list_kind, "version": version}
                ],
            },
        )
    return found


def custom_kind_schema(structural: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD version's schema as the server checks fields against it (``metadata``: ObjectMeta)."""
    properties = dict(structural.get("properties") or {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = _property(core_schemas.OBJECT_META, META_DESCRIPTION)
    return {**structural, "properties": properties}


def kind_schemas(crds: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], str]:
    """Every kind with a schema: ``(group, version, kind) -> definition name``."""
    found = dict(core_schemas.kinds())
    for crd in crds:
        found.update({gvk: name for gvk, (name, _) in crd_schemas(crd).items()})
    return found


def _parameters(names: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "description": text, "schema": {"type": "string"}}
        for name, text in names
    ]


def _operation(
    action: str, gvk: dict[str, str], schema: str | None, *, body: Sequence[str] = ()
) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": REF + schema}}} if schema else {}
    operation: dict[str, Any] = {
        "operationId": f"{action}{gvk['kind']}",
        "responses": {"200": {"description": "OK", "content": content}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body:
        operation["parameters"] = _parameters(WRITE_PARAMETERS)
        operation["requestBody"] = {
            "content": {media: {"schema": {"type": "object"}} for media in body},
            "required": True,
        }
    return operation


def resource_paths(
    resource: kmock.resource, info: kmock.ResourceInfo, schemas: Mapping[tuple[str, str, str], str]
) -> dict[str, dict[str, Any]]:
    """The paths of one resource (list, object, subresources) with their operations."""
    group, version, plural = str(resource.group), str(resource.version), str(resource.plural)
    kind = info.kind or plural.capitalize()
    gvk = {"group": group, "kind": kind, "version": version}
    own, listed = schemas.get((group, version, kind)), schemas.get((group, version, f"{kind}List"))
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    scope = f"{prefix}/namespaces/{{namespace}}" if info.namespaced else prefix
    verbs = set(info.verbs)
    patch_types = CUSTOM_PATCH_TYPES if Store.is_custom(resource) else PATCH_TYPES
    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation("list", gvk, listed)
    if "create" in verbs:
        collection["post"] = _operation("post", gvk, own, body=("application/json",))
    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = _operation("get", gvk, own)
    if "update" in verbs:
        item["put"] = _operation("put", gvk, own, body=("application/json",))
    if "patch" in verbs:
        item["patch"] = _operation("patch", gvk, own, body=patch_types)
    if "delete" in verbs:
        item["delete"] = _operation("delete", gvk, None)
    paths = {f"{scope}/{plural}": collection, f"{scope}/{plural}/{{name}}": item}
    if info.namespaced and "list" in verbs:
        paths[f"{prefix}/{plural}"] = {"get": _operation("list", gvk, listed)}
    for sub in sorted(info.subresources):
        known = discovery.SUBRESOURCES.get(sub, discovery.Subresource(("get",)))
        returned = own if sub == "status" else None
        methods = {
            "get": ("get", ()),
            "update": ("put", ("application/json",)),
            "patch": ("patch", patch_types),
            "create": ("post", ("application/json",)),
        }
        paths[f"{scope}/{plural}/{{name}}/{sub}"] = {
            method: _operation(method, gvk, returned, body=body)
            for verb, (method, body) in methods.items()
            if verb in known.verbs
        }
    return {path: ops for path, ops in paths.items() if ops}


def _served(resources: kmock.ResourcesArray, group: str, version: str) -> list[Resource]:
    return [
        (r, resources[r])
        for r in resources
        if (r.group, r.version) == (group, version) and isinstance(r.plural, str)
    ]


def group_version_document(
    resources: kmock.ResourcesArray, crds: Sequence[Mapping[str, Any]], group: str, version: str
) -> dict[str, Any]:
    """The v3 document of one group-version (``/openapi/v3/apis/GROUP/VERSION``)."""
    known: dict[str, Any] = dict(core_schemas.definitions())
    for crd in crds:
        known.update(dict(crd_schemas(crd).values()))
    schemas = kind_schemas(crds)
    paths: dict[str, Any] = {}
    for resource, info in sorted(_served(resources, group, version), key=lambda r: str(r[0])):
        paths.update(resource_paths(resource, info, schemas))
    own = {
        name for (g, v, _), name in schemas.items() if (g, v) == (group, version) and name in known
    }
    roots = [known[name] for name in own]
    components = {name: known[name] for name in own}
    components.update(core_schemas.closure([*roots, paths], known))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": core_schemas.KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items()))},
    }


def path_of(group: str, version: str) -> str:
    """The key of a group-version in the v3 index (``api/v1``, ``apis/rekindle.dev/v1alpha1``)."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def fingerprint(document: Mapping[str, Any]) -> str:
    """The ``hash`` a v3 index gives a document's URL (it changes when the document does)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha512(text.encode()).hexdigest().upper()[:128]


def group_versions(resources: kmock.ResourcesArray) -> list[tuple[str, str]]:
    """Every served group-version, the core group first."""
    found = {
        (str(r.group), str(r.version))
        for r in resources
        if isinstance(r.group, str) and isinstance(r.version, str)
    }
    return sorted(found, key=lambda gv: (gv[0] != "", gv))


_DOCUMENTS: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}


def documents(
    resources: kmock.ResourcesArray, crds: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every group-version's v3 document (built once per set of resources and CRDs)."""
    declared = sorted(
        (str(r), sorted(resources[r].verbs), sorted(resources[r].subresources), resources[r].kind)
        for r in resources
    )
    specs = sorted(json.dumps(crd.get("spec"), sort_keys=True) for crd in crds)
    key = hashlib.sha256(json.dumps([declared, specs]).encode()).hexdigest()
    if key not in _DOCUMENTS:
        if len(_DOCUMENTS) > 16:
            _DOCUMENTS.clear()
        _DOCUMENTS[key] = {
            gv: group_version_document(resources, crds, *gv) for gv in group_versions(resources)
        }
    return _DOCUMENTS[key]


def v3_index(documents: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is, with its hash."""
    return {
        "paths": {
            path_of(*gv): {
                "serverRelativeURL": f"/openapi/v3/{path_of(*gv)}?hash={fingerprint(doc)}"
            }
            for gv, doc in documents.items()
        }
    }


# --- v2 -------------------------------------------------------------------------------------


def _to_v2(schema: Any) -> Any:
    """A v3 schema in Swagger 2.0's shape (refs to ``#/definitions``, v2's keywords only)."""
    if isinstance(schema, list):
        return [_to_v2(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    if isinstance(schema.get("$ref"), str):
        return {"$ref": "#/definitions/" + schema["$ref"][len(REF) :]}
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        return _to_v2(all_of[0])
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("nullable", "x-kubernetes-validations", "anyOf", "allOf", "oneOf", "not"):
            continue
        if key == "properties":
            result[key] = {k: _to_v2(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            result[key] = _to_v2(value)
        else:
            result[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
    return result


def _operation_v2(operation: Mapping[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in operation.items() if k not in ("requestBody", "responses")}
    response: dict[str, Any] = {"description": "OK"}
    content = operation["responses"]["200"].get("content") or {}
    if "application/json" in content:
        response["schema"] = _to_v2(content["application/json"]["schema"])
    result["responses"] = {"200": response}
    if "parameters" in operation:
        result["parameters"] = [
            {"name": p["name"], "in": "query", "type": "string", "uniqueItems": True}
            for p in operation["parameters"]
        ]
    if "requestBody" in operation:
        result["consumes"] = list(operation["requestBody"]["content"])
    return result


def v2_document(documents: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """``/openapi/v2``: every group-version's paths and definitions in one Swagger 2.0 document."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for document in documents.values():
        for path, operations in document["paths"].items():
            paths[path] = {method: _operation_v2(op) for method, op in operations.items()}
        for name, schema in document["components"]["schemas"].items():
            definitions[name] = _to_v2(schema)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": core_schemas.KUBERNETES_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
    }
