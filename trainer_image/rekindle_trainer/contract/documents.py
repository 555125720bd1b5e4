"""Parse camelCase documents into frozen dataclasses whose fields declare their schema.

Each field of a spec, status or trainer configuration dataclass carries
:func:`schema` metadata, which records its JSON name, default and bounds. One
generic parser reads them, so that a typed document cannot drift from what it
declares, and a test can compare every declaration with the CRD's schema field
by field. The operator (TrainingJob spec and status) and the trainer (its
configuration document) both parse with it, so neither needs TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from rekindle_trainer.contract import timestamps

T = TypeVar("T")


#: One problem: the field's path (``spec.training.epochs``) and what is wrong with it.
Problem = tuple[str, str]


class DocumentError(ValueError):
    """A document does not fit its type; ``problems`` name each field and the fix."""

    def __init__(self, located: list[Problem]) -> None:
        """Keep every problem; the message lists them one per line.

        Args:
            located: ``(field, what is wrong and what is accepted)`` pairs.
        """
        self.located = located
        #: ``field: message`` lines, the form a person reads.
        self.problems = [f"{where}: {message}" for where, message in located]
        super().__init__("\n".join(self.problems))


def schema(
    json_name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: str | None = None,
    accepts: str | None = None,
    required: bool = False,
    schema_default: bool = True,
) -> dict[str, Any]:
    """The ``metadata`` of a dataclass field read from ``json_name``.

    Use as ``field(default=32, metadata=schema("batchSize", minimum=1))``.

    Args:
        json_name: the camelCase key in the document.
        minimum: smallest value accepted (numbers).
        maximum: largest value accepted (numbers).
        pattern: regular expression a whole string must match.
        accepts: what ``pattern`` accepts, for a person ("a quantity such as 10Gi").
        required: the key must be present (give the field no default).
        schema_default: whether the CRD declares the field's default too
            (False when Rekindle applies it, e.g. because a CEL rule must see
            whether the user set the field).
    """
    return {
        "json": json_name,
        "minimum": minimum,
        "maximum": maximum,
        "pattern": pattern,
        "accepts": accepts,
        "required": required,
        "schema_default": schema_default,
    }


@functools.cache
def json_fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """The declared fields of dataclass ``cls`` with their resolved types.

    Cached: the operator parses every job's spec and status on every reconcile.
    """
    hints = typing.get_type_hints(cls)
    return tuple((f, hints[f.name]) for f in dataclasses.fields(cls) if "json" in f.metadata)


def parse(cls: type[T], doc: Any, path: str = "") -> T:
    """Build ``cls`` from ``doc``; raise :class:`DocumentError` naming every bad field.

    ``path`` prefixes every field named in a problem (``spec``); empty: the
    document is the root and fields are named as they are (``checkpoint.keep``).
    """
    problems: list[Problem] = []
    result = _parse_object(cls, doc, path, problems)
    if problems:
        raise DocumentError(problems)
    return typing.cast(T, result)


def unparse(value: Any) -> Any:
    """Turn a parsed dataclass back into its camelCase document (None values kept)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.metadata["json"]: unparse(getattr(value, f.name)) for f, _ in json_fields(type(value))
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return timestamps.format_time(value)
    if isinstance(value, tuple | list):
        return [unparse(v) for v in value]
    if isinstance(value, Mapping):
        return {k: unparse(v) for k, v in value.items()}
    return value


def project(cls: type[T], source: Any, **more: Any) -> T:
    """A ``cls`` made of the fields it shares with dataclass ``source``, plus ``more``.

    Moves a value between related declarations (a subclass that adds fields, or
    the base it extends) without naming their fields one by one.
    """
    names = {f.name for f in dataclasses.fields(typing.cast(Any, cls))}
    shared = {
        f.name: getattr(source, f.name) for f in dataclasses.fields(source) if f.name in names
    }
    return cls(**shared, **more)


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _parse_object(cls: type, doc: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(doc, Mapping):
        problems.append((path or "(document)", f"expected an object, got {_kind(doc)}"))
        return None
    fields = json_fields(cls)
    known = {f.metadata["json"] for f, _ in fields}
    for key in doc:
        if key not in known:
            hint = _closest(str(key), known)
            problems.append((_at(path, str(key)), f"unknown field{hint}"))
    values: dict[str, Any] = {}
    for f, tp in fields:
        name = f.metadata["json"]
        where = _at(path, name)
        raw = doc.get(name)
        if raw is None:
            if f.metadata["required"]:
                problems.append((where, "required"))
            continue
        values[f.name] = _convert(tp, raw, where, f.metadata, problems)
    try:
        return cls(**values)
    except TypeError:
        return None


def _convert(
    tp: Any, raw: Any, where: str, meta: Mapping[str, Any], problems: list[Problem]
) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], raw, where, meta, problems)
    if tp is Any:
        return raw
    if origin is tuple:
        if not isinstance(raw, list | tuple):
            problems.append((where, f"expected a list, got {_kind(raw)}"))
            return ()
        return tuple(
            _convert(args[0], item, f"{where}[{i}]", {}, problems) for i, item in enumerate(raw)
        )
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(raw, Mapping):
            problems.append((where, f"expected an object, got {_kind(raw)}"))
            return {}
        value_type = args[1] if args else Any
        return {
            str(k): _convert(value_type, v, f"{where}.{k}", {}, problems) for k, v in raw.items()
        }
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _parse_object(tp, raw, where, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [m.value for m in tp]
        if raw not in allowed:
            problems.append((where, f"{raw!r} is not one of {', '.join(map(str, allowed))}"))
            return next(iter(tp))
        return tp(raw)
    if tp is datetime:
        if not isinstance(raw, str):
            problems.append((where, f"expected a timestamp string, got {_kind(raw)}"))
            return None
        try:
            return timestamps.parse_time(raw)
        except ValueError as exc:
            problems.append((where, str(exc)))
            return None
    if tp is bool:
        if not isinstance(raw, bool):
            problems.append((where, f"expected true or false, got {raw!r}"))
        return raw
    if tp is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            problems.append((where, f"expected an integer, got {raw!r}"))
            return raw
        _check_bounds(raw, where, meta, problems)
        return raw
    if tp is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            problems.append((where, f"expected a finite number, got {raw!r}"))
            return raw
        _check_bounds(raw, where, meta, problems)
        return float(raw)
    if tp is str:
        if not isinstance(raw, str):
            problems.append((where, f"expected a string, got {raw!r}"))
            return raw
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, raw):
            accepted = meta.get("accepts") or f"a string matching {pattern}"
            problems.append((where, f"expected {accepted}, got {raw!r}"))
        return raw
    raise TypeError(f"{where}: unsupported field type {tp!r}")  # a programming error


def _check_bounds(
    value: float, where: str, meta: Mapping[str, Any], problems: list[Problem]
) -> None:
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and value < low:
        problems.append((where, f"must be >= {_num(low)}, got {value}"))
    if high is not None and value > high:
        problems.append((where, f"must be <= {_num(high)}, got {value}"))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _closest(name: str, known: set[str]) -> str:
    match = difflib.get_close_matches(name, sorted(known), n=1)
    if match:
        return f"; did you mean {match[0]!r}?"
    return f"; known fields: {', '.join(sorted(known))}"
