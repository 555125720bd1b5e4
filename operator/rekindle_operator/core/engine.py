"""The decision engine: (spec, status, what was observed, now) → what to do next.

One pure function, :func:`decide`, obeyed by both bodies: the kopf operator
(pods) and ``rekindle run`` (local processes). It never reads the clock or
talks to anything; it returns the action, the whole new status and the event
to post, and the caller carries them out. :func:`decide_invalid_spec` is its
answer for a job whose spec cannot be parsed (the operator's body only: ``rekindle
run`` refuses such a manifest before anything runs).

Policies:

* success (all epochs, or early stopping) → ``Succeeded``;
* exit 2 (invalid configuration or user code) → ``Failed``, never restarted;
* disruptions (preemption, eviction, lost node, a deletion the operator did
  not make) → restarted at once, counted in ``restarts.disruptions``, capped
  by ``maxDisruptions`` when set;
* failures (crash, OOM, image pull, container config, pending timeout) →
  counted in ``restarts.failures`` and against the failure budget
  (``status.restartBudget``); more than ``maxRestarts`` counted → ``Failed``;
  otherwise restarted after ``initialSeconds * factor**(counted-1)`` capped
  at ``maxSeconds``. With ``resetAfterProgressEpochs`` N > 0, a failure that
  comes N or more epochs past the previous failure starts the budget afresh
  first (the count and the backoff); nothing else ever does;
* ``activeDeadlineSeconds`` past ``startTime`` → ``Failed`` (the running
  attempt is stopped);
* ``suspend: true`` → the running attempt is stopped with SIGTERM (it saves)
  and nothing starts; ``false`` again → a new attempt resumes, and the
  deadline counts from then (as for a Kubernetes ``Job``);
* ``ttlSecondsAfterFinished`` → the finished job is deleted.
* a pod waiting for its turn (a queue's admission, a free node) → the
  ``Queued`` condition; never a failure, never a pending timeout, which
  counts only once the pod has a node;
* a pod create the API server refuses (:func:`decide_create_refused`): for
  good (admission policy, an invalid pod) → ``Failed``; for now (quota) →
  retried after a backoff, never counted as a failure of the training.
* goodput (``status.goodput``, arithmetic in :mod:`rekindle_operator.core.goodput`):
  the wall time is attributed when an attempt is created, when its pod leaves
  the queue and when it ends, each second once.

Calls are idempotent: an end already recorded in ``status.lastAttemptEnd``,
or one of an older attempt, changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rekindle_operator.core import conditions, goodput, wording
from rekindle_operator.core.job_spec import RestartPolicy, TrainingJobSpec
from rekindle_operator.core.job_status import AttemptEndRecord, BestMetric, RestartBudget, Status
from rekindle_operator.core.observation import (
    AttemptEnd,
    AttemptPending,
    AttemptRunning,
    CreateRefused,
    Observation,
    Progress,
)
from rekindle_operator.core.reasons import (
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
from rekindle_trainer.contract.training_config import mode_warning


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
    decision = _decide(spec, status, observed, now)
    return replace(decision, status=_account(spec, status, decision, observed, now))


def _decide(
    spec: TrainingJobSpec, status: Status, observed: Observation, now: datetime
) -> Decision:
    if status.finished:
        return _finished(spec, status, observed, now)
    status = status.but(restart_budget=_budget(status))
    return _with_budget_left(spec, _decide_live(spec, status, observed, now))


def _decide_live(
    spec: TrainingJobSpec, status: Status, observed: Observation, now: datetime
) -> Decision:
    """:func:`decide` for a job that has not finished."""
    status = _attach_blocked(status, observed, now)
    if isinstance(observed, AttemptEnd):
        if not _is_new_end(status, observed):
            return _wait(spec, status, now)
        return _after_end(spec, _record_end(status, observed, now), observed, now)
    if isinstance(observed, AttemptRunning):
        return _running(spec, status, observed, now)
    if isinstance(observed, AttemptPending):
        return _pending(spec, status, observed, now)
    return _reconcile(spec, status, now)


def decide_invalid_spec(
    status: Status,
    problems: Sequence[str],
    now: datetime,
    *,
    generation: int | None = None,
) -> Decision:
    """Decide for a job whose spec cannot be parsed: ``Failed`` with ``InvalidConfig``, once.

    Without a spec nothing can run, and no retry fixes the spec: the job fails
    with a message naming every bad field. Idempotent: a job already failed
    for ``InvalidConfig`` gets no second event, and a finished job stays as it
    finished (a spec edited after the end changes nothing, as for ``decide``).

    Args:
        status: the job's status as stored (``Status()`` when it cannot be read either).
        problems: what is wrong with the spec, each naming its field.
        now: the current time (timezone-aware).
        generation: ``metadata.generation``, copied to ``observedGeneration``.
    """
    if generation is not None:
        status = status.but(observed_generation=generation)
    if status.finished:
        return Decision(action=Action.WAIT, status=status, attempt=status.attempt)
    message = "invalid spec: " + "; ".join(problems)
    return _fail(status, Reason.INVALID_CONFIG, message, now, cause=None)


def decide_create_refused(
    spec: TrainingJobSpec,
    before: Status,
    started: Decision,
    refused: CreateRefused,
    now: datetime,
) -> Decision:
    """Decide after the API server refused to create the attempt ``started`` asked for.

    The attempt never existed, so its number is given back (a restart already
    decided stays counted). A permanent refusal fails the job; any other is
    retried after a backoff that grows with the time the creates have been
    refused (``restartPolicy.backoff``'s bounds, at least a second), and never
    counts toward ``maxRestarts``. Either way the ``CreateRefused`` condition
    and a ``FailedCreate`` event carry the API server's message.

    Args:
        spec: the job's parsed spec.
        before: the status ``started`` was decided from (it says since when
            creates have been refused).
        started: the START or RESTART decision whose create was refused.
        refused: what the API server answered.
        now: the current time (timezone-aware).
    """
    status = started.status.but(attempt=started.attempt - 1)
    earlier = conditions.find(before.conditions, ConditionType.CREATE_REFUSED)
    if earlier is not None:  # as it was before the start flipped it: since when refused
        kept = tuple(earlier if c.type == earlier.type else c for c in status.conditions)
        status = status.but(conditions=kept)
    what = f"the pod of attempt {started.attempt}"
    if refused.permanent:
        message = (
            f"failed because the API server refused to create {what} "
            f"({refused.reason}): {refused.message}"
        )
        failed = _fail(status, Reason.CREATE_REFUSED, message, now, cause=None)
        return replace(
            failed,
            status=_refused_condition(failed.status, refused, now),
            event=Event(type=EventType.WARNING, reason=EventReason.FAILED_CREATE, message=message),
        )
    delay = _refusal_backoff(spec, status, now)
    message = (
        f"the API server refused to create {what} ({refused.reason}); retrying in "
        f"{_seconds(delay)}, not counted as a failure: {refused.message}"
    )
    waiting = _enter(
        status.but(next_attempt_time=now + timedelta(seconds=delay)),
        Phase.PENDING,
        Reason.CREATE_REFUSED,
        message,
        now,
        keep=_CREATE_REFUSED,
    )
    return Decision(
        action=Action.WAIT,
        status=_refused_condition(waiting, refused, now),
        event=Event(type=EventType.WARNING, reason=EventReason.FAILED_CREATE, message=message),
        attempt=status.attempt,
        requeue_after=_min(delay, _deadline_left(spec, waiting, now)),
    )


def _refused_condition(status: Status, refused: CreateRefused, now: datetime) -> Status:
    """``CreateRefused`` True with the refusal's reason and the API server's message."""
    return _set(status, ConditionType.CREATE_REFUSED, refused.reason, refused.message, now)


def _refusal_backoff(spec: TrainingJobSpec, status: Status, now: datetime) -> float:
    """Seconds to the next create: as long as creates have been refused so far, within bounds.

    Each wait then about doubles the time spent refused (an exponential backoff
    without a counter); the first waits ``backoff.initialSeconds``.
    """
    backoff = spec.restart_policy.backoff
    refused = conditions.find(status.conditions, ConditionType.CREATE_REFUSED)
    since = (
        refused.last_transition_time
        if refused is not None and refused.status == conditions.TRUE
        else now
    )
    waited = (now - since).total_seconds()
    return max(1.0, min(max(float(backoff.initial_seconds), waited), float(backoff.max_seconds)))


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
    if cause in DISRUPTION_CAUSES:
        return _after_disruption(spec, status, end, now)
    if cause in FAILURE_CAUSES:
        return _after_failure(spec, status, end, now)
    raise ValueError(f"no restart policy for cause {cause.value}")  # a new Cause: a bug


def _after_disruption(
    spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime
) -> Decision:
    """Restarted at once and counted apart, unless ``maxDisruptions`` is reached."""
    cap = spec.restart_policy.max_disruptions
    if cap is not None and status.restarts.disruptions >= cap:
        after = (
            f"{wording.counted(status.restarts.disruptions, 'disruption')} (maxDisruptions {cap})"
        )
        return _fail_capped(status, end, now, Reason.MAX_DISRUPTIONS_EXCEEDED, after)
    counted = status.but(restarts=status.restarts.plus(end.cause, disruption=True))
    if spec.suspend:
        return _suspended_after_stop(counted, end, now)
    left = None if cap is None else cap - counted.restarts.disruptions
    note = None if left is None else f"{left} of {cap} disruptions left"
    return _restart_now(spec, counted, end, now, EventType.NORMAL, note=note)


def _after_failure(
    spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime
) -> Decision:
    """Restarted after the backoff and counted, unless the failure budget is spent.

    Progress first: ``resetAfterProgressEpochs`` epochs past the previous
    failure start the budget afresh (:func:`_forgiven`).
    """
    policy = spec.restart_policy
    budget, progressed = _forgiven(policy, _budget(status), status.current_epoch)
    status = status.but(restart_budget=budget)
    if budget.failures_used >= policy.max_restarts:
        after = (
            f"{wording.counted(budget.failures_used, 'restart')} "
            f"(maxRestarts {policy.max_restarts}){_too_little_progress(policy, budget, status)}"
        )
        return _fail_capped(status, end, now, Reason.MAX_RESTARTS_EXCEEDED, after)
    used = budget.failures_used + 1
    counted = status.but(
        restarts=status.restarts.plus(end.cause, disruption=False),
        restart_budget=replace(
            budget,
            failures_used=used,
            progress_epoch=max(budget.progress_epoch, status.current_epoch),
        ),
    )
    if spec.suspend:
        return _suspended_after_stop(counted, end, now)
    note = _failures_left_text(policy, used, progressed)
    delay = policy.backoff.delay(used)
    if delay <= 0:
        return _restart_now(spec, counted, end, now, EventType.WARNING, note=note)
    return _restart_after(spec, counted, end, now, delay, note=note)


def _budget(status: Status) -> RestartBudget:
    """The status's failure budget; for a job from before budgets, counted from its restarts."""
    if status.restart_budget is not None:
        return status.restart_budget
    return RestartBudget(
        failures_used=status.restarts.failures, progress_epoch=status.current_epoch
    )


def _forgiven(
    policy: RestartPolicy, budget: RestartBudget, epoch: int
) -> tuple[RestartBudget, int | None]:
    """The budget started afresh if ``epoch`` is far enough past the previous failure.

    Returns the budget and, when it was started afresh, the epochs of progress
    that did it. Only progress does it: an operator restart, a second
    ``rekindle run`` or a re-created pod read the budget back from the status.
    """
    every = policy.reset_after_progress_epochs
    progressed = epoch - budget.progress_epoch
    if every <= 0 or budget.failures_used == 0 or progressed < every:
        return budget, None
    return replace(budget, failures_used=0, resets=budget.resets + 1), progressed


def _with_budget_left(spec: TrainingJobSpec, decision: Decision) -> Decision:
    """The decision with ``restartBudget``'s ``…Left`` fields as the spec now allows."""
    status = decision.status
    budget = _budget(status)
    policy = spec.restart_policy
    cap = policy.max_disruptions
    left = replace(
        budget,
        failures_left=max(0, policy.max_restarts - budget.failures_used),
        disruptions_left=None if cap is None else max(0, cap - status.restarts.disruptions),
    )
    if left == status.restart_budget:
        return decision
    return replace(decision, status=status.but(restart_budget=left))


def _failures_left_text(policy: RestartPolicy, used: int, progressed: int | None) -> str:
    """``2 of 3 failed restarts left``, after what started the budget afresh, if anything did."""
    most = policy.max_restarts
    left = f"{max(0, most - used)} of {most} failed restarts left"
    if progressed is None:
        return left
    return (
        f"{wording.counted(progressed, 'epoch')} trained since the previous failure "
        f"started the failure budget afresh; {left}"
    )


def _too_little_progress(policy: RestartPolicy, budget: RestartBudget, status: Status) -> str:
    """Why progress did not save the job, when ``resetAfterProgressEpochs`` is set."""
    every = policy.reset_after_progress_epochs
    if every <= 0:
        return ""
    progressed = max(0, status.current_epoch - budget.progress_epoch)
    return (
        f", {wording.counted(progressed, 'epoch')} trained since the previous failure "
        f"(resetAfterProgressEpochs {every})"
    )


def _fail_capped(
    status: Status, end: AttemptEnd, now: datetime, reason: Reason, after: str
) -> Decision:
    """Failed because ``end`` came after as many restarts as the policy allows."""
    message = f"failed because of {end.cause.value} ({end.message}) after {after}"
    return _fail(status, reason, message, now, cause=end.cause)


def _succeed(spec: TrainingJobSpec, status: Status, end: AttemptEnd, now: datetime) -> Decision:
    epochs = spec.training.epochs
    if end.cause is Cause.EARLY_STOPPED:
        stop_epoch = status.early_stop_epoch
        where = f" at epoch {stop_epoch}" if stop_epoch is not None else ""
        saved = (
            f"; {epochs - stop_epoch} of {wording.counted(epochs, 'epoch')} saved"
            if stop_epoch
            else ""
        )
        message = f"early stopped{where}{_best_text(status)}{saved}"
        reason, event_reason = Reason.EARLY_STOPPED, EventReason.EARLY_STOPPED
    else:
        message = f"completed {_all(epochs)}{_best_text(status)}"
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
    spec: TrainingJobSpec,
    status: Status,
    end: AttemptEnd,
    now: datetime,
    type_: EventType,
    *,
    note: str | None = None,
) -> Decision:
    """Restart at once; ``note`` (what is left of a budget) ends the message."""
    message = f"{_restart_text(status, end)}; starting attempt {status.attempt + 1}"
    if note:
        message = f"{message} ({note})"
    return _start(spec, status, now, cause=end.cause, why=message, event_type=type_)


