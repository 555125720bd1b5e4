"""The three patch formats of the Kubernetes API, as pure functions on JSON documents.

* JSON merge patch (RFC 7386, ``application/merge-patch+json``): what kopf sends.
* JSON patch (RFC 6902, ``application/json-patch+json``): kopf's finalizer and
  optimistic-concurrency patches (a ``test`` op on ``/metadata/resourceVersion``).
* Strategic merge patch (``application/strategic-merge-patch+json``): what the
  ``kubernetes`` client sends for a dict body; lists with a merge key (containers
  by ``name``, conditions by ``type``…) are merged item by item, ``$patch``
  directives and ``$deleteFromPrimitiveList`` are honoured.

Each function returns a new document and never mutates its inputs. A patch that
cannot apply raises :class:`PatchError` (the API answers 422) and a malformed
one :class:`PatchFormatError` (400).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

#: Lists that a strategic merge patch merges by a key, by field name (as in the core API types).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "envFrom": "prefix",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
#: Lists of scalars that a strategic merge patch unions instead of replacing.
MERGED_PRIMITIVE_LISTS: frozenset[str] = frozenset({"finalizers"})


class PatchError(ValueError):
    """A well-formed patch that cannot apply to this document (HTTP 422)."""


class PatchFormatError(ValueError):
    """A malformed patch body (HTTP 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: dicts merge, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(copy.deepcopy(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON patch (RFC 6902) --------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFormatError(f"JSON patch: path {path!r} must start with '/' (RFC 6901)")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"JSON patch: {token!r} in {path!r} is not a list index")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise PatchError(f"JSON patch: index {index} in {path!r} is out of range")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"JSON patch: {path!r} does not exist (no {token!r})")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, for_add=False)]
        else:
            raise PatchError(f"JSON patch: {path!r} goes through a scalar")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"JSON patch: {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, for_add=False)]
    raise PatchError(f"JSON patch: {path!r} goes through a scalar")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], path, for_add=True), value)
    else:
        raise PatchError(f"JSON patch: cannot add into the scalar at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("JSON patch: cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise PatchError(f"JSON patch: cannot remove {path!r}: it does not exist")
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[_index(parent, tokens[-1], path, for_add=False)]
    else:
        raise PatchError(f"JSON patch: cannot remove from the scalar at {path!r}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchFormatError("JSON patch: the body must be a list of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(ops):
        if not isinstance(op, Mapping) or "op" not in op or "path" not in op:
            raise PatchFormatError(f"JSON patch: operation #{number} needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchFormatError(f"JSON patch: operation #{number} ({kind}) needs 'value'")
        if kind in ("move", "copy") and "from" not in op:
            raise PatchFormatError(f"JSON patch: operation #{number} ({kind}) needs 'from'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            doc = _remove(doc, path) if _pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            value = _get(doc, op["from"])
            doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(
                    f"JSON patch: test failed at {path!r}: "
                    f"expected {op['value']!r}, found {_get(doc, path)!r}"
                )
        else:
            raise PatchFormatError(f"JSON patch: unknown op {kind!r} in operation #{number}")
    return doc


# --- Strategic merge patch --------------------------------------------------


def _merge_keyed_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(item, Mapping) and item.get("$patch") == "replace" for item in patch):
        return [
            copy.deepcopy(item)
            for item in patch
            if not (isinstance(item, Mapping) and item.get("$patch") == "replace")
        ]
    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        if not isinstance(item, Mapping) or key not in item:
            raise PatchFormatError(
                f"strategic merge patch: list items here are merged by {key!r}; "
                f"item {item!r} has no {key!r}"
            )
        positions = [
            i
            for i, old in enumerate(result)
            if isinstance(old, Mapping) and old.get(key) == item[key]
        ]
        if item.get("$patch") == "delete":
            result = [old for i, old in enumerate(result) if i not in positions]
        elif positions:
            result[positions[0]] = strategic_merge_patch(result[positions[0]], item)
        else:
            result.append(strategic_merge_patch({}, item))
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch with the merge keys of the core API types."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result: dict[str, Any] = dict(copy.deepcopy(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith(("$setElementOrder/", "$retainKeys")):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        old = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(old, list):
            result[key] = _merge_keyed_list(old, value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGED_PRIMITIVE_LISTS and isinstance(old, list):
            result[key] = old + [v for v in value if v not in old]
        elif isinstance(value, Mapping):
            merged = strategic_merge_patch(old, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` header, without parameters, in lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def apply(content_type: str, target: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``target`` by the request's ``Content-Type``."""
    media = media_type(content_type)
    if media == MERGE:
        if not isinstance(patch, Mapping):
            raise PatchFormatError("merge patch: the body must be a JSON object")
        return merge_patch(target, patch)
    if media == JSON:
        return json_patch(target, patch)
    if media == STRATEGIC:
        if not isinstance(patch, Mapping):
            raise PatchFormatError("strategic merge patch: the body must be a JSON object")
        return strategic_merge_patch(target, patch)
    raise PatchFormatError(
        f"unsupported patch Content-Type {content_type!r}; use {MERGE}, {JSON} or {STRATEGIC}"
    )
