"""The decision engine: (spec, status, what was observed, now) → what to do next.

One pure function, :func:`decide`, obeyed by both bodies: the kopf operator
(pods) and ``rekindle run`` (local processes). It never reads the clock or
talks to anything; it returns the action, the whole new status and the event
to post, and the caller carries them out.

Policies:

* success (all epochs, or early stopping) → ``Succeeded``;
* exit 2 (invalid configuration or user code) → ``Failed``, never restarted;
* disruptions (preemption, eviction, lost node, a deletion the operator did
  not make) → restarted at once, counted in ``restarts.disruptions``, capped
  by ``maxDisruptions`` when set;
* failures (crash, OOM, image pull, container config, pending timeout) →
  counted in ``restarts.failures``; more than ``maxRestarts`` → ``Failed``;
  otherwise restarted after ``initialSeconds * factor**(failures-1)`` capped
  at ``maxSeconds``;
* ``activeDeadlineSeconds`` past ``startTime`` → ``Failed`` (the running
  attempt is stopped);
* ``suspend: true`` → the running attempt is stopped with SIGTERM (it saves)
  and nothing starts; ``false`` again → a new attempt resumes, and the
  deadline counts from then (as for a Kubernetes ``Job``);
* ``ttlSecondsAfterFinished`` → the finished job is deleted.

Calls are idempotent: an end already recorded in ``status.lastAttemptEnd``,
or one of an older attempt, changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rekindle_operator import conditions
from rekindle_operator.classify import AttemptEnd, AttemptRunning, Observation, Progress
from rekindle_operator.reasons import (
    DISRUPTION_CAUSES,
    FAILURE_CAUSES,
    SUCCESS_CAUSES,
    Cause,
    ConditionType,
    EventReason,
    EventType,
    Phase,
    Reason,
)
from rekindle_operator.spec import TrainingJobSpec
from rekindle_operator.status import AttemptEndRecord, BestMetric, Status


class Action(enum.StrEnum):
    """What the caller must do after a decision."""

    #: Create attempt ``Decision.attempt`` (the first, after a backoff, or on resume).
    START = "Start"
    #: The attempt ended; create attempt ``Decision.attempt`` now.
    RESTART = "Restart"
    #: The attempt ended; ask again after ``Decision.delay_seconds`` (status is Restarting).
    RESTART_AFTER = "RestartAfter"
    #: Mark the job Succeeded (nothing runs any more).
    SUCCEED = "Succeed"
    #: Mark the job Failed; stop the current attempt if it still runs.
    FAIL = "Fail"
    #: Stop the running attempt with SIGTERM so that it saves (suspension).
    STOP = "Stop"
    #: Delete the TrainingJob (``ttlSecondsAfterFinished`` passed).
    DELETE = "Delete"
    #: Nothing to do now (write the status if it changed; ask again after ``requeue_after``).
    WAIT = "Wait"


@dataclass(frozen=True, kw_only=True)
class Event:
    """A Kubernetes Event to post about the job."""

    type: EventType
    reason: EventReason
    message: str


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The engine's answer."""

    action: Action
    #: The whole new status (write it even for WAIT: progress may have changed).
    status: Status
    #: The event to post, if any.
    event: Event | None = None
    #: The attempt to create for START and RESTART (its pod is ``<job>-<attempt>``).
    attempt: int = 0
    #: RESTART_AFTER: seconds to wait before asking again.
    delay_seconds: float = 0.0
    #: Ask again after this many seconds even if nothing happens (deadline,
    #: pending timeout, backoff, TTL); None: only when something changes.
    requeue_after: float | None = None
    #: The cause of the end this decision reacted to, if any (for metrics).
    cause: Cause | None = None


def decide(
    spec: TrainingJobSpec,
    status: Status,
    observed: Observation,
    now: datetime,
    *,
    generation: int | None = None,
) -> Decision:
    """Decide what happens next to one TrainingJob.

    Args:
        spec: the job's parsed spec.
        status: its status as stored (``Status()`` for a new job).
        observed: how the current attempt stands: an :class:`AttemptEnd`, an
            :class:`AttemptRunning`, or None for "nothing new; reconcile"
            (creation, a timer, a spec change).
        now: the current time (timezone-aware).
        generation: ``metadata.generation``, copied to ``observedGeneration``.
    """
    if generation is not None:
        status = status.but(observed_generation=generation)
    if status.finished:
        return _finished(spec, status, observed, now)
    if isinstance(observed, AttemptEnd):
        if not _is_new_end(status, observed):
            return _wait(spec, status, now)
        return _after_end(spec, _record_end(status, observed, now), observed, now)
    if isinstance(observed, AttemptRunning):
        return _running(spec, status, observed, now)
    return _reconcile(spec, status, now)


