"""Kubernetes Events about a TrainingJob, built as plain dicts (``kubectl describe tj`` shows them).

Pure: the time and the name suffix are passed in, so a test can compare whole
objects. Sending is :mod:`rekindle_operator.cluster.kubeapi`'s job.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

from rekindle_trainer.contract import timestamps

#: ``source.component`` and ``reportingComponent`` of every event the operator posts.
COMPONENT: Final = "rekindle-operator"
#: Kubernetes cuts an event's message at 1 KiB; keep ours whole-worded and short.
MAX_MESSAGE_CHARS: Final = 1024


def build_event(
    job: Mapping[str, Any],
    *,
    type_: str,
    reason: str,
    message: str,
    now: datetime.datetime,
    suffix: str,
    instance: str = "",
) -> dict[str, Any]:
    """A core/v1 Event about ``job`` (its body or metadata-bearing dict).

    Args:
        job: the TrainingJob (``apiVersion``, ``kind`` and ``metadata`` are read).
        type_: ``Normal`` or ``Warning``.
        reason: one CamelCase word (see :class:`reasons.EventReason`).
        message: what happened, for a person.
        now: the time of the event.
        suffix: makes the event's name unique (``<job>.<suffix>``).
        instance: which operator replica reports it (its pod name).
    """
    meta = job.get("metadata", {})
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    when = timestamps.format_time(now.replace(microsecond=0))
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    involved = {
        "apiVersion": job.get("apiVersion", "rekindle.dev/v1alpha1"),
        "kind": job.get("kind", "TrainingJob"),
        "name": name,
        "namespace": namespace,
    }
    if meta.get("uid"):
        involved["uid"] = meta["uid"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{suffix}", "namespace": namespace},
        "involvedObject": involved,
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }
