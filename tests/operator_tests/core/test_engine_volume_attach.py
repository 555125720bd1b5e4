"""A replacement whose volume a dead node still holds: shown, never a pending timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rekindle_operator.core import conditions, engine, job_spec, job_status
from rekindle_operator.core.engine import Action
from rekindle_operator.core.observation import AttemptPending, AttemptRunning
from rekindle_operator.core.reasons import ConditionType, Phase

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SPEC = job_spec.parse_spec(
    {
        "image": "trainer:1",
        "entrypoint": "m:f",
        "training": {"epochs": 5},
        "restartPolicy": {"pendingTimeoutSeconds": 60},
    }
)
BLOCKED = AttemptPending(
    attempt=1,
    blocked="MultiAttachError",
    message="pod digits-1 on node n2: Multi-Attach error …; still attached to node n1",
)


def _blocked(at: datetime) -> job_status.Status:
    started = engine.decide(SPEC, job_status.Status(), None, T0).status
    return engine.decide(SPEC, started, BLOCKED, at).status


def _condition(status: job_status.Status) -> job_status.Condition:
    found = conditions.find(status.conditions, ConditionType.VOLUME_ATTACH_BLOCKED)
    assert found is not None
    return found


def test_a_blocked_attach_shows_its_reason_and_node_and_never_times_out() -> None:
    status = _blocked(T0 + timedelta(seconds=5))
    shown = _condition(status)
    assert (shown.status, shown.reason) == ("True", "MultiAttachError")
    assert "node n1" in shown.message
    later = engine.decide(SPEC, status, BLOCKED, T0 + timedelta(hours=5))
    assert later.action is Action.WAIT
    assert later.requeue_after is None
    assert later.status.phase is Phase.PENDING
    # A pass with nothing new (a timer, another event) asks for no timer either.
    assert engine.decide(SPEC, later.status, None, T0 + timedelta(hours=6)).requeue_after is None


def test_the_condition_turns_false_once_the_volume_is_attached() -> None:
    status = _blocked(T0 + timedelta(seconds=5))
    attached = AttemptPending(attempt=1, since=T0 + timedelta(seconds=30))
    waiting = engine.decide(SPEC, status, attached, T0 + timedelta(seconds=31))
    assert _condition(waiting.status).status == "False"
    assert waiting.requeue_after == 59  # the timeout counts from the attach
    running = engine.decide(SPEC, status, AttemptRunning(attempt=1), T0 + timedelta(seconds=40))
    assert _condition(running.status).status == "False"
