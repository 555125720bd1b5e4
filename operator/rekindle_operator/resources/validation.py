"""Validate a TrainingJob manifest as the Kubernetes API server would, without one.

The same steps, read from the CRD: nulls in non-nullable fields are dropped,
unknown fields are reported (as ``kubectl apply``'s strict field validation
does), defaults are applied, the OpenAPI schema is checked (JSON Schema via
``jsonschema``), then every ``x-kubernetes-validations`` CEL rule (via
``cel-python``). Each problem names the field and, where the schema says it,
what is accepted. ``rekindle run`` uses it before it writes anything; tests
use it on every example and on the invalid manifests.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Iterator, Mapping, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from rekindle_operator.core import job_spec
from rekindle_operator.resources import crd
from rekindle_trainer.contract import documents


@dataclass(frozen=True)
class Problem:
    """One reason a manifest is invalid."""

    #: The field, as a path from the manifest's root (``spec.training.epochs``).
    field: str
    #: What is wrong and how to fix it.
    message: str

    def __str__(self) -> str:
        """``field: message``, the line a user reads."""
        return f"{self.field}: {self.message}"


class ManifestError(ValueError):
    """A manifest is invalid; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        """Keep the problems; the message has one per line."""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source} is not a valid TrainingJob:\n{lines}")
        self.source = source
        self.problems = problems


@dataclass(frozen=True)
class Manifest:
    """A valid TrainingJob manifest."""

    name: str
    namespace: str | None
    spec: job_spec.TrainingJobSpec
    #: The manifest with the CRD's defaults applied.
    document: dict[str, Any]


def validate(manifest: Any) -> list[Problem]:
    """Every problem of ``manifest`` (a parsed YAML document); empty when it is valid."""
    problems = _header_problems(manifest)
    if not isinstance(manifest, Mapping):
        return problems
    schema = _schema()
    doc = _drop_nulls(manifest, schema)
    problems += list(_unknown_fields(doc, schema, ""))
    problems += list(_duplicate_keys(doc, schema, ""))
    doc = apply_defaults(doc)
    schema_problems = _schema_problems(doc) + list(_out_of_range(doc, ""))
    problems += schema_problems
    if not schema_problems:
        problems += list(_cel_problems(doc, schema, ""))
    return _unique(problems)


def apply_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``manifest`` with the CRD's defaults filled in, as the API server does.

    A default is applied where a field is absent; a defaulted object gets the
    defaults of its own fields in turn.
    """
    doc = copy.deepcopy(dict(manifest))
    _default(doc, _schema())
    return doc


def check(manifest: Any, source: str = "the manifest") -> Manifest:
    """Validate and parse ``manifest``.

    Raises:
        ManifestError: listing every problem, each naming its field.
    """
    problems = validate(manifest)
    if problems:
        raise ManifestError(source, problems)
    doc = apply_defaults(manifest)
    try:
        parsed = job_spec.parse_spec(doc["spec"])
    except documents.DocumentError as exc:  # the CRD and the typed spec disagree: a bug
        raise ManifestError(source, [Problem(where, what) for where, what in exc.located]) from exc
    meta = doc["metadata"]
    return Manifest(name=meta["name"], namespace=meta.get("namespace"), spec=parsed, document=doc)


def load(path: Path) -> Manifest:
    """Read, validate and parse the TrainingJob manifest in ``path`` (YAML or JSON).

    Raises:
        ManifestError: when the file cannot be read, is not one YAML document, or
            is not a valid TrainingJob.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(source, [Problem("(file)", f"cannot read it: {exc.strerror}")]) from exc
    try:
        docs = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]
    except _DuplicateKey as exc:
        raise ManifestError(source, [Problem("(file)", str(exc))]) from exc
    except yaml.YAMLError as exc:
        raise ManifestError(source, [Problem("(file)", f"not valid YAML: {exc}")]) from exc
    if len(docs) != 1:
        message = f"expected one YAML document holding a TrainingJob, found {len(docs)}"
        raise ManifestError(source, [Problem("(file)", message)])
    return check(docs[0], source)