# ---------------------------------------------------------------------------
# The attempt ended.
# ---------------------------------------------------------------------------


def _after_end(spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime) -> Decision:
    cause = end.cause
    if cause in SUCCESS_CAUSES:
        return _succeed(spec, status, end, now)
    if _deadline_passed(spec, status, now):
        return _fail_deadline(spec, status, now, cause=cause)
    if cause is Cause.INVALID:
        message = f"failed because the trainer rejected its configuration: {end.message}"
        return _fail(status, Reason.INVALID_CONFIG, message, now, cause=cause)
    if cause is Cause.STOPPED:
        if spec.suspend:
            return _suspended_after_stop(status, end, now)
        if status.phase is Phase.SUSPENDED:  # un-suspended before the stopped attempt ended
            return _resume(spec, status, now)
        return _start(spec, status, now, cause=cause, why=f"attempt {end.attempt} was stopped")
    policy = spec.restart_policy
    if cause in DISRUPTION_CAUSES:
        cap = policy.max_disruptions
        if cap is not None and status.restarts.disruptions >= cap:
            message = (
                f"failed because of {cause.value} ({end.message}) after "
                f"{status.restarts.disruptions} disruptions (maxDisruptions {cap})"
            )
            return _fail(status, Reason.MAX_DISRUPTIONS_EXCEEDED, message, now, cause=cause)
        counted = status.but(restarts=status.restarts.plus(cause, disruption=True))
        if spec.suspend:
            return _suspended_after_stop(counted, end, now)
        return _restart_now(spec, counted, end, now, EventType.NORMAL)
    if cause not in FAILURE_CAUSES:  # a new Cause without a policy: a programming error
        raise ValueError(f"no restart policy for cause {cause.value}")
    if status.restarts.failures >= policy.max_restarts:
        message = (
            f"failed because of {cause.value} ({end.message}) after "
            f"{status.restarts.failures} restarts (maxRestarts {policy.max_restarts})"
        )
        return _fail(status, Reason.MAX_RESTARTS_EXCEEDED, message, now, cause=cause)
    counted = status.but(restarts=status.restarts.plus(cause, disruption=False))
    if spec.suspend:
        return _suspended_after_stop(counted, end, now)
    delay = policy.backoff.delay(counted.restarts.failures)
    if delay <= 0:
        return _restart_now(spec, counted, end, now, EventType.WARNING)
    return _restart_after(spec, counted, end, now, delay)


def _succeed(spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime) -> Decision:
    epochs = spec.training.epochs
    if end.cause is Cause.EARLY_STOPPED:
        stop_epoch = status.early_stop_epoch
        where = f" at epoch {stop_epoch}" if stop_epoch is not None else ""
        saved = f"; {epochs - stop_epoch} of {epochs} epochs saved" if stop_epoch else ""
        message = f"early stopped{where}{_best_text(status)}{saved}"
        reason, event_reason = Reason.EARLY_STOPPED, EventReason.EARLY_STOPPED
    else:
        message = f"completed all {epochs} epochs{_best_text(status)}"
        reason, event_reason = Reason.COMPLETED, EventReason.COMPLETED
    new = _enter(
        status.but(completion_time=now, next_attempt_time=None),
        Phase.SUCCEEDED,
        reason,
        message,
        now,
    )
    return Decision(
        action=Action.SUCCEED,
        status=new,
        event=Event(type=EventType.NORMAL, reason=event_reason, message=message),
        attempt=status.attempt,
        requeue_after=_ttl_left(spec, new, now),
        cause=end.cause,
    )


def _restart_now(
    spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime, type_: EventType
) -> Decision:
    message = f"{_restart_text(status, end)}; starting attempt {status.attempt + 1}"
    return _start(spec, status, now, cause=end.cause, why=message, event_type=type_)


