"""``events.k8s.io/v1`` Events as views of the core ``v1`` Events (one store, as in Kubernetes).

An API server keeps one kind of Event and serves it in both groups: an event
a controller records through the core API is listed by ``events.k8s.io/v1``
with its fields renamed (``involvedObject`` is ``regarding``, ``message`` is
``note``, ``firstTimestamp`` is ``deprecatedFirstTimestamp``…) and the other
way round. Pure functions: :func:`to_events_v1` and :func:`to_core`, from
Kubernetes' ``pkg/apis/events/v1`` conversion.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import kmock

CORE_EVENTS = kmock.resource("", "v1", "events")
EVENTS_V1 = kmock.resource("events.k8s.io", "v1", "events")

#: core ``v1`` field name -> ``events.k8s.io/v1`` field name (the rest have one name).
RENAMED = {
    "involvedObject": "regarding",
    "message": "note",
    "reportingComponent": "reportingController",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
}
_BACK = {new: old for old, new in RENAMED.items()}


def _renamed(obj: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        result[names.get(key, key)] = copy.deepcopy(value)
    return result


def to_events_v1(event: Mapping[str, Any]) -> dict[str, Any]:
    """A core Event as ``events.k8s.io/v1`` serves it."""
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", **_renamed(event, RENAMED)}


def to_core(event: Mapping[str, Any]) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event as the core API stores it."""
    return {"apiVersion": "v1", "kind": "Event", **_renamed(event, _BACK)}
