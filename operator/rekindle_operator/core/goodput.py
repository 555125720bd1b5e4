"""Goodput: where a job's wall time went, kept in ``status.goodput`` (pure arithmetic).

The job's wall time from its first start is cut into consecutive intervals,
each attributed once: to productive training or to one cause of badput.
``through`` is the instant up to which time is attributed; every fold covers
exactly ``[through, now]`` and moves ``through`` to ``now``, so

    productiveSeconds + sum(badputSeconds) == through - since

holds after every fold, no second counted twice and none negative. The engine
folds at attempt granularity: when an attempt is created (the gap before it),
when its pod leaves the queue, and when it ends (its body, split with the
trainer's own :class:`~rekindle_trainer.contract.Timing`). See the Goodput
section of ``docs/monitoring.md`` for each cause.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from rekindle_trainer.contract import Timing
from rekindle_trainer.contract.documents import schema


class BadputCause(enum.StrEnum):
    """Why a second was not productive training (the ``cause`` label of the metrics)."""

    #: Waiting for admission (a queue such as Kueue, a refused create) or for a node.
    QUEUED = "queued"
    #: Pod created (or admitted) → first step, restore excluded; and an attempt's tail.
    STARTUP = "startup"
    #: Reading the checkpoint an attempt resumed from.
    RESTORE = "restore"
    #: Training waiting on a save.
    CHECKPOINT_STALL = "checkpoint_stall"
    #: Attempt ended → next attempt created (the restart backoff).
    RESTART_DOWNTIME = "restart_downtime"
    #: Steps trained again because an attempt ended after its last checkpoint.
    LOST_WORK_REPLAYED = "lost_work_replayed"
    #: An attempt that ended without the trainer's timing (SIGKILL, OOM, a lost node).
    UNREPORTED = "unreported"
    #: ``spec.suspend``: nothing ran, on purpose.
    SUSPENDED = "suspended"


@dataclass(frozen=True, kw_only=True)
class Badput:
    """Seconds of the job's wall time that were not productive training, by cause."""

    #: Waiting for admission (Kueue's scheduling gate, a refused create) or for a node.
    queued: float = field(default=0.0, metadata=schema("queued", minimum=0))
    #: Pod created or admitted → first step, restore excluded; plus an attempt's tail.
    startup: float = field(default=0.0, metadata=schema("startup", minimum=0))
    #: Reading the checkpoint an attempt resumed from.
    restore: float = field(default=0.0, metadata=schema("restore", minimum=0))
    #: Training waiting on checkpoint saves.
    checkpoint_stall: float = field(default=0.0, metadata=schema("checkpointStall", minimum=0))
    #: Attempt ended → next attempt created (restart backoff).
    restart_downtime: float = field(default=0.0, metadata=schema("restartDowntime", minimum=0))
    #: Steps trained again after an attempt ended past its last checkpoint.
    lost_work_replayed: float = field(default=0.0, metadata=schema("lostWorkReplayed", minimum=0))
    #: Attempts that ended without the trainer's timing (SIGKILL, OOM, lost node).
    unreported: float = field(default=0.0, metadata=schema("unreported", minimum=0))
    #: Suspended by ``spec.suspend``.
    suspended: float = field(default=0.0, metadata=schema("suspended", minimum=0))

    def by_cause(self) -> dict[BadputCause, float]:
        """Seconds per cause, in declaration order."""
        return {BadputCause(f.name): getattr(self, f.name) for f in fields(self)}

    def total(self) -> float:
        """All badput seconds."""
        return sum(self.by_cause().values())


@dataclass(frozen=True, kw_only=True)
class GpuSeconds:
    """GPUs times seconds (``resources.gpus`` times ``workers``)."""

    #: Epochs early stopping skipped times the mean productive epoch time.
    saved_by_early_stopping: float = field(
        default=0.0, metadata=schema("savedByEarlyStopping", minimum=0)
    )
    #: Held redoing what interruptions undid: replayed work, restarts' startup and
    #: restore, and unreported attempts.
    lost_to_interruptions: float = field(
        default=0.0, metadata=schema("lostToInterruptions", minimum=0)
    )


@dataclass(frozen=True, kw_only=True)
class Goodput:
    """``status.goodput``: productive seconds and badput by cause, from ``since`` to ``through``."""

    #: When the job first started (suspensions do not move it).
    since: datetime = field(metadata=schema("since", required=True))
    #: Wall time is attributed up to here (the last attempt start, queue exit or end).
    through: datetime = field(metadata=schema("through", required=True))
    #: Seconds of steps that moved training forward (evaluation and callbacks included).
    productive_seconds: float = field(default=0.0, metadata=schema("productiveSeconds", minimum=0))
    badput_seconds: Badput = field(default_factory=Badput, metadata=schema("badputSeconds"))
    gpu_seconds: GpuSeconds = field(default_factory=GpuSeconds, metadata=schema("gpuSeconds"))

    @property
    def wall_seconds(self) -> float:
        """``through - since``: what productive and badput seconds add up to."""
        return (self.through - self.since).total_seconds()

    @property
    def ratio(self) -> float | None:
        """Productive seconds over wall seconds; None before any time passed."""
        wall = self.wall_seconds
        return self.productive_seconds / wall if wall > 0 else None


def begin(now: datetime) -> Goodput:
    """Goodput of a job starting at ``now``: nothing attributed yet."""
    return Goodput(since=now, through=now)