def _restart_after(
    spec: TrainingJobSpec,
    status: Status,
    end: AttemptEnd,
    now: datetime,
    delay: float,
    *,
    note: str,
) -> Decision:
    """Restart after the backoff ``delay``; ``note`` (the budget left) ends the message."""
    next_time = now + timedelta(seconds=delay)
    message = (
        f"{_restart_text(status, end)}; attempt {status.attempt + 1} starts in "
        f"{_seconds(delay)} ({note})"
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


def _pending(
    spec: TrainingJobSpec, status: Status, observed: AttemptPending, now: datetime
) -> Decision:
    """The attempt's pod waits: for its turn (``Queued``), or on its node (the timeout counts)."""
    if observed.attempt != status.attempt or not status.attempt_live:
        return _wait(spec, status, now)
    if status.phase is Phase.PENDING:  # (being stopped for a suspension, it is no one's turn)
        status = _in_queue_or_not(status, observed, now)
    decision = _reconcile(spec, status, now)
    if decision.action is not Action.WAIT or observed.since is None:
        return decision
    timeout = timedelta(seconds=spec.restart_policy.pending_timeout_seconds)
    left = max((observed.since + timeout - now).total_seconds(), 0.0)
    return replace(decision, requeue_after=_min(left, _deadline_left(spec, decision.status, now)))


def _in_queue_or_not(status: Status, observed: AttemptPending, now: datetime) -> Status:
    """``Queued`` True (reason: why) while the pod waits for its turn; False once it has a node."""
    if observed.queued is not None:
        message = f"attempt {status.attempt} is queued ({observed.queued}): {observed.message}"
        status = _enter(status, Phase.PENDING, Reason.QUEUED, message, now, keep=_QUEUED)
        return _set(status, ConditionType.QUEUED, observed.queued, observed.message, now)
    if _is_queued(status):
        message = f"attempt {status.attempt} got a node; waiting for its containers"
        return _enter(status, Phase.PENDING, Reason.ATTEMPT_STARTED, message, now)
    return status


def _attach_blocked(status: Status, observed: Observation, now: datetime) -> Status:
    """``VolumeAttachBlocked`` True while the attempt's pod waits for a volume held elsewhere.

    It turns False once anything else is seen of the attempt (the volume
    attached, or the attempt ended); the pending timeout never counts that wait.
    """
    type_ = ConditionType.VOLUME_ATTACH_BLOCKED
    if (
        isinstance(observed, AttemptPending)
        and observed.attempt == status.attempt
        and observed.blocked is not None
    ):
        return _set(status, type_, observed.blocked, observed.message, now)
    if observed is None or not _is_attach_blocked(status):
        return status
    conds = conditions.set_condition(
        status.conditions,
        type_,
        status=conditions.FALSE,
        reason="VolumeAttached",
        message=f"attempt {status.attempt} no longer waits for a volume attach",
        now=now,
        generation=status.observed_generation,
    )
    return status.but(conditions=conds)


def _is_attach_blocked(status: Status) -> bool:
    """Whether ``VolumeAttachBlocked`` is True (no pending timeout counts meanwhile)."""
    found = conditions.find(status.conditions, ConditionType.VOLUME_ATTACH_BLOCKED)
    return found is not None and found.status == conditions.TRUE


_QUEUED = frozenset({ConditionType.QUEUED})
#: Conditions no phase change touches: they judge the spec against what was measured.
_ADVISORY = frozenset({ConditionType.GRACE_TOO_SHORT})
_CREATE_REFUSED = frozenset({ConditionType.CREATE_REFUSED})


def _is_queued(status: Status) -> bool:
    """Whether the ``Queued`` condition is True (the attempt's pod waits for its turn)."""
    found = conditions.find(status.conditions, ConditionType.QUEUED)
    return found is not None and found.status == conditions.TRUE


def _set(status: Status, type_: ConditionType, reason: str, message: str, now: datetime) -> Status:
    """``status`` with condition ``type_`` True for ``reason``."""
    conds = conditions.set_condition(
        status.conditions,
        type_,
        status=conditions.TRUE,
        reason=reason,
        message=message,
        now=now,
        generation=status.observed_generation,
    )
    return status.but(conditions=conds)


# ---------------------------------------------------------------------------
# Nothing new: act on spec and time (start, suspend, resume, backoff, deadline).
# ---------------------------------------------------------------------------


def _reconcile(spec: TrainingJobSpec, status: Status, now: datetime) -> Decision:
    if status.phase is not None and _deadline_passed(spec, status, now):
        return _fail_deadline(spec, status, now, cause=None)
    if spec.suspend:
        return _suspend(spec, status, now)
    if status.phase is None:
        return _start_first(spec, status.but(start_time=now), now)
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
    if status.phase is Phase.PENDING and not status.attempt_live:
        # The API server refused the attempt's pod (decide_create_refused): try again when due.
        due = status.next_attempt_time
        if due is None or due <= now:
            why = f"creating attempt {status.attempt + 1} again after a refusal"
            return _start(spec, status, now, cause=None, why=why)
    return _wait(spec, status, now)


def _start_first(spec: TrainingJobSpec, status: Status, now: datetime) -> Decision:
    """Attempt 1; its event is a Warning when the spec asks for something almost surely wrong."""
    warning = mode_warning(spec.early_stopping)
    if warning is None:
        return _start(spec, status, now, cause=None, why="starting attempt 1")
    why = f"starting attempt 1; warning: {warning}"
    return _start(spec, status, now, cause=None, why=why, event_type=EventType.WARNING)


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
    """``spec.suspend``: a running attempt is told to save and stop; none starts."""
    if status.phase is Phase.SUSPENDED:
        return _wait(spec, status, now)
    if status.attempt_live:
        action, reason = Action.STOP, Reason.STOPPING
        message = f"suspending: attempt {status.attempt} is told to save and stop (SIGTERM)"
    else:
        action, reason = Action.WAIT, Reason.SUSPENDED
        message = "suspended; no attempt runs until spec.suspend is false"
        status = status.but(next_attempt_time=None)
    return Decision(
        action=action,
        status=_enter(status, Phase.SUSPENDED, reason, message, now),
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
    message = f"{why} from {where}" if restart and "restarting from" not in why else why
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
    left = _ttl_left(spec, status, now)
    if left is not None and left <= 0:
        return Decision(action=Action.DELETE, status=status, attempt=status.attempt)
    return Decision(action=Action.WAIT, status=status, attempt=status.attempt, requeue_after=left)


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
    if not status.attempt_live and status.next_attempt_time is not None:
        requeue = _min((status.next_attempt_time - now).total_seconds(), requeue)
    if (
        status.phase is Phase.PENDING
        and status.attempt_live
        and status.last_attempt_start_time is not None
        and not _is_queued(status)
        and not _is_attach_blocked(status)
    ):
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


def _enter(
    status: Status,
    phase: Phase,
    reason: Reason,
    message: str,
    now: datetime,
    *,
    keep: frozenset[str] = frozenset(),
) -> Status:
    """``status`` in ``phase``: the phase's condition True, every other one that was True False.

    ``Running`` is always present (False outside the Running phase), so that
    ``kubectl wait --for=condition=Running=false`` and dashboards can rely on it.
    Conditions of the types in ``keep`` are left as they are, and so are the
    advisory ones (``GraceTooShort``: about the spec, not the phase).
    """
    wanted = _PHASE_CONDITION[phase]
    kept = keep | _ADVISORY
    values: dict[str, str] = {
        c.type: conditions.FALSE
        for c in status.conditions
        if c.type != wanted and c.status == conditions.TRUE and c.type not in kept
    }
    if wanted is not ConditionType.RUNNING:
        values[ConditionType.RUNNING] = conditions.FALSE
    if wanted is not None:
        values[wanted] = conditions.TRUE
    conds = status.conditions
    for type_, value in values.items():
        conds = conditions.set_condition(
            conds,
            type_,
            status=value,
            reason=reason.value,
            message=message,
            now=now,
            generation=status.observed_generation,
        )
    return status.but(phase=phase, reason=reason.value, message=message, conditions=conds)


def _is_new_end(status: Status, end: AttemptEnd) -> bool:
    """Whether ``end`` is the end of the current attempt, not yet recorded."""
    return end.attempt == status.attempt and status.attempt_live


def _record_end(status: Status, end: AttemptEnd, now: datetime) -> Status:
    merged = _merge_progress(status, end.progress)
    record = AttemptEndRecord(
        attempt=end.attempt,
        cause=end.cause,
        exit_code=end.exit_code,
        message=end.message,
        time=now,
        worker=end.worker,
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
        if progress.checkpoint_time is not None:
            changes["latest_checkpoint_time"] = progress.checkpoint_time
        elif progress.checkpoint != status.latest_checkpoint:
            changes["latest_checkpoint_time"] = None  # a newer one, its time unknown
    if progress.best_metric is not None and progress.monitor:
        changes["best_metric"] = BestMetric(
            name=progress.monitor, value=progress.best_metric, epoch=progress.best_epoch
        )
    if progress.early_stop_epoch is not None:
        changes["early_stop_epoch"] = progress.early_stop_epoch
    if progress.lost_steps > status.lost_steps:  # the trainer reports the job's total so far
        changes["lost_steps"] = progress.lost_steps
    return status.but(**changes)


# ---------------------------------------------------------------------------
# Goodput: where the wall time went (core/goodput.py does the arithmetic).
# ---------------------------------------------------------------------------


def _account(
    spec: TrainingJobSpec, before: Status, decision: Decision, observed: Observation, now: datetime
) -> Status:
    """``decision.status`` with the wall time up to ``now`` attributed, where a fold is due.

    Folds happen when an attempt ends (its body, by the trainer's timing), when its
    pod leaves the queue, and when one is created (the gap before it).
    """
    after = decision.status
    started = decision.action in (Action.START, Action.RESTART)
    current = after.goodput
    if current is None:
        if not started:
            return after
        current = goodput.begin(now)
    gpus = spec.resources.gpus * spec.workers
    queued_since = _queued_since(before)
    if isinstance(observed, AttemptEnd) and _ended_now(before, after, observed):
        progress = observed.progress
        times = goodput.AttemptTimes(
            end=now,
            queued_since=queued_since,
            timing=progress.timing if progress is not None else None,
            replayed_steps=max(0, after.lost_steps - before.lost_steps),
            resumed=observed.attempt > 1,
            gpus=gpus,
        )
        current = goodput.attempt_ended(current, times)
    elif queued_since is not None and not _is_queued(after) and after.attempt == before.attempt:
        current = goodput.queue_left(current, queued_since=queued_since, now=now)
    if started or _finished_between_attempts(before, after):
        current = goodput.gap(current, now, _gap_cause(before))
    if decision.action is Action.SUCCEED and decision.cause is Cause.EARLY_STOPPED:
        stop = after.early_stop_epoch
        if stop is not None:
            left = spec.training.epochs - stop
            current = goodput.early_stopped(
                current, epochs_trained=stop, epochs_left=left, gpus=gpus
            )
    return after.but(goodput=current)


def _finished_between_attempts(before: Status, after: Status) -> bool:
    """Whether the job finished now with no attempt running (a deadline during backoff).

    The time since the last attempt ended belongs to the gap before the next one,
    which will never come: it is folded now, so the account reaches the completion.
    """
    return after.finished and not before.finished and not after.attempt_live


def _ended_now(before: Status, after: Status, end: AttemptEnd) -> bool:
    """Whether this decision recorded ``end`` (it was not recorded before)."""
    recorded, earlier = after.last_attempt_end, before.last_attempt_end
    if recorded is None or recorded.attempt != end.attempt:
        return False
    return earlier is None or earlier.attempt != end.attempt


def _queued_since(status: Status) -> datetime | None:
    """Since when the current attempt's pod waits in the queue; None when it does not."""
    found = conditions.find(status.conditions, ConditionType.QUEUED)
    if found is None or found.status != conditions.TRUE or not status.attempt_live:
        return None
    return found.last_transition_time


def _gap_cause(before: Status) -> goodput.BadputCause:
    """What the time before a new attempt was: suspension, waiting to be created, or backoff."""
    if before.phase is Phase.SUSPENDED:
        return goodput.BadputCause.SUSPENDED
    if before.attempt == 0 or before.phase is Phase.PENDING:  # first, or a refused create
        return goodput.BadputCause.QUEUED
    return goodput.BadputCause.RESTART_DOWNTIME


# ---------------------------------------------------------------------------
# Words.
# ---------------------------------------------------------------------------


def _resume_point(status: Status) -> str:
    """Where the next attempt resumes: the newest valid checkpoint when it starts.

    Not necessarily the last one reported: a save published as the kill landed is
    newer, and one found corrupt is set aside for the one before. Only the trainer
    knows, once it starts (its ``restored`` progress event and log name it).
    """
    name = status.latest_checkpoint
    epoch, step = _checkpoint_position(name)
    if name is None:
        seen = "none reported yet"
    elif epoch is None or step is None:
        seen = f"last reported: {name}"
    else:
        seen = f"last reported: epoch {epoch} step {step}"
    return f"the newest valid checkpoint ({seen})"


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


def _all(epochs: int) -> str:
    """``all 12 epochs``, or ``its 1 epoch``."""
    return "its 1 epoch" if epochs == 1 else f"all {epochs} epochs"


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