class _DuplicateKey(ValueError):
    """A mapping names one key twice (YAML allows it; the API server and kubectl do not)."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(
                    f"key {key!r} appears twice (lines {seen[key]} and {line}); "
                    "keep one: kubectl refuses duplicate keys"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# ---------------------------------------------------------------------------
# The steps.
# ---------------------------------------------------------------------------

#: A namespace name: an RFC 1123 DNS label, as the API server requires.
_NAMESPACE_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAMESPACE_MAX = 63


@functools.cache
def _schema() -> dict[str, Any]:
    return crd.version_schema(crd.load_crd())


def _header_problems(manifest: Any) -> list[Problem]:
    if not isinstance(manifest, Mapping):
        return [Problem("(document)", "expected a mapping with apiVersion, kind, metadata, spec")]
    problems = []
    want_version = f"{job_spec.API_GROUP}/{job_spec.API_VERSION}"
    if manifest.get("apiVersion") != want_version:
        got = manifest.get("apiVersion")
        problems.append(Problem("apiVersion", f"must be {want_version}, got {got!r}"))
    if manifest.get("kind") != job_spec.KIND:
        problems.append(Problem("kind", f"must be {job_spec.KIND}, got {manifest.get('kind')!r}"))
    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name"):
        problems.append(Problem("metadata.name", "required: the job's name"))
    elif not isinstance(meta["name"], str):
        problems.append(Problem("metadata.name", f"expected a string, got {meta['name']!r}"))
    if isinstance(meta, Mapping) and meta.get("namespace") is not None:
        problems += _namespace_problems(meta["namespace"])
    return problems


def _namespace_problems(namespace: Any) -> list[Problem]:
    if (
        isinstance(namespace, str)
        and len(namespace) <= _NAMESPACE_MAX
        and _NAMESPACE_PATTERN.fullmatch(namespace)
    ):
        return []
    return [
        Problem(
            "metadata.namespace",
            f"must be a DNS label of at most {_NAMESPACE_MAX} lowercase letters, digits and "
            f"'-', starting and ending with a letter or digit, got {namespace!r}",
        )
    ]


def _drop_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """Drop ``null`` where the schema is not nullable (the API server prunes those)."""
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, Mapping) else {})
            if item is None and not sub.get("nullable", False):
                continue
            out[key] = _drop_nulls(item, sub)
        return out
    if isinstance(value, list):
        return [_drop_nulls(item, schema.get("items", {})) for item in value]
    return value


def _unknown_fields(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[Problem]:
    if isinstance(value, Mapping) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            props = schema.get("properties", {})
        elif "properties" in schema:
            props = schema["properties"]
        else:
            props = None  # a map (additionalProperties) or metadata: anything goes
        if path == "metadata":
            return
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if props is not None and key in props:
                yield from _unknown_fields(item, props[key], where)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                match = difflib.get_close_matches(str(key), sorted(props), n=1)
                hint = f"; did you mean {match[0]!r}?" if match else ""
                yield Problem(where, f"unknown field{hint}")
            elif isinstance(extra, Mapping):
                yield from _unknown_fields(item, extra, where)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _unknown_fields(item, schema["items"], f"{path}[{i}]")


def _duplicate_keys(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[Problem]:
    """Lists of ``x-kubernetes-list-type: map`` hold each key once (env names, volume names)."""
    if isinstance(value, list):
        items = schema.get("items", {})
        keys = schema.get("x-kubernetes-list-map-keys")
        if schema.get("x-kubernetes-list-type") == "map" and keys:
            seen: set[tuple[Any, ...]] = set()
            for i, item in enumerate(value):
                if not isinstance(item, Mapping):
                    continue
                key = tuple(item.get(k) for k in keys)
                if key in seen:
                    shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, key, strict=True))
                    yield Problem(f"{path}[{i}]", f"duplicate entry {shown}; each may appear once")
                seen.add(key)
        for i, item in enumerate(value):
            yield from _duplicate_keys(item, items, f"{path}[{i}]")
    elif isinstance(value, Mapping):
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                yield from _duplicate_keys(item, props[key], f"{path}.{key}" if path else str(key))


def _default(value: Any, schema: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, item in value.items():
                if key not in schema.get("properties", {}):
                    _default(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _default(item, schema["items"])


@functools.cache
def _json_schema() -> dict[str, Any]:
    """The CRD's OpenAPI v3 schema as a JSON Schema (draft 2020-12)."""
    converted = _to_json_schema(_schema())
    converted["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return converted


def _to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "default"):
            continue
        if key == "properties":
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = _to_json_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_to_json_schema(v) for v in value]
        elif key == "format" and value == "date-time":
            out["pattern"] = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
        else:
            out[key] = value
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string") and "pattern" in out:
        # The pattern applies to the string form only.
        pattern = out.pop("pattern")
        out["anyOf"] = [{"type": "integer"}, {"type": "string", "pattern": pattern}]
    return out


def _schema_problems(doc: Mapping[str, Any]) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(_json_schema())
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        problems.append(_explain(error))
    return problems


