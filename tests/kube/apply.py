"""Server-side apply (``kubectl apply --server-side``): merge an applied configuration.

A ``PATCH`` with ``Content-Type: application/apply-patch+yaml`` and a
``fieldManager`` creates the object when it does not exist and otherwise
merges the applied configuration into it: objects field by field, lists
whole (``atomic``, the default for custom resources) unless the schema makes
them ``x-kubernetes-list-type: map`` (items merged by their keys) or ``set``
(a union). The fields a manager applied are recorded in the object's
``metadata.managedFields`` (``operation: Apply``, ``fieldsV1``), so that a
later apply by the same manager that leaves a field out removes it, unless
another Apply manager still owns it. Pure functions over schemas in OpenAPI
form (references resolved by :func:`tests.kube.fields.resolve`).

Not emulated: ownership by ``Update`` operations (merge patches, PUTs) and
so conflicts with them (``force`` is accepted and changes nothing).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from tests.kube import fields

Path = tuple[str, ...]
#: Fields the server owns or that an apply never sets.
SERVER_FIELDS = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def _list_keys(schema: Mapping[str, Any]) -> tuple[str, list[str]]:
    kind = str(schema.get("x-kubernetes-list-type") or "atomic")
    return kind, list(schema.get("x-kubernetes-list-map-keys") or [])


def _item_key(item: Any, keys: list[str]) -> str:
    picked = {k: item.get(k) for k in keys} if isinstance(item, Mapping) else {}
    return "k:" + json.dumps(picked, sort_keys=True, separators=(",", ":"))


def field_paths(
    value: Any, schema: Mapping[str, Any], definitions: Mapping[str, Any], prefix: Path = ()
) -> set[Path]:
    """The fields ``value`` sets, as paths of ``f:NAME`` / ``k:{KEYS}`` / ``v:VALUE`` steps."""
    schema = fields.resolve(schema, definitions)
    if isinstance(value, Mapping):
        found: set[Path] = set()
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if not prefix and key in ("apiVersion", "kind"):
                continue
            if prefix == ("f:metadata",) and key in SERVER_FIELDS:
                continue
            child = properties.get(key) or (extra if isinstance(extra, Mapping) else {})
            step = (*prefix, f"f:{key}")
            below = field_paths(item, child, definitions, step)
            found |= below or {step}
        return found
    if isinstance(value, list) and prefix:
        kind, keys = _list_keys(schema)
        items_schema = schema.get("items") or {}
        if kind == "map" and keys:
            found = set()
            for item in value:
                step = (*prefix, _item_key(item, keys))
                found |= {step} | field_paths(item, items_schema, definitions, step)
            return found
        if kind == "set":
            return {(*prefix, "v:" + json.dumps(item, sort_keys=True)) for item in value}
    return set()


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """``fieldsV1`` of a set of paths (``{"f:spec": {"f:image": {}}}``; ``"."`` marks an item)."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
        if path[-1].startswith("k:"):
            node.setdefault(".", {})
    return tree


def paths_of(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """The paths a ``fieldsV1`` tree records (the inverse of :func:`fields_v1`)."""
    found: set[Path] = set()
    for step, below in tree.items():
        if step == ".":
            found.add(prefix)
            continue
        path = (*prefix, step)
        inner = paths_of(below, path) if isinstance(below, Mapping) else set()
        found |= inner or {path}
    return found


def merge(
    live: Any, applied: Any, schema: Mapping[str, Any], definitions: Mapping[str, Any]
) -> Any:
    """``applied`` merged into ``live`` (objects by field, lists by their list type)."""
    schema = fields.resolve(schema, definitions)
    if isinstance(live, Mapping) and isinstance(applied, Mapping):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        result = dict(live)
        for key, value in applied.items():
            child = properties.get(key) or (extra if isinstance(extra, Mapping) else {})
            result[key] = merge(live.get(key), value, child, definitions)
        return result
    if isinstance(live, list) and isinstance(applied, list):
        kind, keys = _list_keys(schema)
        items_schema = schema.get("items") or {}
        if kind == "map" and keys:
            by_key = {_item_key(item, keys): item for item in live}
            merged = [
                merge(by_key.pop(_item_key(item, keys), None), item, items_schema, definitions)
                for item in applied
            ]
            return [*by_key.values(), *merged]
        if kind == "set":
            return [*live, *(item for item in applied if item not in live)]
    return copy.deepcopy(applied)


def remove(obj: Any, path: Path) -> None:
    """Delete the field at ``path`` from ``obj`` in place (nothing if it is absent)."""
    if not path or not isinstance(obj, (dict, list)):
        return
    step, rest = path[0], path[1:]
    if isinstance(obj, dict) and step.startswith("f:"):
        key = step[2:]
        if not rest:
            obj.pop(key, None)
        elif key in obj:
            remove(obj[key], rest)
    elif isinstance(obj, list) and step.startswith("k:"):
        wanted = json.loads(step[2:])
        for index, item in enumerate(obj):
            if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
                if rest:
                    remove(item, rest)
                else:
                    del obj[index]
                return
    elif isinstance(obj, list) and step.startswith("v:"):
        value = json.loads(step[2:])
        if value in obj:
            obj.remove(value)


def entry(manager: str, api_version: str, paths: set[Path], now: str) -> dict[str, Any]:
    """One ``managedFields`` entry of an apply."""
    return {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(paths),
    }


def applied_object(
    live: Mapping[str, Any],
    applied: Mapping[str, Any],
    manager: str,
    schema: Mapping[str, Any],
    definitions: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` to ``live`` (managedFields updated)."""
    config = {k: copy.deepcopy(v) for k, v in applied.items() if k != "status"}
    new_paths = field_paths(config, schema, definitions)
    entries = list((live.get("metadata") or {}).get("managedFields") or [])
    mine = [e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"]
    others = [e for e in entries if e not in mine]
    previous = set().union(*(paths_of(e.get("fieldsV1") or {}) for e in mine))
    kept = set().union(*(paths_of(e.get("fieldsV1") or {}) for e in others))
    result: dict[str, Any] = merge(copy.deepcopy(dict(live)), config, schema, definitions)
    for path in sorted(previous - new_paths - kept, key=len):  # an item before its fields
        remove(result, path)
    api_version = str(config.get("apiVersion") or live.get("apiVersion"))
    result.setdefault("metadata", {})["managedFields"] = [
        *others,
        entry(manager, api_version, new_paths, now),
    ]
    return result