def _restart_after(
    spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime, delay: float
) -> Decision:
    next_time = now + timedelta(seconds=delay)
    message = (
        f"{_restart_text(status, end)}; attempt {status.attempt + 1} starts in "
        f"{_seconds(delay)} (failure {status.restarts.failures} of "
        f"maxRestarts {spec.restart_policy.max_restarts})"
    )
    new = _enter(
        status.but(next_attempt_time=next_time), Phase.RESTARTING, Reason.BACKOFF, message, now
    )
    return Decision(
        action=Action.RESTART_AFTER,
        status=new,
        event=Event(type=EventType.WARNING, reason=EventReason.RESTARTING, message=message),
        attempt=status.attempt,
        delay_seconds=delay,
        requeue_after=_min(delay, _deadline_left(spec, new, now)),
        cause=end.cause,
    )


def _suspended_after_stop(status: Status, end: AttemptEnd, now: datetime) -> Decision:
    message = (
        f"suspended; attempt {end.attempt} stopped at epoch {status.current_epoch} "
        f"step {status.current_step}"
    )
    new = _enter(
        status.but(next_attempt_time=None), Phase.SUSPENDED, Reason.SUSPENDED, message, now
    )
    return Decision(action=Action.WAIT, status=new, attempt=status.attempt, cause=end.cause)


# ---------------------------------------------------------------------------
# The attempt runs.
# ---------------------------------------------------------------------------


def _running(
    spec: TrainingJobSpec, status: Status, observed: AttemptRunning, now: datetime
) -> Decision:
    if observed.attempt != status.attempt or not status.attempt_live:
        return _wait(spec, status, now)
    status = _merge_progress(status, observed.progress)
    if status.phase is Phase.PENDING:
        message = f"attempt {status.attempt} is running"
        status = _enter(status, Phase.RUNNING, Reason.ATTEMPT_RUNNING, message, now)
    return _reconcile(spec, status, now)


# ---------------------------------------------------------------------------
# Nothing new: act on spec and time (start, suspend, resume, backoff, deadline).
# ---------------------------------------------------------------------------


def _reconcile(spec: TrainingJobSpec, status: Status, now: datetime) -> Decision:
    if status.phase is not None and _deadline_passed(spec, status, now):
        return _fail_deadline(spec, status, now, cause=None)
    if spec.suspend:
        return _suspend(spec, status, now)
    if status.phase is None:
        return _start(spec, status.but(start_time=now), now, cause=None, why="starting attempt 1")
    if status.phase is Phase.SUSPENDED:
        if status.attempt_live:
            return _wait(spec, status, now)  # the stopped attempt has not ended yet
        return _resume(spec, status, now)
    if status.phase is Phase.RESTARTING:
        due = status.next_attempt_time
        if due is None or due <= now:
            why = f"backoff over; starting attempt {status.attempt + 1}"
            return _start(spec, status, now, cause=None, why=why)
        return _wait(spec, status, now)
    return _wait(spec, status, now)


def _resume(spec: TrainingJobSpec, status: Status, now: datetime) -> Decision:
    """Start the next attempt after a suspension; the deadline counts from now."""
    return _start(
        spec,
        status.but(start_time=now),
        now,
        cause=None,
        why=f"resumed; starting attempt {status.attempt + 1}",
        event_reason=EventReason.RESUMED,
    )


def _suspend(spec: TrainingJobSpec, status: Status, now: datetime) -> Decision:
    if status.phase is Phase.SUSPENDED:
        return _wait(spec, status, now)
    if status.attempt_live:
        message = f"suspending: attempt {status.attempt} is told to save and stop (SIGTERM)"
        new = _enter(status, Phase.SUSPENDED, Reason.STOPPING, message, now)
        return Decision(
            action=Action.STOP,
            status=new,
            event=Event(type=EventType.NORMAL, reason=EventReason.SUSPENDED, message=message),
            attempt=status.attempt,
        )
    message = "suspended; no attempt runs until spec.suspend is false"
    new = _enter(
        status.but(next_attempt_time=None), Phase.SUSPENDED, Reason.SUSPENDED, message, now
    )
    return Decision(
        action=Action.WAIT,
        status=new,
        event=Event(type=EventType.NORMAL, reason=EventReason.SUSPENDED, message=message),
        attempt=status.attempt,
    )


