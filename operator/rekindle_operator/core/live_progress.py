"""When the operator reads a running trainer's ``/progress``, and when it writes what it read.

Pure rules over a per-attempt :class:`Track`, so that the rates are tested
without a cluster: a job is read only while its attempt runs (an idle,
queued or finished job costs nothing), every :attr:`LivePolicy.poll_seconds`;
its status is written only when the reading changed, at most once every
:attr:`LivePolicy.min_write_seconds` when an epoch ended, a checkpoint was
published or the best value moved, and at most once every
:attr:`LivePolicy.step_write_seconds` when only the step counter moved. That
bounds the API server's writes per job per minute whatever the trainer does.
Times are ``time.monotonic()`` seconds, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from rekindle_operator.core.observation import Progress
from rekindle_trainer.contract.live import LiveProgress

#: Seconds between two reads of a running trainer's document.
POLL_SECONDS: Final = 10.0
#: The soonest a second status write for an epoch end, a save or a new best follows the last.
MIN_WRITE_SECONDS: Final = 10.0
#: The soonest a status write for the step counter alone follows the last.
STEP_WRITE_SECONDS: Final = 60.0
#: How long one read may take before it counts as unanswered.
READ_TIMEOUT_SECONDS: Final = 3.0


@dataclass(frozen=True)
class LivePolicy:
    """The rates (defaults: a change is in the status within 20 s; ≤ 6 writes/job/min)."""

    poll_seconds: float = POLL_SECONDS
    min_write_seconds: float = MIN_WRITE_SECONDS
    step_write_seconds: float = STEP_WRITE_SECONDS
    timeout_seconds: float = READ_TIMEOUT_SECONDS

    def writes_per_minute(self) -> float:
        """The most status writes one job's readings can cause per minute."""
        return 60.0 / min(self.min_write_seconds, self.step_write_seconds)


@dataclass(frozen=True)
class Track:
    """What the operator knows of one running attempt's readings."""

    attempt: int
    #: When the attempt was first seen running (the first step's allowance counts from here).
    since: float
    #: The next read is due at this time.
    next_poll: float
    #: The newest reading that answered.
    reading: Progress | None = None
    #: The reading the last write carried (None: none written yet).
    written: Progress | None = None
    #: When the last write for a reading was asked for.
    written_at: float | None = None
    #: The trainer's ``stepsThisAttempt`` last seen, and since when it has not moved.
    steps: int | None = None
    steps_since: float | None = None
    #: Checkpoints the attempt published, and the p99 of their durations, as last read
    #: (:mod:`rekindle_operator.core.grace` judges the grace period by them).
    saves: int = 0
    save_p99: float | None = None


def start(attempt: int, now: float) -> Track:
    """The track of an attempt just seen running: read it at once."""
    return Track(attempt=attempt, since=now, next_poll=now, steps_since=now)


def progress_of(doc: LiveProgress) -> Progress:
    """What of a document the status shows (through the engine's progress merge)."""
    best = doc.best
    checkpoint = doc.checkpoint
    return Progress(
        epoch=doc.epoch,
        step=doc.step,
        checkpoint=checkpoint.name if checkpoint is not None else None,
        checkpoint_time=checkpoint.time if checkpoint is not None else None,
        best_metric=best.value if best is not None else None,
        monitor=best.monitor if best is not None else None,
        best_epoch=best.epoch if best is not None else None,
    )


def _notable(a: Progress | None, b: Progress) -> bool:
    """Whether ``b`` differs from ``a`` in more than the step counter."""
    if a is None:
        return True
    return replace(a, step=None) != replace(b, step=None)


def observe(
    track: Track, policy: LivePolicy, doc: LiveProgress | None, now: float
) -> tuple[Track, bool]:
    """Take one read (``doc``; None: no answer); the new track and whether to write now."""
    track = replace(track, next_poll=now + policy.poll_seconds)
    if doc is None:
        return track, False
    reading = progress_of(doc)
    if track.steps is None or doc.steps_this_attempt != track.steps:
        track = replace(track, steps=doc.steps_this_attempt, steps_since=now)
    track = replace(track, reading=reading, saves=doc.saves, save_p99=doc.save_seconds_p99)
    if reading == track.written:
        return track, False
    waited = float("inf") if track.written_at is None else now - track.written_at
    wait = (
        policy.min_write_seconds if _notable(track.written, reading) else policy.step_write_seconds
    )
    if waited < wait:
        return track, False
    return replace(track, written=reading, written_at=now), True


@dataclass(frozen=True)
class StallRule:
    """``restartPolicy.stallTimeoutSeconds`` and the first step's allowance, in seconds."""

    timeout_seconds: float
    first_step_seconds: float


def stall_message(
    rule: StallRule | None, *, since: float, stepped: bool, moved_at: float | None, now: float
) -> str | None:
    """Why the attempt counts as stalled now, or None.

    ``since``: when the attempt was first seen running; ``stepped``: a step was
    seen in this attempt, the last one at ``moved_at``. A trainer that does not
    answer moves nothing, so a frozen process is caught like a stuck one.
    """
    if rule is None:
        return None
    if not stepped:
        if now - since < rule.first_step_seconds:
            return None
        return (
            f"no training step within restartPolicy.firstStepTimeoutSeconds "
            f"({rule.first_step_seconds:g} s) of the attempt running"
        )
    if moved_at is None or now - moved_at < rule.timeout_seconds:
        return None
    return (
        f"no training step for {now - moved_at:.0f} s "
        f"(restartPolicy.stallTimeoutSeconds: {rule.timeout_seconds:g})"
    )


def stalled(track: Track, rule: StallRule | None, now: float) -> str | None:
    """:func:`stall_message` of an attempt the operator reads."""
    return stall_message(
        rule,
        since=track.since,
        stepped=bool(track.steps),
        moved_at=track.steps_since,
        now=now,
    )


def stall_rule(timeout_seconds: int | None, first_step_seconds: int) -> StallRule | None:
    """The rule a spec's ``restartPolicy`` sets (None: off)."""
    if timeout_seconds is None:
        return None
    return StallRule(float(timeout_seconds), float(first_step_seconds))
