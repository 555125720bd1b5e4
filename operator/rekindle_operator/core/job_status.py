"""The typed ``status`` of a TrainingJob: what the operator and the local runner persist.

The state of a job lives here and only here (level-triggered: a restarted
operator or a second ``rekindle run`` reads it back and goes on). Parsing and
:func:`to_document` round-trip exactly; :func:`to_document` keeps ``None``
values so that a JSON merge patch of it clears fields that became empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from rekindle_operator.core.goodput import Goodput
from rekindle_operator.core.reasons import Cause, Phase, WorkerState
from rekindle_trainer.contract import documents
from rekindle_trainer.contract.documents import schema


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One ``metav1.Condition``; ``lastTransitionTime`` changes only when ``status`` flips."""

    type: str = field(metadata=schema("type", required=True))
    status: str = field(
        metadata=schema(
            "status", required=True, pattern=r"True|False|Unknown", accepts="True, False or Unknown"
        )
    )
    reason: str = field(metadata=schema("reason", required=True))
    message: str = field(default="", metadata=schema("message"))
    last_transition_time: datetime = field(metadata=schema("lastTransitionTime", required=True))
    observed_generation: int | None = field(
        default=None, metadata=schema("observedGeneration", minimum=0)
    )


@dataclass(frozen=True, kw_only=True)
class Restarts:
    """Restarts, split by cause. Only restarts that happened are counted."""

    total: int = field(default=0, metadata=schema("total", minimum=0))
    #: Counted toward ``restartPolicy.maxRestarts``.
    failures: int = field(default=0, metadata=schema("failures", minimum=0))
    #: Counted toward ``restartPolicy.maxDisruptions``.
    disruptions: int = field(default=0, metadata=schema("disruptions", minimum=0))
    #: Cause name (see :class:`rekindle_operator.core.reasons.Cause`) -> restarts.
    by_cause: dict[str, int] = field(default_factory=dict, metadata=schema("byCause"))

    def plus(self, cause: Cause, *, disruption: bool) -> Restarts:
        """These counts with one more restart because of ``cause``."""
        by_cause = dict(self.by_cause)
        by_cause[cause.value] = by_cause.get(cause.value, 0) + 1
        return Restarts(
            total=self.total + 1,
            failures=self.failures + (0 if disruption else 1),
            disruptions=self.disruptions + (1 if disruption else 0),
            by_cause=by_cause,
        )


@dataclass(frozen=True, kw_only=True)
class RestartBudget:
    """What is left of ``restartPolicy``'s budgets (``status.restartBudget``).

    Kept in the status, like every count, so that neither a restarted operator
    nor a second ``rekindle run`` starts it afresh; only progress does
    (``restartPolicy.resetAfterProgressEpochs``).
    """

    #: Failures counted toward ``maxRestarts`` since the budget last started afresh.
    failures_used: int = field(default=0, metadata=schema("failuresUsed", minimum=0))
    #: Failures that may still be restarted: ``maxRestarts - failuresUsed``.
    failures_left: int = field(default=0, metadata=schema("failuresLeft", minimum=0))
    #: Disruptions that may still be restarted; None: ``maxDisruptions`` unset, no cap.
    disruptions_left: int | None = field(
        default=None, metadata=schema("disruptionsLeft", minimum=0)
    )
    #: The furthest ``currentEpoch`` at a failure (or when counting began): progress
    #: toward ``resetAfterProgressEpochs`` is measured from here.
    progress_epoch: int = field(default=0, metadata=schema("progressEpoch", minimum=0))
    #: Times progress started the failure budget afresh.
    resets: int = field(default=0, metadata=schema("resets", minimum=0))


@dataclass(frozen=True, kw_only=True)
class BestMetric:
    """The best value of the monitored metric so far."""

    name: str = field(metadata=schema("name", required=True))
    value: float = field(metadata=schema("value", required=True))
    #: 1-based, as Keras prints epochs.
    epoch: int | None = field(default=None, metadata=schema("epoch", minimum=1))


@dataclass(frozen=True, kw_only=True)
class AttemptEndRecord:
    """How the last attempt that ended did so (``status.lastAttemptEnd``)."""

    attempt: int = field(metadata=schema("attempt", required=True, minimum=1))
    cause: Cause = field(metadata=schema("cause", required=True))
    exit_code: int | None = field(default=None, metadata=schema("exitCode"))
    message: str = field(default="", metadata=schema("message"))
    time: datetime | None = field(default=None, metadata=schema("time"))
    #: Of a gang (``spec.workers`` > 1): the worker whose end ended the attempt.
    worker: int | None = field(default=None, metadata=schema("worker", minimum=0))


