"""What ``kubectl get`` prints for a custom resource: its CRD's ``additionalPrinterColumns``.

Pure functions. :func:`columns` reads the printer columns of one served
version of a ``CustomResourceDefinition`` (NAME first, then the CRD's own,
``priority > 0`` only with ``wide``), :func:`jsonpath` evaluates the simple
JSONPath forms CRDs use (``.status.phase``, ``.items[0]``,
``.status.conditions[?(@.type=="Ready")].status``) and :func:`rows` gives one
dict per object, as a table a test can assert on. ``date`` columns print as
kubectl's age (``42s``, ``2m30s``, ``45m``, ``3h20m``, ``2d5h``), as the API server's
``duration.HumanDuration`` writes it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*["']([^"']*)["']\)\]"""
)


class JsonPathError(ValueError):
    """A JSONPath this printer does not understand."""


@dataclass(frozen=True)
class Column:
    """One printer column."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


def columns(crd: Mapping[str, Any], version: str, *, wide: bool = False) -> list[Column]:
    """NAME, then the version's ``additionalPrinterColumns`` (AGE alone when it has none)."""
    for served in (crd.get("spec") or {}).get("versions") or []:
        if served.get("name") != version:
            continue
        declared = [
            Column(c["name"], c["jsonPath"], c.get("type", "string"), int(c.get("priority", 0)))
            for c in served.get("additionalPrinterColumns") or []
        ]
        if not declared:
            declared = [Column("Age", ".metadata.creationTimestamp", "date")]
        shown = [c for c in declared if wide or c.priority == 0]
        return [Column("Name", ".metadata.name"), *shown]
    raise KeyError(f"the CRD serves no version {version!r}")


def jsonpath(obj: Any, path: str) -> Any:
    """The value at ``path`` in ``obj`` (None where absent)."""
    position, node = 0, obj
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise JsonPathError(f"unsupported JSONPath {path!r} at {path[position:]!r}")
        position = match.end()
        key, index, filter_key, filter_value = match.groups()
        if key is not None:
            node = node.get(key) if isinstance(node, Mapping) else None
        elif index is not None:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        else:
            node = (
                next(
                    (
                        item
                        for item in node or []
                        if str(jsonpath(item, "." + filter_key)) == filter_value
                    ),
                    None,
                )
                if isinstance(node, list)
                else None
            )
        if node is None:
            return None
    return node


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration``: ``5s``, ``2m30s``, ``45m``, ``3h20m``, ``2d5h``."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def parse_time(timestamp: str) -> datetime.datetime:
    """An RFC 3339 timestamp (``Z`` or an offset; fractions of a second allowed)."""
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def age(timestamp: str, now: datetime.datetime) -> str:
    """kubectl's age of an RFC 3339 timestamp (``translateTimestampSince``)."""
    return human_duration((now - parse_time(timestamp)).total_seconds())


def rows(
    objects: Iterable[Mapping[str, Any]], cols: list[Column], now: datetime.datetime
) -> list[dict[str, Any]]:
    """One ``{column name: value}`` per object; dates as ages, absent values as None."""
    table: list[dict[str, Any]] = []
    for obj in objects:
        row: dict[str, Any] = {}
        for column in cols:
            value = jsonpath(obj, column.json_path)
            if column.type == "date" and isinstance(value, str):
                value = age(value, now)
            row[column.name] = value
        table.append(row)
    return table
