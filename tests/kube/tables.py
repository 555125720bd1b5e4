"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…``
and prints the columns the server chose; a server that answers a plain list
gets NAME and AGE only. Pure functions: :func:`table_version` reads the Accept
header, :func:`crd_printer` turns a CRD version's ``additionalPrinterColumns``
into a :class:`Printer` (JSONPath evaluated here, on the server, with the
API server's cell types: integers, numbers, booleans, and ``date`` as an age),
:data:`DEFAULT_PRINTER` is the API server's default (Name, Created At), and
:func:`table` builds the document, each row with its object as the
``includeObject`` parameter asks (``Metadata``, the default: a
``PartialObjectMetadata``; ``Object``; ``None``). Every column is sent, the
``priority: 1`` ones too: ``kubectl get -o wide`` shows those.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.kube import printer, query
from tests.kube.store import ApiError

Cells = Callable[[Mapping[str, Any], datetime.datetime], list[Any]]

#: ``includeObject`` values, as the API server accepts them.
INCLUDE_OBJECT = ("None", "Metadata", "Object")
#: Table versions the emulator serves (kubectl asks for v1, then v1beta1).
TABLE_VERSIONS = ("v1", "v1beta1")
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically."
)
CREATED_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)


@dataclass(frozen=True)
class ColumnDef:
    """A ``TableColumnDefinition``."""

    name: str
    type: str = "string"
    format: str = ""
    priority: int = 0
    description: str = ""

    def document(self) -> dict[str, Any]:
        """The column as the Table lists it."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME_COLUMN = ColumnDef("Name", format="name", description=NAME_DESCRIPTION)


@dataclass(frozen=True)
class Printer:
    """The columns of a kind and how to fill one row (``conditions``: a row's own conditions)."""

    columns: tuple[ColumnDef, ...]
    cells: Cells
    conditions: Callable[[Mapping[str, Any]], list[dict[str, Any]]] = field(default=lambda _obj: [])


def table_version(accept: str) -> str | None:
    """The Table version the Accept header asks for first (None: a plain answer).

    Raises:
        ApiError: 406 when the header asks only for Table versions not served.
    """
    asked_table = False
    for media_range in accept.split(","):
        parts = [p.strip() for p in media_range.split(";")]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if params.get("as") != "Table":
            if parts[0] in ("application/json", "*/*", "application/*"):
                return None  # a plain object is acceptable before any Table that follows
            continue
        asked_table = True
        if params.get("g") == "meta.k8s.io" and params.get("v") in TABLE_VERSIONS:
            return params["v"]
    if asked_table:
        raise ApiError(
            406,
            "NotAcceptable",
            f"only the following media types are accepted: application/json, "
            f"application/json;as=Table;v=v1;g=meta.k8s.io (asked: {accept})",
        )
    return None


def include_object(params: Mapping[str, str]) -> str:
    """``includeObject`` (default ``Metadata``); 400 for another value."""
    return query.choice(params, "includeObject", INCLUDE_OBJECT, "Metadata")


def partial_metadata(obj: Mapping[str, Any], version: str) -> dict[str, Any]:
    """A row's object when ``includeObject=Metadata``: the object's metadata alone."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": dict(obj.get("metadata") or {}),
    }


def _row(
    obj: Mapping[str, Any], print_with: Printer, now: datetime.datetime, include: str, version: str
) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": print_with.cells(obj, now)}
    conditions = print_with.conditions(obj)
    if conditions:
        row["conditions"] = conditions
    if include == "Metadata":
        row["object"] = partial_metadata(obj, version)
    elif include == "Object":
        row["object"] = dict(obj)
    return row


def table(
    objects: Iterable[Mapping[str, Any]],
    print_with: Printer,
    now: datetime.datetime,
    *,
    version: str = "v1",
    include: str = "Metadata",
    list_meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Table of ``objects`` (one row each, in order)."""
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": dict(list_meta or {}),
        "columnDefinitions": [c.document() for c in print_with.columns],
        "rows": [_row(obj, print_with, now, include, version) for obj in objects],
    }


def _default_cells(obj: Mapping[str, Any], _now: datetime.datetime) -> list[Any]:
    meta = obj.get("metadata") or {}
    return [meta.get("name"), meta.get("creationTimestamp")]


#: What the API server prints for a kind with no printer of its own (``NewDefaultTableConvertor``).
DEFAULT_PRINTER = Printer(
    (NAME_COLUMN, ColumnDef("Created At", "date", description=CREATED_DESCRIPTION)),
    _default_cells,
)


def go_string(value: Any) -> str:
    """A JSON value as Go's ``fmt`` prints it in a JSONPath string column."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def typed_cell(kind: str, value: Any, now: datetime.datetime) -> Any:
    """A CRD column's cell as the API server types it (``cellForJSONValue``); None if absent."""
    if value is None:
        return None
    if kind == "string":
        return go_string(value)
    if kind == "integer":
        return (
            int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        )
    if kind == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        if not isinstance(value, str):
            return None
        try:
            return printer.age(value, now)
        except ValueError:
            return "<invalid>"
    return go_string(value)


def crd_printer(crd: Mapping[str, Any], version: str) -> Printer:
    """The Table of a custom resource: Name, then the version's printer columns (Age if none)."""
    columns = printer.columns(crd, version, wide=True)[1:]  # Name is the first, always

    def cells(obj: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
        name = (obj.get("metadata") or {}).get("name")
        values = [printer.jsonpath(obj, c.json_path) for c in columns]
        return [name, *(typed_cell(c.type, v, now) for c, v in zip(columns, values, strict=True))]

    definitions = tuple(
        ColumnDef(
            c.name,
            c.type,
            description=description,
            priority=c.priority,
        )
        for c, description in zip(columns, _descriptions(crd, version, columns), strict=True)
    )
    return Printer((NAME_COLUMN, *definitions), cells)


def _descriptions(
    crd: Mapping[str, Any], version: str, columns: Sequence[printer.Column]
) -> list[str]:
    for served in (crd.get("spec") or {}).get("versions") or []:
        if served.get("name") == version:
            declared = {
                c.get("name"): c.get("description", "")
                for c in served.get("additionalPrinterColumns") or []
            }
            return [
                declared.get(c.name) or (CREATED_DESCRIPTION if c.type == "date" else "")
                for c in columns
            ]
    return ["" for _ in columns]