def _start(
    spec: TrainingJobSpec,
    status: Status,
    now: datetime,
    *,
    cause: Cause | None,
    why: str,
    event_type: EventType = EventType.NORMAL,
    event_reason: EventReason | None = None,
) -> Decision:
    attempt = status.attempt + 1
    restart = status.attempt > 0
    where = _resume_point(status)
    message = f"{why} from {where}" if restart and "from epoch" not in why else why
    new = _enter(
        status.but(attempt=attempt, last_attempt_start_time=now, next_attempt_time=None),
        Phase.PENDING,
        Reason.ATTEMPT_STARTED,
        message,
        now,
    )
    if event_reason is None:
        event_reason = EventReason.RESTARTING if cause is not None else EventReason.ATTEMPT_STARTED
    return Decision(
        action=Action.RESTART if cause is not None else Action.START,
        status=new,
        event=Event(type=event_type, reason=event_reason, message=message),
        attempt=attempt,
        requeue_after=_min(
            float(spec.restart_policy.pending_timeout_seconds), _deadline_left(spec, new, now)
        ),
        cause=cause,
    )


# ---------------------------------------------------------------------------
# Finished, failed, deadline, TTL.
# ---------------------------------------------------------------------------


def _finished(
    spec: TrainingJobSpec, status: Status, observed: Observation, now: datetime
) -> Decision:
    if isinstance(observed, AttemptEnd) and _is_new_end(status, observed):
        # The attempt stopped after the job was failed (deadline): keep what it reported.
        status = _record_end(status, observed, now)
    ttl = spec.ttl_seconds_after_finished
    if ttl is not None and status.completion_time is not None:
        left = (status.completion_time + timedelta(seconds=ttl) - now).total_seconds()
        if left <= 0:
            return Decision(action=Action.DELETE, status=status, attempt=status.attempt)
        return Decision(
            action=Action.WAIT, status=status, attempt=status.attempt, requeue_after=left
        )
    return Decision(action=Action.WAIT, status=status, attempt=status.attempt)


def _fail(
    status: Status, reason: Reason, message: str, now: datetime, *, cause: Cause | None
) -> Decision:
    new = _enter(
        status.but(completion_time=now, next_attempt_time=None), Phase.FAILED, reason, message, now
    )
    return Decision(
        action=Action.FAIL,
        status=new,
        event=Event(type=EventType.WARNING, reason=EventReason.FAILED, message=message),
        attempt=status.attempt,
        cause=cause,
    )


def _fail_deadline(
    spec: TrainingJobSpec, status: Status, now: datetime, *, cause: Cause | None
) -> Decision:
    message = (
        f"failed because activeDeadlineSeconds ({spec.active_deadline_seconds}s) passed "
        f"at epoch {status.current_epoch} step {status.current_step}"
    )
    decision = _fail(status, Reason.DEADLINE_EXCEEDED, message, now, cause=cause)
    return replace(decision, requeue_after=_ttl_left(spec, decision.status, now))


def _deadline_passed(spec: TrainingJobSpec, status: Status, now: datetime) -> bool:
    left = _deadline_left(spec, status, now)
    return left is not None and left <= 0


def _deadline_left(spec: TrainingJobSpec, status: Status, now: datetime) -> float | None:
    limit = spec.active_deadline_seconds
    if limit is None or status.start_time is None or status.phase is Phase.SUSPENDED:
        return None
    return (status.start_time + timedelta(seconds=limit) - now).total_seconds()


def _ttl_left(spec: TrainingJobSpec, status: Status, now: datetime) -> float | None:
    ttl = spec.ttl_seconds_after_finished
    if ttl is None or status.completion_time is None:
        return None
    return max(0.0, (status.completion_time + timedelta(seconds=ttl) - now).total_seconds())


def _wait(spec: TrainingJobSpec, status: Status, now: datetime) -> Decision:
    requeue: float | None = _deadline_left(spec, status, now)
    if status.phase is Phase.RESTARTING and status.next_attempt_time is not None:
        requeue = _min((status.next_attempt_time - now).total_seconds(), requeue)
    if status.phase is Phase.PENDING and status.last_attempt_start_time is not None:
        pending = spec.restart_policy.pending_timeout_seconds
        left = (status.last_attempt_start_time + timedelta(seconds=pending) - now).total_seconds()
        requeue = _min(max(left, 0.0), requeue)
    return Decision(
        action=Action.WAIT, status=status, attempt=status.attempt, requeue_after=requeue
    )


# ---------------------------------------------------------------------------
# Status bookkeeping.
# ---------------------------------------------------------------------------