@dataclass(frozen=True, kw_only=True)
class WorkerStatus:
    """One worker of the current attempt (``status.workers[]``): which one, and how it stands."""

    #: 0 is the chief.
    index: int = field(metadata=schema("index", required=True, minimum=0))
    #: Its pod (``rekindle run``: the name a pod would have).
    pod: str = field(metadata=schema("pod", required=True))
    state: WorkerState = field(metadata=schema("state", required=True))
    #: How it ended, once it did.
    cause: Cause | None = field(default=None, metadata=schema("cause"))
    exit_code: int | None = field(default=None, metadata=schema("exitCode"))
    message: str = field(default="", metadata=schema("message"))
    #: When it ended (its container's finish time, else when Rekindle saw it end).
    end_time: datetime | None = field(default=None, metadata=schema("endTime"))

    @property
    def ended(self) -> bool:
        """Whether its end is known (it never changes afterwards within the attempt)."""
        return self.cause is not None


@dataclass(frozen=True, kw_only=True)
class Status:
    """``status`` of a TrainingJob."""

    phase: Phase | None = field(default=None, metadata=schema("phase"))
    reason: str = field(default="", metadata=schema("reason"))
    message: str = field(default="", metadata=schema("message"))
    observed_generation: int | None = field(
        default=None, metadata=schema("observedGeneration", minimum=0)
    )
    conditions: tuple[Condition, ...] = field(default=(), metadata=schema("conditions"))
    #: The current (or last) attempt; its pod is ``<job>-<attempt>``. 0: none started yet.
    attempt: int = field(default=0, metadata=schema("attempt", minimum=0))
    restarts: Restarts = field(default_factory=Restarts, metadata=schema("restarts"))
    #: What is left of the restart budgets; None until the engine first counts (older jobs).
    restart_budget: RestartBudget | None = field(default=None, metadata=schema("restartBudget"))
    #: Epochs fully trained (0-based index of the next epoch to run).
    current_epoch: int = field(default=0, metadata=schema("currentEpoch", minimum=0))
    current_step: int = field(default=0, metadata=schema("currentStep", minimum=0))
    latest_checkpoint: str | None = field(default=None, metadata=schema("latestCheckpoint"))
    #: When :attr:`latest_checkpoint` was published, when the trainer said so while it ran.
    latest_checkpoint_time: datetime | None = field(
        default=None, metadata=schema("latestCheckpointTime")
    )
    best_metric: BestMetric | None = field(default=None, metadata=schema("bestMetric"))
    #: 1-based epoch at which early stopping fired.
    early_stop_epoch: int | None = field(default=None, metadata=schema("earlyStopEpoch", minimum=1))
    #: Steps trained twice because an attempt ended after its last checkpoint.
    lost_steps: int = field(default=0, metadata=schema("lostSteps", minimum=0))
    #: When the job (or, after a suspension, its resumption) started: the deadline counts from here.
    start_time: datetime | None = field(default=None, metadata=schema("startTime"))
    completion_time: datetime | None = field(default=None, metadata=schema("completionTime"))
    last_attempt_start_time: datetime | None = field(
        default=None, metadata=schema("lastAttemptStartTime")
    )
    #: While Restarting: when the next attempt starts.
    next_attempt_time: datetime | None = field(default=None, metadata=schema("nextAttemptTime"))
    last_attempt_end: AttemptEndRecord | None = field(
        default=None, metadata=schema("lastAttemptEnd")
    )
    #: The workers of the current attempt (one for ``spec.workers: 1``).
    workers: tuple[WorkerStatus, ...] = field(default=(), metadata=schema("workers"))
    #: ``running/total`` workers of the current attempt, e.g. ``2/2`` (``kubectl get tj``).
    workers_ready: str | None = field(default=None, metadata=schema("workersReady"))
    #: Where the wall time went: productive seconds and badput by cause (updated as
    #: attempts start, leave the queue and end; see docs/monitoring.md, Goodput).
    goodput: Goodput | None = field(default=None, metadata=schema("goodput"))

    @property
    def attempt_live(self) -> bool:
        """Whether attempt :attr:`attempt` was started and its end not yet recorded."""
        if self.attempt == 0:
            return False
        return self.last_attempt_end is None or self.last_attempt_end.attempt < self.attempt

    @property
    def finished(self) -> bool:
        """Whether the job is Succeeded or Failed."""
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)

    def but(self, **changes: Any) -> Status:
        """A copy with ``changes`` (dataclass field names)."""
        return replace(self, **changes)


def parse_status(doc: Any) -> Status:
    """Parse a TrainingJob's ``status``; ``None`` or ``{}`` is a new job.

    Raises:
        documents.DocumentError: naming every bad field.
    """
    if doc is None:
        return Status()
    return documents.parse(Status, doc, "status")


def to_document(status: Status) -> dict[str, Any]:
    """The status as a camelCase document; empty fields are ``None`` (a merge patch clears them)."""
    doc: dict[str, Any] = documents.unparse(status)
    # Inside a list a null is not "clear this field": leave such keys out.
    for key in ("conditions", "workers"):
        doc[key] = [{k: v for k, v in item.items() if v is not None} for item in doc[key]]
    return doc
