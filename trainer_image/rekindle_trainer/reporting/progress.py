"""Appends :class:`~rekindle_trainer.contract.ProgressEvent` lines for ``rekindle run``.

Each line is flushed at once, because the local runner tails the file to show
progress and to inject faults at a given epoch or step. ``STEP`` events are
throttled so that the file stays small and training is not slowed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, TextIO

from rekindle_trainer.contract import ProgressEvent, ProgressKind

#: At most this many STEP events per second.
STEP_EVENTS_PER_SECOND = 5.0


class ProgressLog:
    """A progress file, or nothing when the path is ``None``.

    Args:
        path: the file to append to (``REKINDLE_PROGRESS_FILE``), or ``None``.
        clock: the time source (seconds), passed in for tests.
    """

    def __init__(self, path: Path | None, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._handle: TextIO | None = None
        self._last_step_event = float("-inf")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("a", encoding="utf-8")

    def emit(self, kind: ProgressKind, **data: Any) -> None:
        """Append one event and flush it."""
        if self._handle is None:
            return
        line = ProgressEvent(kind=kind, time=self._clock(), data=data).to_json()
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()

    def step_due(self) -> bool:
        """Whether a STEP event may be written now (at most ``STEP_EVENTS_PER_SECOND``).

        Asked before building the event, so that a throttled step costs nothing
        (reading the step's logs would wait for the device).
        """
        if self._handle is None:
            return False
        now = self._clock()
        if now - self._last_step_event < 1.0 / STEP_EVENTS_PER_SECOND:
            return False
        self._last_step_event = now
        return True

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
