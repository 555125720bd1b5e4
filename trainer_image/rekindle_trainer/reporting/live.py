"""The trainer's side of ``GET /progress``: what :class:`Reporter` learns, as one document.

Pure bookkeeping under a lock: the training thread and the checkpoint writer
update it, the metrics server's threads read it. Nothing here waits on the
device or on I/O, so serving the document never slows training.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from rekindle_trainer.contract.live import (
    SAVE_WINDOW,
    LiveBest,
    LiveCheckpoint,
    LiveProgress,
    p99,
)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class LiveState:
    """The latest :class:`LiveProgress` of this attempt.

    Args:
        clock: the time source (Unix seconds), passed in for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._doc = LiveProgress()
        #: This attempt's newest save durations (``saveSecondsP99`` is measured over them).
        self._save_seconds: collections.deque[float] = collections.deque(maxlen=SAVE_WINDOW)

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._doc = dataclasses.replace(self._doc, **changes)  # type: ignore[arg-type]

    def document(self) -> LiveProgress:
        """The document as it stands (immutable: safe to serialise on any thread)."""
        with self._lock:
            return self._doc

    def started(self, attempt: int, epoch: int, step: int, restored_from: str | None) -> None:
        """The attempt starts at (``epoch``, ``step``), from checkpoint ``restored_from`` if any."""
        checkpoint = None
        if restored_from is not None:
            checkpoint = LiveCheckpoint(
                name=restored_from, time=_utc(self._clock()), epoch=epoch, step=step
            )
        self._update(attempt=attempt, epoch=epoch, step=step, checkpoint=checkpoint)

    def phase(self, phase: str) -> None:
        """``training`` or ``finishing``."""
        self._update(phase=phase)

    def step(self, step: int) -> None:
        """One more step finished (global step ``step``)."""
        with self._lock:
            self._doc = dataclasses.replace(
                self._doc,
                step=step,
                steps_this_attempt=self._doc.steps_this_attempt + 1,
                last_step_time=_utc(self._clock()),
            )

    def epoch(self, epoch: int, step: int, best: LiveBest | None) -> None:
        """``epoch`` epochs are done; ``best`` so far, if a monitor has one."""
        changes: dict[str, object] = {"epoch": epoch, "step": step}
        if best is not None:
            changes["best"] = best
        self._update(**changes)

    def checkpoint(self, name: str, *, epoch: int, step: int, seconds: float) -> None:
        """Checkpoint ``name`` was published, ``seconds`` after its save began."""
        published = LiveCheckpoint(
            name=name,
            time=_utc(self._clock()),
            epoch=epoch,
            step=step,
            save_seconds=round(seconds, 4),
        )
        with self._lock:
            self._save_seconds.append(seconds)
            self._doc = dataclasses.replace(
                self._doc,
                checkpoint=published,
                saves=self._doc.saves + 1,
                save_seconds_p99=round(p99(self._save_seconds) or 0.0, 4),
            )
