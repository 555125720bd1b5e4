"""The engine's answer to a spec that cannot be parsed: Failed with InvalidConfig, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from rekindle_operator.core import engine, job_spec, job_status, observation
from rekindle_operator.core.engine import Action
from rekindle_operator.core.reasons import Cause, EventReason, EventType, Phase, Reason

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
PROBLEMS = ["training.epochs: expected an integer, got 'ten'", "image: required"]
SPEC = job_spec.parse_spec(
    {
        "image": "trainer:1",
        "entrypoint": "m:f",
        "training": {"epochs": 5},
        "restartPolicy": {"backoff": {"initialSeconds": 60}},
    }
)


def _new() -> job_status.Status:
    return job_status.Status()


def _pending() -> job_status.Status:
    return engine.decide(SPEC, job_status.Status(), None, T0, generation=1).status


def _running() -> job_status.Status:
    running = observation.AttemptRunning(attempt=1)
    return engine.decide(SPEC, _pending(), running, T0 + timedelta(seconds=10)).status


def _restarting() -> job_status.Status:
    crash = observation.AttemptEnd(attempt=1, cause=Cause.CRASHED, exit_code=1)
    return engine.decide(SPEC, _running(), crash, T0 + timedelta(seconds=20)).status


def _suspended() -> job_status.Status:
    held = job_spec.parse_spec({**job_spec.to_document(SPEC), "suspend": True})
    return engine.decide(held, _pending(), None, T0 + timedelta(seconds=10)).status


def _failed_invalid() -> job_status.Status:
    return engine.decide_invalid_spec(_running(), PROBLEMS, T0 + timedelta(seconds=30)).status


def _succeeded() -> job_status.Status:
    done = observation.AttemptEnd(attempt=1, cause=Cause.COMPLETED, exit_code=0)
    return engine.decide(SPEC, _running(), done, T0 + timedelta(seconds=30)).status


def _failed_deadline() -> job_status.Status:
    late = job_spec.parse_spec({**job_spec.to_document(SPEC), "activeDeadlineSeconds": 1})
    return engine.decide(late, _running(), None, T0 + timedelta(seconds=30)).status


@dataclass(frozen=True)
class Case:
    """One row: the stored status, and whether the engine fails the job now."""

    before: str
    status: job_status.Status
    fails: bool
    why: str


CASES = [
    Case("new", _new(), True, "a job created with a bad spec fails at once"),
    Case("pending", _pending(), True, "a waiting attempt's job fails"),
    Case("running", _running(), True, "Running turns False, Failed True"),
    Case("restarting", _restarting(), True, "the backoff's next attempt is dropped"),
    Case("suspended", _suspended(), True, "a suspended job fails too: its spec is unusable"),
    Case("repeated", _failed_invalid(), False, "already failed for this reason: no second event"),
    Case("succeeded", _succeeded(), False, "a finished job stays as it finished"),
    Case("deadline", _failed_deadline(), False, "a job failed for another reason keeps it"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.before for c in CASES])
def test_an_invalid_spec_fails_the_job_once(case: Case) -> None:
    decision = engine.decide_invalid_spec(case.status, PROBLEMS, NOW, generation=7)
    assert decision.status.observed_generation == 7
    assert decision.attempt == case.status.attempt
    if not case.fails:
        assert decision.action is Action.WAIT
        assert decision.event is None
        assert decision.status == case.status.but(observed_generation=7)
        return
    message = "invalid spec: " + "; ".join(PROBLEMS)
    assert decision.action is Action.FAIL
    assert decision.event == engine.Event(
        type=EventType.WARNING, reason=EventReason.FAILED, message=message
    )
    status = decision.status
    assert (status.phase, status.reason, status.message) == (
        Phase.FAILED,
        Reason.INVALID_CONFIG,
        message,
    )
    assert status.completion_time == NOW
    assert status.next_attempt_time is None
    assert status.restarts == case.status.restarts
    true = {c.type for c in status.conditions if c.status == "True"}
    assert true == {"Failed"}
    by_type = {c.type: c for c in status.conditions}
    assert by_type["Running"].status == "False"
    for cond in status.conditions:
        assert cond.observed_generation == 7
        was = next((c for c in case.status.conditions if c.type == cond.type), None)
        if was is None or was.status != cond.status:
            assert cond.last_transition_time == NOW
        else:
            assert cond.last_transition_time == was.last_transition_time


def test_the_rows_start_from_every_phase() -> None:
    assert {c.status.phase for c in CASES} == {None, *Phase}
    assert _restarting().next_attempt_time is not None


def test_without_a_generation_the_stored_one_is_kept() -> None:
    decision = engine.decide_invalid_spec(_pending(), PROBLEMS, NOW)
    assert decision.status.observed_generation == 1
