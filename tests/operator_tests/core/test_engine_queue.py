"""Waiting for one's turn (a queue's admission, a free node) is shown, never a failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rekindle_operator.core import conditions, engine, job_spec, job_status
from rekindle_operator.core.engine import Action
from rekindle_operator.core.observation import AttemptPending, AttemptRunning
from rekindle_operator.core.reasons import Phase, Reason

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
DOC = {
    "image": "trainer:1",
    "entrypoint": "m:f",
    "training": {"epochs": 5},
    "queueName": "team-a",
    "restartPolicy": {"pendingTimeoutSeconds": 60},
}
SPEC = job_spec.parse_spec(DOC)
ADMISSION = AttemptPending(
    attempt=1, queued="WaitingForAdmission", message="waiting for Kueue to admit it"
)


def _queued(at: datetime, spec: job_spec.TrainingJobSpec = SPEC) -> job_status.Status:
    started = engine.decide(spec, job_status.Status(), None, T0).status
    return engine.decide(spec, started, ADMISSION, at).status


def _queued_condition(status: job_status.Status) -> job_status.Condition:
    found = conditions.find(status.conditions, "Queued")
    assert found is not None
    return found


def test_a_queued_attempt_asks_for_no_timer_however_long_it_waits() -> None:
    status = _queued(T0 + timedelta(seconds=5))
    later = engine.decide(SPEC, status, ADMISSION, T0 + timedelta(days=2))
    assert later.action is Action.WAIT
    assert later.requeue_after is None
    assert later.status.restarts == job_status.Restarts()
    assert _queued_condition(later.status).last_transition_time == T0 + timedelta(seconds=5)
    assert engine.decide(SPEC, later.status, None, T0 + timedelta(days=3)).requeue_after is None


def test_a_new_word_from_the_scheduler_updates_the_message_not_the_transition() -> None:
    status = _queued(T0 + timedelta(seconds=5))
    unschedulable = AttemptPending(attempt=1, queued="Unschedulable", message="0/3 nodes fit")
    decided = engine.decide(SPEC, status, unschedulable, T0 + timedelta(minutes=5))
    condition = _queued_condition(decided.status)
    assert (condition.reason, condition.message) == ("Unschedulable", "0/3 nodes fit")
    assert condition.last_transition_time == T0 + timedelta(seconds=5)


def test_an_admitted_attempt_that_runs_leaves_the_queue() -> None:
    status = _queued(T0 + timedelta(seconds=5))
    running = engine.decide(SPEC, status, AttemptRunning(attempt=1), T0 + timedelta(hours=3))
    assert running.status.phase is Phase.RUNNING
    assert _queued_condition(running.status).status == "False"


def test_the_deadline_still_counts_while_queued() -> None:
    spec = job_spec.parse_spec({**DOC, "activeDeadlineSeconds": 3600})
    status = _queued(T0 + timedelta(seconds=5), spec)
    waiting = engine.decide(spec, status, ADMISSION, T0 + timedelta(minutes=10))
    assert waiting.requeue_after == 3000.0
    late = engine.decide(spec, status, ADMISSION, T0 + timedelta(hours=1))
    assert late.action is Action.FAIL
    assert late.status.reason == Reason.DEADLINE_EXCEEDED


def test_suspending_a_queued_attempt_stops_its_pod() -> None:
    spec = job_spec.parse_spec({**DOC, "suspend": True})
    decided = engine.decide(spec, _queued(T0), ADMISSION, T0 + timedelta(minutes=1))
    assert decided.action is Action.STOP


def test_an_older_attempts_pod_changes_nothing() -> None:
    status = _queued(T0)
    stale = AttemptPending(attempt=0, queued="Unschedulable", message="x")
    assert engine.decide(SPEC, status, stale, T0 + timedelta(seconds=1)).status == status


def test_a_queued_pod_being_stopped_for_a_suspension_leaves_the_job_suspended() -> None:
    spec = job_spec.parse_spec({**DOC, "suspend": True})
    stopping = engine.decide(spec, _queued(T0), ADMISSION, T0 + timedelta(minutes=1))
    assert (stopping.action, stopping.status.phase) == (Action.STOP, Phase.SUSPENDED)
    again = engine.decide(spec, stopping.status, ADMISSION, T0 + timedelta(minutes=2))
    assert (again.action, again.event) == (Action.WAIT, None)
    assert again.status.phase is Phase.SUSPENDED
    assert again.status.reason == Reason.STOPPING
