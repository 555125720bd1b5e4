"""What the engine is told about the current attempt: it runs, it ended, or nothing new.

The readers in :mod:`rekindle_operator.resources.classify` turn a pod or a
local process into one of these; :func:`rekindle_operator.core.engine.decide`
takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rekindle_operator.core.reasons import Cause
from rekindle_trainer.contract import TerminationMessage, Timing


@dataclass(frozen=True, kw_only=True)
class Progress:
    """What an attempt reported about training: the trainer's termination message or progress."""

    epoch: int | None = None
    step: int | None = None
    checkpoint: str | None = None
    #: When ``checkpoint`` was published, when known (live progress; not in a termination message).
    checkpoint_time: datetime | None = None
    best_metric: float | None = None
    monitor: str | None = None
    best_epoch: int | None = None
    early_stop_epoch: int | None = None
    lost_steps: int = 0
    #: Where the attempt's time went, as the trainer measured it (goodput).
    timing: Timing | None = None

    @classmethod
    def from_termination(cls, message: TerminationMessage) -> Progress:
        """The progress a termination message reports."""
        return cls(
            epoch=message.epoch,
            step=message.step,
            checkpoint=message.checkpoint,
            best_metric=message.best_metric,
            monitor=message.monitor,
            best_epoch=message.best_epoch,
            early_stop_epoch=message.early_stop_epoch,
            lost_steps=message.lost_steps,
            timing=message.timing,
        )


@dataclass(frozen=True, kw_only=True)
class AttemptEnd:
    """Attempt ``attempt`` is over, because of ``cause``."""

    attempt: int
    cause: Cause
    exit_code: int | None = None
    #: For a person: what happened (the error text, the eviction message, …).
    message: str = ""
    #: The trainer's termination message, when it wrote one.
    progress: Progress | None = None
    #: Of a gang (``spec.workers`` > 1): the worker whose end ended the attempt.
    worker: int | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptRunning:
    """Attempt ``attempt`` is running (its trainer container started)."""

    attempt: int
    progress: Progress | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptPending:
    """Attempt ``attempt``'s pod exists and its trainer does not run yet.

    Either it waits for its turn (``queued``: a queue such as Kueue has not
    admitted it, or no node is free), which never counts against the pending
    timeout, or it has a node and its containers are being made ready, which
    counts from ``since``.
    """

    attempt: int
    #: Why it waits for a node, one word (WaitingForAdmission, SchedulingGated,
    #: Unschedulable, WaitingForScheduler); None: it has one.
    queued: str | None = None
    #: For a person: what the queue or the scheduler says.
    message: str = ""
    #: With a node: since when the pending timeout counts (when it got the node).
    since: datetime | None = None
    #: With a node, it cannot start for a cause outside the job (one word, e.g.
    #: ``MultiAttachError``: its volume is attached to another, dead node); the
    #: message says what; the pending timeout does not count.
    blocked: str | None = None


#: What the engine is told about the current attempt.
Observation = AttemptEnd | AttemptRunning | AttemptPending | None


@dataclass(frozen=True, kw_only=True)
class CreateRefused:
    """The API server refused to create an attempt's pod (or claim), read from its answer."""

    #: One CamelCase word: ExceededQuota, PodSecurity, AdmissionWebhook, Invalid, …
    reason: str
    #: The API server's own message.
    message: str
    #: No retry can help (admission policy, an invalid object): the job fails. Otherwise
    #: (quota, the operator's permissions, a server error) the create is retried after a backoff.
    permanent: bool