def gap(goodput: Goodput, now: datetime, cause: BadputCause) -> Goodput:
    """``[through, now]`` was spent between attempts, all of it for ``cause``."""
    return _fold(goodput, now, {cause: _span(goodput, now)})


def queue_left(goodput: Goodput, *, queued_since: datetime, now: datetime) -> Goodput:
    """An attempt's pod left the queue at ``now``: ``[queued_since, now]`` was queued.

    What lies between ``through`` (the attempt's creation) and ``queued_since``
    was the pod's own startup.
    """
    return _fold(goodput, now, _queue_split(goodput, queued_since, now))


@dataclass(frozen=True, kw_only=True)
class AttemptTimes:
    """What the engine knows of an attempt that ended at ``end``."""

    end: datetime
    #: Its pod was still in the queue when it ended: since when.
    queued_since: datetime | None = None
    #: The trainer's measurements; None: it wrote no termination message with them.
    timing: Timing | None = None
    #: Steps the trainer reported replayed in this attempt (the rise of ``lostSteps``).
    replayed_steps: int = 0
    #: Whether it resumed after an earlier attempt (its startup and restore are then lost).
    resumed: bool = False
    #: ``resources.gpus`` times ``workers``.
    gpus: int = 0


def attempt_ended(goodput: Goodput, times: AttemptTimes) -> Goodput:
    """Attribute ``[through, end]``: the attempt's body, split by the trainer's timing."""
    end = times.end
    split: dict[BadputCause | None, float] = {}
    body_start = goodput.through
    if times.queued_since is not None:
        split.update(_queue_split(goodput, times.queued_since, end))
        body_start = end
    body = max(0.0, (end - max(body_start, goodput.through)).total_seconds())
    for cause, seconds in split_body(body, times.timing, times.replayed_steps).items():
        split[cause] = split.get(cause, 0.0) + seconds
    folded = _fold(goodput, end, split)
    lost = split.get(BadputCause.LOST_WORK_REPLAYED, 0.0) + split.get(BadputCause.UNREPORTED, 0.0)
    if times.resumed:
        lost += split.get(BadputCause.STARTUP, 0.0) + split.get(BadputCause.RESTORE, 0.0)
    gpu = folded.gpu_seconds
    gpu = replace(gpu, lost_to_interruptions=gpu.lost_to_interruptions + times.gpus * lost)
    return replace(folded, gpu_seconds=gpu)


def split_body(
    body: float, timing: Timing | None, replayed_steps: int
) -> dict[BadputCause | None, float]:
    """Cut ``body`` seconds of a running attempt by cause (None: productive); sums to ``body``.

    The trainer's own clock measured less than the pod lived (container start,
    imports before its clock, the end observed a little late): the remainder is
    startup. Should its measurements exceed ``body`` (clock skew), they are
    scaled down to fit.
    """
    body = max(0.0, body)
    if timing is None:
        return {BadputCause.UNREPORTED: body}
    restore = min(timing.restore, timing.startup)
    stall = min(timing.checkpoint_stall, timing.training)
    parts: dict[BadputCause | None, float] = {
        BadputCause.RESTORE: restore,
        BadputCause.STARTUP: timing.startup - restore,
        BadputCause.CHECKPOINT_STALL: stall,
        None: timing.training - stall,
    }
    measured = sum(parts.values())
    if measured > body:
        scale = body / measured if measured > 0 else 0.0
        parts = {cause: seconds * scale for cause, seconds in parts.items()}
    steps_time = parts[None]
    if replayed_steps > 0 and timing.steps > 0:
        replayed = min(steps_time, steps_time * replayed_steps / timing.steps)
        parts[None] = steps_time - replayed
        parts[BadputCause.LOST_WORK_REPLAYED] = replayed
    parts[BadputCause.STARTUP] += max(0.0, body - sum(parts.values()))
    return parts


def early_stopped(goodput: Goodput, *, epochs_trained: int, epochs_left: int, gpus: int) -> Goodput:
    """Credit the epochs early stopping skipped at the job's mean productive epoch time."""
    if epochs_trained <= 0 or epochs_left <= 0:
        return goodput
    saved = gpus * epochs_left * goodput.productive_seconds / epochs_trained
    gpu = replace(goodput.gpu_seconds, saved_by_early_stopping=saved)
    return replace(goodput, gpu_seconds=gpu)


def _span(goodput: Goodput, now: datetime) -> float:
    return max(0.0, (now - goodput.through).total_seconds())


def _queue_split(
    goodput: Goodput, queued_since: datetime, now: datetime
) -> dict[BadputCause | None, float]:
    """``[through, now]`` of an attempt whose pod queued from ``queued_since``."""
    start = min(max(queued_since, goodput.through), max(now, goodput.through))
    return {
        BadputCause.STARTUP: max(0.0, (start - goodput.through).total_seconds()),
        BadputCause.QUEUED: max(0.0, (now - start).total_seconds()),
    }


def _fold(goodput: Goodput, now: datetime, split: dict[BadputCause | None, float]) -> Goodput:
    """Add ``split`` (None: productive) and move ``through`` to ``now`` (never back)."""
    if now <= goodput.through:
        return goodput
    badput = goodput.badput_seconds
    changes = {
        cause.value: getattr(badput, cause.value) + max(0.0, seconds)
        for cause, seconds in split.items()
        if cause is not None
    }
    return replace(
        goodput,
        through=now,
        productive_seconds=goodput.productive_seconds + max(0.0, split.get(None, 0.0)),
        badput_seconds=replace(badput, **changes),
    )
