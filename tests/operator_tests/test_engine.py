"""The decision engine's properties that a table row cannot show: sequences and idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rekindle_operator import classify, engine, spec, status
from rekindle_operator.engine import Action
from rekindle_operator.reasons import Cause, Phase

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _spec(**overrides: object) -> spec.TrainingJobSpec:
    doc: dict[str, object] = {"image": "trainer:1", "entrypoint": "m:f", "training": {"epochs": 5}}
    doc.update(overrides)
    return spec.parse_spec(doc)


def test_a_new_job_starts_attempt_one_and_counts_from_now() -> None:
    decision = engine.decide(_spec(), status.Status(), None, T0, generation=4)
    assert decision.action is Action.START
    assert decision.attempt == 1
    assert decision.status.phase is Phase.PENDING
    assert decision.status.start_time == T0
    assert decision.status.observed_generation == 4
    assert decision.requeue_after == 600.0


def test_an_end_seen_twice_is_acted_on_once() -> None:
    started = engine.decide(_spec(), status.Status(), None, T0).status
    end = classify.classify_process(1, 143, None)
    first = engine.decide(_spec(), started, end, T0 + timedelta(seconds=30))
    again = engine.decide(_spec(), first.status, end, T0 + timedelta(seconds=31))
    assert first.action is Action.RESTART
    assert again.action is Action.WAIT
    assert again.status.restarts == first.status.restarts


def test_an_end_of_an_older_attempt_changes_nothing() -> None:
    started = engine.decide(_spec(), status.Status(), None, T0).status
    stale = classify.AttemptEnd(attempt=7, cause=Cause.CRASHED, exit_code=1)
    decision = engine.decide(_spec(), started, stale, T0)
    assert decision.action is Action.WAIT
    assert decision.status == started


def test_last_transition_time_moves_only_when_the_status_flips() -> None:
    s = _spec()
    pending = engine.decide(s, status.Status(), None, T0).status
    running = engine.decide(
        s, pending, classify.AttemptRunning(attempt=1), T0 + timedelta(1)
    ).status
    progress = classify.Progress(epoch=2, step=100)
    later = engine.decide(
        s, running, classify.AttemptRunning(attempt=1, progress=progress), T0 + timedelta(2)
    ).status
    (cond,) = [c for c in later.conditions if c.type == "Running"]
    assert cond.status == "True"
    assert cond.last_transition_time == T0 + timedelta(1)
    assert later.current_epoch == 2


def test_backoff_grows_by_factor_and_is_capped() -> None:
    s = _spec(
        restartPolicy={"maxRestarts": 10, "backoff": {"initialSeconds": 10, "maxSeconds": 50}}
    )
    current = engine.decide(s, status.Status(), None, T0).status
    now = T0
    delays = []
    for attempt in range(1, 6):
        now += timedelta(seconds=100)
        end = classify.AttemptEnd(attempt=attempt, cause=Cause.CRASHED, exit_code=1)
        after = engine.decide(s, current, end, now)
        assert after.action is Action.RESTART_AFTER
        delays.append(after.delay_seconds)
        assert after.status.next_attempt_time == now + timedelta(seconds=after.delay_seconds)
        early = engine.decide(s, after.status, None, now + timedelta(seconds=1))
        assert early.action is Action.WAIT
        assert early.requeue_after == after.delay_seconds - 1
        now += timedelta(seconds=after.delay_seconds)
        started = engine.decide(s, after.status, None, now)
        assert started.action is Action.START
        assert started.attempt == attempt + 1
        current = started.status
    assert delays == [10.0, 20.0, 40.0, 50.0, 50.0]


def test_a_status_round_trips_through_its_document() -> None:
    s = _spec()
    current = engine.decide(s, status.Status(), None, T0).status
    end = classify.classify_process(1, 137, None)
    current = engine.decide(s, current, end, T0 + timedelta(seconds=9)).status
    assert status.parse_status(status.to_document(current)) == current
