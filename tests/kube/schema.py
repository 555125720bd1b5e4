"""What the API server does with a CRD's structural schema on every write of a custom resource.

Pure functions, in the server's order: :func:`drop_nulls` (``null`` where the
schema does not say ``nullable``), :func:`prune` (fields the schema does not
declare vanish silently, unless ``x-kubernetes-preserve-unknown-fields``),
:func:`apply_defaults`, then :func:`problems`: the OpenAPI v3 schema (checked
with ``jsonschema``) and every ``x-kubernetes-validations`` CEL rule (with
``cel-python``; transition rules get ``oldSelf`` on updates). This is written
from the Kubernetes documentation, independently of the operator's own
manifest validation, so that the two can disagree and a test can notice.

Every write of a custom resource runs through here, so the costly parts are
done once: the JSON Schema validator is built once per schema object (the
store keeps one per CRD version), each CEL rule is compiled once, and a
rule's outcome is remembered per (rule, ``self``, ``oldSelf``) value, which is
exact because CEL has no side effects and no clock: the same input gives the
same answer. Every rule is still checked against every written value.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel

_ROOT_KEEP = ("apiVersion", "kind", "metadata")
_JSON_SCHEMA_KEYS = (
    "type",
    "required",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
)


def openapi_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any] | None:
    """The ``openAPIV3Schema`` of one version of a CRD (None when it has none)."""
    for served in (crd.get("spec") or {}).get("versions") or []:
        if served.get("name") == version:
            found = (served.get("schema") or {}).get("openAPIV3Schema")
            return dict(found) if isinstance(found, Mapping) else None
    return None


def _child(schema: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    properties = schema.get("properties") or {}
    if key in properties:
        child: Mapping[str, Any] = properties[key]
        return child
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def drop_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """Remove ``null`` values of fields that are not ``nullable``."""
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            child = _child(schema, key) or {}
            if item is None and not child.get("nullable"):
                continue
            result[key] = drop_nulls(item, child)
        return result
    if isinstance(value, list):
        return [drop_nulls(item, schema.get("items") or {}) for item in value]
    return value


def prune(value: Any, schema: Mapping[str, Any], *, root: bool = False) -> Any:
    """Drop fields the schema does not declare (kept under preserve-unknown-fields)."""
    if isinstance(value, Mapping):
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        result: dict[str, Any] = {}
        for key, item in value.items():
            if root and key in _ROOT_KEEP:
                result[key] = item
                continue
            child = _child(schema, key)
            if child is not None:
                result[key] = prune(item, child)
            elif preserve:
                result[key] = item
        return result
    if isinstance(value, list):
        return [prune(item, schema.get("items") or {}) for item in value]
    return value


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """Fill absent fields that declare a ``default`` (inside objects that exist)."""
    if isinstance(value, Mapping):
        result = dict(value)
        for key, child in (schema.get("properties") or {}).items():
            if key not in result and "default" in child:
                result[key] = copy.deepcopy(child["default"])
        for key, item in list(result.items()):
            child = _child(schema, key)
            if child is not None:
                result[key] = apply_defaults(item, child)
        return result
    if isinstance(value, list):
        return [apply_defaults(item, schema.get("items") or {}) for item in value]
    return value


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI v3.0 schema as JSON Schema draft 4 (nullable, int-or-string, nesting)."""
    result: dict[str, Any] = {key: schema[key] for key in _JSON_SCHEMA_KEYS if key in schema}
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        result["properties"] = {k: to_json_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), Mapping):
        result["additionalProperties"] = to_json_schema(schema["additionalProperties"])
    if isinstance(schema.get("items"), Mapping):
        result["items"] = to_json_schema(schema["items"])
    for combinator in ("anyOf", "allOf", "oneOf"):
        if combinator in schema:
            result[combinator] = [to_json_schema(s) for s in schema[combinator]]
    if "not" in schema:
        result["not"] = to_json_schema(schema["not"])
    if schema.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    return result


def _dotted(path: Any) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
    return "".join(parts) or "<root>"


@functools.lru_cache(maxsize=512)
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


#: What a rule said about one value: None (it holds), "" (false) or the evaluation error.
_Outcome = str | None
_OUTCOMES: dict[tuple[str, str, str | None], _Outcome] = {}
_OUTCOMES_LIMIT = 20_000


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _evaluate(text: str, value: Any, old: Any, transition: bool) -> _Outcome:
    """Run one rule (remembered per input: CEL is pure, so this is exact)."""
    key = (text, _canonical(value), _canonical(old) if transition else None)
    if key in _OUTCOMES:
        return _OUTCOMES[key]
    activation = {"self": json_to_cel(value)}
    if transition:
        activation["oldSelf"] = json_to_cel(old)
    outcome: _Outcome
    try:
        result = _program(text).evaluate(activation)
    except Exception as exc:  # a CEL evaluation error is a failed rule, as in the API server
        outcome = f"could not be evaluated: {exc}"
    else:
        outcome = None if not isinstance(result, Exception) and bool(result) else ""
    if len(_OUTCOMES) >= _OUTCOMES_LIMIT:
        _OUTCOMES.clear()
    _OUTCOMES[key] = outcome
    return outcome


def _rule_problems(value: Any, old: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule["rule"]
        transition = "oldSelf" in text
        if transition and old is None:
            continue  # a transition rule only applies to an update
        field = (
            f"{path}{rule.get('fieldPath', '')}"
            if path != "<root>"
            else (str(rule.get("fieldPath", "")).lstrip(".") or path)
        )
        outcome = _evaluate(text, value, old, transition)
        if outcome:
            yield f"{field}: Invalid value: rule {text!r} {outcome}"
        elif outcome is not None:
            message = rule.get("message") or f"failed rule: {text}"
            yield f"{field}: Invalid value: {' '.join(str(message).split())}"


def _cel_problems(
    value: Any, old: Any, schema: Mapping[str, Any], path: tuple[Any, ...]
) -> Iterator[str]:
    yield from _rule_problems(value, old, schema, _dotted(path))
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = _child(schema, key)
            if child is not None:
                old_item = old.get(key) if isinstance(old, Mapping) else None
                yield from _cel_problems(item, old_item, child, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _cel_problems(item, None, schema.get("items") or {}, (*path, index))


_VALIDATORS: dict[int, tuple[Mapping[str, Any], jsonschema.Draft4Validator]] = {}


def _validator(schema: Mapping[str, Any]) -> jsonschema.Draft4Validator:
    """The JSON Schema validator of ``schema``, built once per schema object.

    Keyed by identity, and the entry holds the schema itself so that its id
    cannot be reused while cached; the store never changes a stored schema.
    """
    entry = _VALIDATORS.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    validator = jsonschema.Draft4Validator(to_json_schema(schema))
    if len(_VALIDATORS) >= 64:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def problems(
    value: Mapping[str, Any], schema: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[str]:
    """Every schema violation of ``value``, each naming its field."""
    validator = _validator(schema)
    found = [
        f"{_dotted(error.absolute_path)}: Invalid value: {error.message}"
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ]
    if not found:  # rules assume the schema holds (as the API server does)
        found.extend(_cel_problems(value, old, schema, ()))
    return found


def admit(
    value: Mapping[str, Any], schema: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Drop nulls, prune, default, then validate: the stored object and its problems."""
    cleaned = drop_nulls(value, schema)
    stored: dict[str, Any] = apply_defaults(prune(cleaned, schema, root=True), schema)
    return stored, problems(stored, schema, old)
