"""The engine's answer to a pod create the API server refused (``decide_create_refused``).

A refusal for good fails the job with the API server's words; a refusal for
now (quota) waits with a growing backoff and is never a failure of the training.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rekindle_operator.core import conditions, engine, job_spec, job_status
from rekindle_operator.core.engine import Action, Decision
from rekindle_operator.core.observation import AttemptEnd, CreateRefused
from rekindle_operator.core.reasons import Cause, EventReason, EventType, Phase, Reason

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SPEC = job_spec.parse_spec(
    {
        "image": "trainer:1",
        "entrypoint": "m:f",
        "training": {"epochs": 5},
        "restartPolicy": {"backoff": {"initialSeconds": 10, "maxSeconds": 300}},
    }
)
QUOTA = CreateRefused(
    reason="ExceededQuota",
    message='pods "digits-1" is forbidden: exceeded quota: gpus, requested: '
    "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, "
    "limited: requests.nvidia.com/gpu=4",
    permanent=False,
)
POD_SECURITY = CreateRefused(
    reason="PodSecurity",
    message='pods "digits-1" is forbidden: violates PodSecurity "restricted:latest": '
    'unrestricted capabilities (container "trainer" must not include "SYS_ADMIN")',
    permanent=True,
)


def _first_start(now: datetime = T0) -> Decision:
    return engine.decide(SPEC, job_status.Status(), None, now, generation=1)


def _condition(status: job_status.Status, type_: str) -> job_status.Condition:
    found = conditions.find(status.conditions, type_)
    assert found is not None, (type_, status.conditions)
    return found


def test_a_permanent_refusal_fails_the_job_with_the_api_servers_words() -> None:
    decision = engine.decide_create_refused(
        SPEC, job_status.Status(), _first_start(), POD_SECURITY, T0
    )
    status = decision.status
    assert decision.action is Action.FAIL
    assert (status.phase, status.reason) == (Phase.FAILED, Reason.CREATE_REFUSED)
    assert status.message == (
        "failed because the API server refused to create the pod of attempt 1 (PodSecurity): "
        + POD_SECURITY.message
    )
    refused = _condition(status, "CreateRefused")
    assert (refused.status, refused.reason, refused.message) == (
        "True",
        "PodSecurity",
        POD_SECURITY.message,
    )
    assert _condition(status, "Failed").status == "True"
    assert decision.event == engine.Event(
        type=EventType.WARNING, reason=EventReason.FAILED_CREATE, message=status.message
    )
    assert status.attempt == 0, "the attempt was never created"
    assert status.completion_time == T0


def test_a_quota_refusal_waits_in_pending_and_is_not_a_failure() -> None:
    decision = engine.decide_create_refused(SPEC, job_status.Status(), _first_start(), QUOTA, T0)
    status = decision.status
    assert decision.action is Action.WAIT
    assert (status.phase, status.reason) == (Phase.PENDING, Reason.CREATE_REFUSED)
    assert status.attempt == 0
    assert not status.attempt_live
    assert status.restarts == job_status.Restarts()
    assert status.next_attempt_time == T0 + timedelta(seconds=10)
    assert decision.requeue_after == 10.0
    assert _condition(status, "CreateRefused").reason == "ExceededQuota"
    assert decision.event is not None
    assert decision.event.reason is EventReason.FAILED_CREATE
    assert decision.event.type is EventType.WARNING
    assert "retrying in 10s, not counted as a failure: " + QUOTA.message in decision.event.message


def test_a_refused_replacement_keeps_the_restart_counted_once() -> None:
    running = engine.decide(SPEC, _first_start().status, None, T0)
    preempted = AttemptEnd(attempt=1, cause=Cause.PREEMPTED, exit_code=143)
    restart = engine.decide(SPEC, running.status, preempted, T0 + timedelta(minutes=1))
    assert restart.action is Action.RESTART
    decision = engine.decide_create_refused(
        SPEC, running.status, restart, QUOTA, T0 + timedelta(minutes=1)
    )
    status = decision.status
    assert status.attempt == 1
    assert status.last_attempt_end is not None
    assert status.last_attempt_end.cause is Cause.PREEMPTED
    assert status.restarts.disruptions == 1
    assert status.restarts.failures == 0


def _refused_again(previous: Decision, now: datetime) -> Decision:
    """The retry falls due and is refused again."""
    retry = engine.decide(SPEC, previous.status, None, now)
    assert retry.action is Action.START
    return engine.decide_create_refused(SPEC, previous.status, retry, QUOTA, now)


def test_the_backoff_grows_with_the_time_refused_and_stops_at_max_seconds() -> None:
    decision = engine.decide_create_refused(SPEC, job_status.Status(), _first_start(), QUOTA, T0)
    delays = []
    now = T0
    for _ in range(8):
        assert decision.status.next_attempt_time is not None
        now = decision.status.next_attempt_time
        decision = _refused_again(decision, now)
        assert decision.requeue_after is not None
        delays.append(decision.requeue_after)
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    assert _condition(decision.status, "CreateRefused").last_transition_time == T0
    assert decision.status.restarts.failures == 0


def test_waiting_for_the_retry_changes_nothing_and_asks_again_when_due() -> None:
    refused = engine.decide_create_refused(SPEC, job_status.Status(), _first_start(), QUOTA, T0)
    waiting = engine.decide(SPEC, refused.status, None, T0 + timedelta(seconds=4))
    assert waiting.action is Action.WAIT
    assert waiting.status == refused.status
    assert waiting.event is None
    assert waiting.requeue_after == 6.0


def test_a_create_that_succeeds_after_refusals_ends_the_refusal() -> None:
    refused = engine.decide_create_refused(SPEC, job_status.Status(), _first_start(), QUOTA, T0)
    retry = engine.decide(SPEC, refused.status, None, T0 + timedelta(seconds=10))
    assert (retry.action, retry.attempt) == (Action.START, 1)
    assert retry.status.attempt_live
    assert retry.status.start_time == T0, "the job started with the first try"
    assert _condition(retry.status, "CreateRefused").status == "False"
    assert retry.status.reason == Reason.ATTEMPT_STARTED


def test_the_deadline_still_counts_while_creates_are_refused() -> None:
    spec = job_spec.parse_spec({**job_spec.to_document(SPEC), "activeDeadlineSeconds": 60})
    first = engine.decide(spec, job_status.Status(), None, T0)
    refused = engine.decide_create_refused(spec, job_status.Status(), first, QUOTA, T0)
    later = engine.decide(spec, refused.status, None, T0 + timedelta(seconds=61))
    assert later.action is Action.FAIL
    assert later.status.reason == Reason.DEADLINE_EXCEEDED


def test_suspending_while_creates_are_refused_starts_nothing() -> None:
    spec = job_spec.parse_spec({**job_spec.to_document(SPEC), "suspend": True})
    refused = engine.decide_create_refused(SPEC, job_status.Status(), _first_start(), QUOTA, T0)
    suspended = engine.decide(spec, refused.status, None, T0 + timedelta(seconds=30))
    assert suspended.action is Action.WAIT
    assert suspended.status.phase is Phase.SUSPENDED
