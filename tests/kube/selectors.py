"""Label and field selectors as the API server parses and applies them.

Pure functions: ``parse_label_selector`` / ``parse_field_selector`` turn the
query strings of ``?labelSelector=`` and ``?fieldSelector=`` into requirement
lists, ``matches`` checks an object against them. Malformed selectors raise
:class:`SelectorError` naming the bad term, as the API server answers 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_SET_TERM = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|=|!=)\s*([A-Za-z0-9_.\-]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_.\-/]+)\s*$")
_FIELD_TERM = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(==|=|!=)\s*(.*?)\s*$")


class SelectorError(ValueError):
    """A selector string that the API server would reject with 400 Bad Request."""


@dataclass(frozen=True)
class Requirement:
    """One term of a selector: ``key op values``."""

    key: str
    op: Operator
    values: tuple[str, ...] = ()

    def check(self, value: str | None) -> bool:
        """Whether a label/field ``value`` (None when absent) satisfies this term."""
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        # "!=" and "notin" also match objects without the key, as in Kubernetes.
        return value is None or value not in self.values


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``( … )`` value sets."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term for term in terms if term.strip()]


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h`` into requirements."""
    requirements: list[Requirement] = []
    for term in _split_terms(text):
        if match := _SET_TERM.match(term):
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            op: Operator = "in" if match.group(2) == "in" else "notin"
            requirements.append(Requirement(match.group(1), op, values))
        elif match := _EQ_TERM.match(term):
            op = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), op, (match.group(3),)))
        elif match := _EXISTS_TERM.match(term):
            op = "!exists" if match.group(1) else "exists"
            requirements.append(Requirement(match.group(2), op))
        else:
            raise SelectorError(
                f"labelSelector: cannot parse the term {term.strip()!r}; "
                "use key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
            )
    return tuple(requirements)


def parse_field_selector(text: str) -> tuple[Requirement, ...]:
    """Parse ``metadata.name=x,status.phase!=Failed`` into requirements."""
    requirements: list[Requirement] = []
    for term in _split_terms(text):
        match = _FIELD_TERM.match(term)
        if not match:
            raise SelectorError(
                f"fieldSelector: cannot parse the term {term.strip()!r}; "
                "use field=value, field==value or field!=value (e.g. metadata.name=job-1)"
            )
        op: Operator = "!=" if match.group(2) == "!=" else "="
        requirements.append(Requirement(match.group(1), op, (match.group(3),)))
    return tuple(requirements)


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """The value at a dotted ``path`` as a string (None when absent), as field selectors see it."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if node is None or isinstance(node, (Mapping, list)):
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def matches(
    obj: Mapping[str, Any],
    labels: Sequence[Requirement] = (),
    fields: Sequence[Requirement] = (),
) -> bool:
    """Whether ``obj`` satisfies every label and field requirement."""
    obj_labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
    if not all(req.check(obj_labels.get(req.key)) for req in labels):
        return False
    # A field compared with "!=" against an absent field is "" in Kubernetes, not "absent".
    return all(req.check(field_value(obj, req.key) or "") for req in fields)