#: The condition that is True in each phase (Pending has none: Running is False).
_PHASE_CONDITION: dict[Phase, ConditionType | None] = {
    Phase.PENDING: None,
    Phase.RUNNING: ConditionType.RUNNING,
    Phase.RESTARTING: ConditionType.RESTARTING,
    Phase.SUSPENDED: ConditionType.SUSPENDED,
    Phase.SUCCEEDED: ConditionType.SUCCEEDED,
    Phase.FAILED: ConditionType.FAILED,
}


def _enter(status: Status, phase: Phase, reason: Reason, message: str, now: datetime) -> Status:
    """``status`` in ``phase``: the phase's condition True, every other one that was True False.

    ``Running`` is always present (False outside the Running phase), so that
    ``kubectl wait --for=condition=Running=false`` and dashboards can rely on it.
    """
    generation = status.observed_generation
    conds = status.conditions
    wanted = _PHASE_CONDITION[phase]
    for condition in conds:
        if condition.type != wanted and condition.status == conditions.TRUE:
            conds = conditions.set_condition(
                conds,
                condition.type,
                status=conditions.FALSE,
                reason=reason.value,
                message=message,
                now=now,
                generation=generation,
            )
    if wanted is not ConditionType.RUNNING:
        conds = conditions.set_condition(
            conds,
            ConditionType.RUNNING,
            status=conditions.FALSE,
            reason=reason.value,
            message=message,
            now=now,
            generation=generation,
        )
    if wanted is not None:
        conds = conditions.set_condition(
            conds,
            wanted,
            status=conditions.TRUE,
            reason=reason.value,
            message=message,
            now=now,
            generation=generation,
        )
    return status.but(phase=phase, reason=reason.value, message=message, conditions=conds)


def _is_new_end(status: Status, end: AttemptEnd) -> bool:
    """Whether ``end`` is the end of the current attempt, not yet recorded."""
    return end.attempt == status.attempt and status.attempt_live


def _record_end(status: Status, end: AttemptEnd, now: datetime) -> Status:
    merged = _merge_progress(status, end.progress)
    record = AttemptEndRecord(
        attempt=end.attempt, cause=end.cause, exit_code=end.exit_code, message=end.message, time=now
    )
    return merged.but(last_attempt_end=record)


def _merge_progress(status: Status, progress: Progress | None) -> Status:
    if progress is None:
        return status
    changes: dict[str, object] = {}
    if progress.epoch is not None:
        changes["current_epoch"] = progress.epoch
    if progress.step is not None:
        changes["current_step"] = progress.step
    if progress.checkpoint is not None:
        changes["latest_checkpoint"] = progress.checkpoint
    if progress.best_metric is not None and progress.monitor:
        changes["best_metric"] = BestMetric(
            name=progress.monitor, value=progress.best_metric, epoch=progress.best_epoch
        )
    if progress.early_stop_epoch is not None:
        changes["early_stop_epoch"] = progress.early_stop_epoch
    if progress.lost_steps:
        changes["lost_steps"] = status.lost_steps + progress.lost_steps
    return status.but(**changes)


# ---------------------------------------------------------------------------
# Words.
# ---------------------------------------------------------------------------


def _resume_point(status: Status) -> str:
    """``epoch E step S``: where the next attempt resumes (the latest checkpoint's position)."""
    epoch, step = _checkpoint_position(status.latest_checkpoint)
    if epoch is None or step is None:
        return "epoch 0 step 0" if status.latest_checkpoint is None else status.latest_checkpoint
    return f"epoch {epoch} step {step}"


def _checkpoint_position(name: str | None) -> tuple[int | None, int | None]:
    if not name or not name.startswith("ckpt-"):
        return None, None
    parts = name.removeprefix("ckpt-").split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None, None
    return int(parts[0]), int(parts[1])


def _restart_text(status: Status, end: AttemptEnd) -> str:
    detail = f": {end.message}" if end.message else ""
    return f"restarting from {_resume_point(status)} because of {end.cause.value}{detail}"


def _best_text(status: Status) -> str:
    best = status.best_metric
    if best is None:
        return ""
    at = f" at epoch {best.epoch}" if best.epoch is not None else ""
    return f" (best {best.name} {best.value:.6g}{at})"


def _seconds(value: float) -> str:
    return f"{int(value)}s" if float(value).is_integer() else f"{value:.1f}s"


def _min(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return min(values) if values else None
