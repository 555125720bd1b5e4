"""Wake-ups for the per-job reconcilers: a pod changed, the spec changed, a timer is due.

Each TrainingJob has one reconciler task (a kopf daemon) that sleeps until it is
woken or something it waits for falls due. Pod and job events only set a flag
here; they never act themselves, so a burst of events costs one reconcile.
The registry also keeps the last body of each pod seen deleted, because a
deleted pod is gone from the API but its last state says why it ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JobKey = tuple[str, str]


@dataclass
class JobSlot:
    """What one job's reconciler waits on, and what the events left for it."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    #: Pod name -> the last body seen before it was deleted.
    gone: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The spec last seen on a job event, to wake only on spec changes.
    spec: Any = None
    #: ``time.monotonic()`` of the first wake not yet taken (for the reaction metric).
    woken_at: float | None = None
    #: Pod name -> ``time.monotonic()`` when the API was first found without it.
    missing: dict[str, float] = field(default_factory=dict)


class Wakeups:
    """Per-job wake-up flags, keyed by (namespace, name)."""

    def __init__(self) -> None:
        self._slots: dict[JobKey, JobSlot] = {}

    def slot(self, key: JobKey) -> JobSlot:
        """The slot of ``key``, created on first use."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = JobSlot()
        return slot

    def wake(self, key: JobKey) -> None:
        """Ask the reconciler of ``key`` to look again (cheap; coalesces)."""
        slot = self.slot(key)
        if slot.woken_at is None:
            slot.woken_at = time.monotonic()
        slot.event.set()

    def take(self, key: JobKey) -> float | None:
        """Clear the flag before a reconcile; the time of the wake it answers, if any."""
        slot = self.slot(key)
        slot.event.clear()
        woken_at, slot.woken_at = slot.woken_at, None
        return woken_at

    def spec_changed(self, key: JobKey, spec: Mapping[str, Any]) -> bool:
        """Record ``spec``; whether it differs from the one seen before.

        The first sighting is no change: the job's reconciler starts with a pass anyway.
        """
        slot = self.slot(key)
        plain = dict(spec)
        changed = slot.spec is not None and bool(slot.spec != plain)
        slot.spec = plain
        return changed

    def remember_gone(self, key: JobKey, pod: Mapping[str, Any]) -> None:
        """Keep the last body of a deleted pod for the next reconcile."""
        name = pod.get("metadata", {}).get("name")
        if name:
            self.slot(key).gone[name] = dict(pod)

    def gone_pod(self, key: JobKey, name: str) -> dict[str, Any] | None:
        """The last body of pod ``name`` if it was seen deleted."""
        return self.slot(key).gone.get(name)

    def first_missing(self, key: JobKey, name: str) -> float:
        """When pod ``name`` was first found missing from the API (now, the first time)."""
        return self.slot(key).missing.setdefault(name, time.monotonic())

    def forget_gone(self, key: JobKey, keep: str | None = None) -> None:
        """Drop the deleted pods remembered for ``key`` (all but ``keep``)."""
        slot = self.slot(key)
        slot.gone = {k: v for k, v in slot.gone.items() if k == keep}
        slot.missing = {k: v for k, v in slot.missing.items() if k == keep}

    def forget(self, key: JobKey) -> None:
        """Drop everything about a job that is gone."""
        self._slots.pop(key, None)

    def __len__(self) -> int:
        return len(self._slots)
