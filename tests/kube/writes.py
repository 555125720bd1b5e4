"""What the API server does around a write before the store sees it.

Field validation (``fieldValidation``, see :mod:`tests.kube.fields`) against
the kind's schema: a custom resource's from its CRD, a built-in kind's from
:mod:`tests.kube.core_schemas`; server-side apply (see :mod:`tests.kube.apply`);
and the ``dryRun=All`` parameter's check (the store answers without storing:
:meth:`~tests.kube.store.Store.dry_running`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import kmock

from tests.kube import apply, core_schemas, fields, openapi
from tests.kube.store import ApiError, Store


def kind_schema(store: Store, resource: kmock.resource) -> Mapping[str, Any] | None:
    """The OpenAPI schema writes of ``resource`` are checked against (None: not known)."""
    structural = store.schemas.get(resource)
    if structural is not None:
        return openapi.custom_kind_schema(structural)
    kind = store.info(resource).kind or ""
    try:
        name = core_schemas.kinds().get((str(resource.group), str(resource.version), kind))
        return core_schemas.definitions()[name] if name else None
    except core_schemas.SchemasUnavailable:
        return None


def dry_run(params: Mapping[str, str], body: Any = None) -> bool:
    """Whether the write is a dry run (``?dryRun=All``, or ``dryRun: [All]`` in a delete's
    DeleteOptions); 400 for another value."""
    value = params.get("dryRun")
    if not value and isinstance(body, Mapping) and body.get("dryRun"):
        value = ",".join(body["dryRun"])
    if value in (None, ""):
        return False
    if value != "All":
        raise ApiError(
            400, "BadRequest", f'dryRun: Unsupported value: {value!r}: supported values: "All"'
        )
    return True


def field_warnings(
    store: Store, resource: kmock.resource, params: Mapping[str, str], body: Any
) -> list[str]:
    """``Warning`` headers for unknown fields in ``body`` (Warn), or 400 (Strict)."""
    mode = fields.directive(params)
    schema = kind_schema(store, resource)
    if schema is None or mode == "Ignore" or not isinstance(body, Mapping):
        return []
    definitions = core_schemas.definitions()
    unknown = list(fields.unknown_fields(body, schema, definitions))
    kind = store.info(resource).kind or str(resource.plural)
    return fields.check(mode, kind, str(resource.version), unknown)


def _now(store: Store) -> str:
    return store.clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def server_side_apply(
    store: Store,
    resource: kmock.resource,
    namespace: str | None,
    name: str,
    params: Mapping[str, str],
    body: Any,
) -> dict[str, Any]:
    """``PATCH`` with ``application/apply-patch+yaml``: create the object or merge into it."""
    manager = params.get("fieldManager")
    if not manager:
        raise ApiError(
            400,
            "BadRequest",
            "PATCH request must specify a fieldManager for apply: pass ?fieldManager=NAME "
            "(kubectl apply --server-side sends fieldManager=kubectl)",
        )
    if not isinstance(body, Mapping):
        raise ApiError(400, "BadRequest", "the applied configuration must be an object")
    if (body.get("metadata") or {}).get("name") not in (None, name):
        raise ApiError(
            400,
            "BadRequest",
            f"the name of the object ({body['metadata']['name']}) does not match the name "
            f"in the URL ({name})",
        )
    schema = kind_schema(store, resource) or {}
    definitions = core_schemas.definitions() if schema else {}
    try:
        live = store.find(resource, namespace, name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        created = apply.applied_object({}, body, manager, schema, definitions, _now(store))
        created.setdefault("metadata", {})["name"] = name
        managed = created["metadata"].pop("managedFields")
        return store.create(resource, namespace, created, managed_fields=managed)
    merged = apply.applied_object(live, body, manager, schema, definitions, _now(store))
    merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    return store.replace(resource, namespace, name, merged)
