"""The built-in kinds' schemas as an API server publishes them in OpenAPI v3.

The schemas come from ``kubernetes-validate`` (the Kubernetes v1.32 OpenAPI
definitions, rewritten there as JSON Schema 2020-12 with ``null`` allowed
everywhere); :func:`to_openapi` turns them back into the OpenAPI v3 schemas
an API server serves (``#/components/schemas/…`` references, one type per
field, ``int-or-string`` and quantities as strings, no ``enum`` on
``apiVersion``/``kind``). :func:`definitions` loads them once;
:func:`closure` gives the definitions a set of schemas refers to, so a
group-version's document holds everything its kinds use.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The Kubernetes version whose definitions the emulator serves (kubectl 1.32's peer).
KUBERNETES_VERSION = "v1.32.0"
REF_PREFIX = "#/components/schemas/"
_JSON_SCHEMA_REF = "#/$defs/"
#: Definitions that are strings on the wire though the JSON Schema allows more.
STRING_FORMATS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int-or-string",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "",
}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"


class SchemasUnavailable(RuntimeError):
    """kubernetes-validate (a dev dependency) is not installed."""


def definitions_file() -> Path:
    """kubernetes-validate's definitions of :data:`KUBERNETES_VERSION`."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise SchemasUnavailable(
            "the built-in kinds' schemas come from kubernetes-validate: pip install "
            "kubernetes-validate (it is in rekindle[dev])"
        )
    folder = Path(spec.origin).parent / "kubernetes-json-schema" / f"{KUBERNETES_VERSION}-local"
    return folder / "_definitions.json"


def _single_type(value: Any) -> Any:
    if isinstance(value, list):
        kinds = [t for t in value if t != "null"]
        return kinds[0] if kinds else "object"
    return value


def to_openapi(schema: Mapping[str, Any], *, field_name: str = "") -> dict[str, Any]:
    """One JSON Schema 2020-12 fragment of kubernetes-validate as OpenAPI v3."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_JSON_SCHEMA_REF):
        target = {"$ref": REF_PREFIX + ref[len(_JSON_SCHEMA_REF) :]}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return {"allOf": [target], **rest} if rest else target
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            result["type"] = _single_type(value)
        elif key == "oneOf":
            kinds = [_single_type(option.get("type")) for option in value if "type" in option]
            result.setdefault("type", kinds[0] if kinds else "object")
        elif key == "properties":
            result["properties"] = {k: to_openapi(v, field_name=k) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            result[key] = to_openapi(value)
        elif key == "enum" and field_name in ("apiVersion", "kind"):
            continue
        else:
            result[key] = value
    return result


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """Every built-in definition by its name (``io.k8s.api.core.v1.Pod``), as OpenAPI v3."""
    path = definitions_file()
    if not path.exists():
        raise SchemasUnavailable(f"{path} not found: reinstall kubernetes-validate")
    raw = json.loads(path.read_text())["$defs"]
    converted: dict[str, dict[str, Any]] = {}
    for name, schema in raw.items():
        if name in STRING_FORMATS:
            text = {"type": "string", "description": schema.get("description", "")}
            if STRING_FORMATS[name]:
                text["format"] = STRING_FORMATS[name]
            converted[name] = text
        else:
            converted[name] = to_openapi(schema)
    return converted


@functools.cache
def kinds() -> dict[tuple[str, str, str], str]:
    """``(group, version, kind)`` to the definition's name, for every built-in kind."""
    found: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            found[(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))] = name
    return found


def refs(schema: Any) -> Iterable[str]:
    """The definition names ``schema`` refers to directly."""
    if isinstance(schema, Mapping):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref[len(REF_PREFIX) :]
        for value in schema.values():
            yield from refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from refs(item)


def closure(roots: Iterable[Any], known: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every definition in ``known`` that the ``roots`` schemas reach through references."""
    found: dict[str, Any] = {}
    pending = [name for root in roots for name in refs(root)]
    while pending:
        name = pending.pop()
        if name in found or name not in known:
            continue
        found[name] = known[name]
        pending.extend(refs(known[name]))
    return found