def _out_of_range(value: Any, path: str) -> Iterator[Problem]:
    """Integers Kubernetes cannot store (it keeps them as 64-bit)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        yield Problem(
            path, f"{value} does not fit in 64 bits, the largest integer Kubernetes stores"
        )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _out_of_range(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _out_of_range(item, f"{path}[{i}]")


#: How each failed JSON Schema keyword is said: ``{value}`` is the bad value, ``{limit}`` the
#: keyword's own value in the schema, ``{count}`` the bad value's size, ``{hint}`` the field's
#: description in parentheses. Keywords not listed say jsonschema's own message.
_WORDING: Final[dict[str, str]] = {
    "minimum": "must be >= {limit}, got {value}",
    "maximum": "must be <= {limit}, got {value}",
    "enum": "{value!r} is not one of {limit}",
    "type": "expected {limit}, got {value!r}{hint}",
    "pattern": "{value!r} is not accepted{hint}",
    "anyOf": "{value!r} is not accepted{hint}",
    "minLength": "must not be empty{hint}",
    "minItems": "needs at least {limit} item(s){hint}",
    "maxLength": "must be at most {limit} characters",
    "maxItems": "at most {limit} items, got {count}",
    "maxProperties": "at most {limit} entries, got {count}",
}


def _explain(error: jsonschema.ValidationError) -> Problem:
    path = _dotted(error.absolute_path)
    described = _description_at(error.absolute_path)
    hint = f" ({described})" if described else ""
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        where = f"{path}.{missing}" if path else missing
        about = _description_at([*error.absolute_path, missing])
        return Problem(where, f"required{': ' + about if about else ''}")
    wording = _WORDING.get(str(error.validator))
    if wording is None:
        return Problem(path, f"{error.message}{hint}")
    value: Any = error.instance
    return Problem(
        path,
        wording.format(
            value=value,
            limit=_limit_text(str(error.validator), error.validator_value),
            count=len(value) if isinstance(value, Sized) else 0,
            hint=hint,
        ),
    )


def _limit_text(keyword: str, limit: Any) -> str:
    """A schema keyword's value as the messages say it."""
    if keyword == "type":
        return _type_name(limit)
    if keyword == "enum":
        return ", ".join(map(str, limit))
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        return _num(limit)
    return str(limit)


def _description_at(path: Any) -> str:
    node: Mapping[str, Any] = _schema()
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            return ""
    return str(node.get("description", "")).strip()


def _cel_problems(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[Problem]:
    for rule in schema.get("x-kubernetes-validations", []):
        program = _program(rule["rule"])
        try:
            ok = program.evaluate({"self": json_to_cel(value)})
        except CELEvalError as exc:
            yield Problem(path or "(root)", f"rule {rule['rule']!r} could not be evaluated: {exc}")
            continue
        if isinstance(ok, CELEvalError):
            yield Problem(path or "(root)", f"rule {rule['rule']!r} could not be evaluated: {ok}")
        elif not bool(ok):
            where = path + rule.get("fieldPath", "") if path else rule.get("fieldPath", "")[1:]
            message = " ".join(str(rule.get("message", f"failed rule {rule['rule']}")).split())
            yield Problem(where or "(root)", message)
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in props:
                yield from _cel_problems(item, props[key], where)
            elif isinstance(extra, Mapping):
                yield from _cel_problems(item, extra, where)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _cel_problems(item, schema["items"], f"{path}[{i}]")


def prepare() -> int:
    """Compile every CEL rule of the CRD now (the first validation is then fast); return how many.

    Raises:
        celpy.CELParseError: when a rule does not compile (a bug in the CRD).
    """
    rules = list(_rules(_schema()))
    for rule in rules:
        _program(rule)
    return len(rules)


def _rules(schema: Mapping[str, Any]) -> Iterator[str]:
    for rule in schema.get("x-kubernetes-validations", []):
        yield rule["rule"]
    for sub in schema.get("properties", {}).values():
        yield from _rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            yield from _rules(schema[key])


@functools.cache
def _environment() -> Any:
    # celpy raises the interpreter's recursion limit each time an Environment is made: make one.
    return celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    env = _environment()
    return env.program(env.compile(rule))


def _dotted(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _type_name(type_: Any) -> str:
    names: dict[str, str] = {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true or false",
        "object": "an object",
        "array": "a list",
    }
    if isinstance(type_, list):
        return " or ".join(names.get(str(t), str(t)) for t in type_ if t != "null")
    return names.get(type_, str(type_))


def _num(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out
