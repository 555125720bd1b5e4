"""The decision engine's properties that a table row cannot show: sequences and idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rekindle_operator.core import engine, job_spec, job_status, observation
from rekindle_operator.core.engine import Action
from rekindle_operator.core.reasons import Cause, Phase
from rekindle_operator.resources import classify

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _spec(**overrides: object) -> job_spec.TrainingJobSpec:
    doc: dict[str, object] = {"image": "trainer:1", "entrypoint": "m:f", "training": {"epochs": 5}}
    doc.update(overrides)
    return job_spec.parse_spec(doc)


def test_a_new_job_starts_attempt_one_and_counts_from_now() -> None:
    decision = engine.decide(_spec(), job_status.Status(), None, T0, generation=4)
    assert decision.action is Action.START
    assert decision.attempt == 1
    assert decision.status.phase is Phase.PENDING
    assert decision.status.start_time == T0
    assert decision.status.observed_generation == 4
    assert decision.requeue_after == 600.0


def test_an_end_seen_twice_is_acted_on_once() -> None:
    started = engine.decide(_spec(), job_status.Status(), None, T0).status
    end = classify.classify_process(1, 143, None)
    first = engine.decide(_spec(), started, end, T0 + timedelta(seconds=30))
    again = engine.decide(_spec(), first.status, end, T0 + timedelta(seconds=31))
    assert first.action is Action.RESTART
    assert again.action is Action.WAIT
    assert again.status.restarts == first.status.restarts


def test_an_end_of_an_older_attempt_changes_nothing() -> None:
    started = engine.decide(_spec(), job_status.Status(), None, T0).status
    stale = observation.AttemptEnd(attempt=7, cause=Cause.CRASHED, exit_code=1)
    decision = engine.decide(_spec(), started, stale, T0)
    assert decision.action is Action.WAIT
    assert decision.status == started


def test_last_transition_time_moves_only_when_the_status_flips() -> None:
    s = _spec()
    pending = engine.decide(s, job_status.Status(), None, T0).status
    running = engine.decide(
        s, pending, observation.AttemptRunning(attempt=1), T0 + timedelta(1)
    ).status
    progress = observation.Progress(epoch=2, step=100)
    later = engine.decide(
        s, running, observation.AttemptRunning(attempt=1, progress=progress), T0 + timedelta(2)
    ).status
    (cond,) = [c for c in later.conditions if c.type == "Running"]
    assert cond.status == "True"
    assert cond.last_transition_time == T0 + timedelta(1)
    assert later.current_epoch == 2


def test_backoff_grows_by_factor_and_is_capped() -> None:
    s = _spec(
        restartPolicy={"maxRestarts": 10, "backoff": {"initialSeconds": 10, "maxSeconds": 50}}
    )
    current = engine.decide(s, job_status.Status(), None, T0).status
    now = T0
    delays = []
    for attempt in range(1, 6):
        now += timedelta(seconds=100)
        end = observation.AttemptEnd(attempt=attempt, cause=Cause.CRASHED, exit_code=1)
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
    current = engine.decide(s, job_status.Status(), None, T0).status
    end = classify.classify_process(1, 137, None)
    current = engine.decide(s, current, end, T0 + timedelta(seconds=9)).status
    assert job_status.parse_status(job_status.to_document(current)) == current


def test_lost_steps_are_the_largest_total_an_attempt_reported() -> None:
    """The trainer reports the job's total so far: a total is never added to another."""
    s = _spec()
    status = engine.decide(s, job_status.Status(), None, T0).status
    totals = []
    for attempt, reported in ((1, 2), (2, 6), (3, 0)):
        end = observation.AttemptEnd(
            attempt=attempt,
            cause=Cause.CRASHED,
            exit_code=1,
            progress=observation.Progress(lost_steps=reported),
        )
        status = engine.decide(s, status, end, T0 + timedelta(minutes=attempt)).status
        totals.append(status.lost_steps)
        status = engine.decide(s, status, None, T0 + timedelta(hours=attempt)).status
    assert totals == [2, 6, 6]


def test_a_restart_promises_the_newest_valid_checkpoint_not_the_last_one_reported() -> None:
    """The next attempt resumes from what is valid on the volume when it starts: a save
    published as the kill landed, or none if the reported one turned out corrupt."""
    s = _spec()
    status = engine.decide(s, job_status.Status(), None, T0).status
    status = status.but(latest_checkpoint="ckpt-000003-0000000135")
    end = observation.AttemptEnd(attempt=1, cause=Cause.NODE_LOST, message="node n1 is gone")
    decision = engine.decide(s, status, end, T0 + timedelta(minutes=1))
    assert decision.event is not None
    assert decision.event.message == (
        "restarting from the newest valid checkpoint (last reported: epoch 3 step 135) "
        "because of NodeLost: node n1 is gone; starting attempt 2"
    )
    fresh = engine.decide(s, job_status.Status(), None, T0).status
    decision = engine.decide(s, fresh, end, T0 + timedelta(minutes=1))
    assert decision.event is not None
    assert decision.event.message.startswith(
        "restarting from the newest valid checkpoint (none reported yet) because of NodeLost"
    )


def test_a_live_reading_moves_the_status_while_the_attempt_runs() -> None:
    s = _spec()
    pending = engine.decide(s, job_status.Status(), None, T0).status
    saved = T0 + timedelta(seconds=30)
    live = observation.Progress(
        epoch=3,
        step=30,
        checkpoint="ckpt-3-30",
        checkpoint_time=saved,
        best_metric=0.25,
        monitor="val_loss",
        best_epoch=2,
    )
    running = engine.decide(
        s, pending, observation.AttemptRunning(attempt=1, progress=live), T0 + timedelta(1)
    ).status
    assert (running.current_epoch, running.current_step) == (3, 30)
    assert (running.latest_checkpoint, running.latest_checkpoint_time) == ("ckpt-3-30", saved)
    assert running.best_metric == job_status.BestMetric(name="val_loss", value=0.25, epoch=2)
    # The attempt's end names a newer checkpoint without its time: no stale age is shown.
    newer = observation.Progress(epoch=4, step=40, checkpoint="ckpt-4-40")
    end = observation.AttemptEnd(attempt=1, cause=Cause.PREEMPTED, progress=newer)
    after = engine.decide(s, running, end, T0 + timedelta(2)).status
    assert (after.latest_checkpoint, after.latest_checkpoint_time) == ("ckpt-4-40", None)
    same = observation.Progress(checkpoint="ckpt-3-30")
    kept = engine.decide(
        s, running, observation.AttemptEnd(attempt=1, cause=Cause.PREEMPTED, progress=same), T0
    ).status
    assert kept.latest_checkpoint_time == saved


def test_a_stalled_attempt_is_a_failure_restarted_after_the_backoff() -> None:
    s = _spec(restartPolicy={"stallTimeoutSeconds": 60, "backoff": {"initialSeconds": 10}})
    assert s.restart_policy.stall_timeout_seconds == 60
    assert s.restart_policy.first_step_timeout_seconds == 1800
    pending = engine.decide(s, job_status.Status(), None, T0).status
    running = engine.decide(s, pending, observation.AttemptRunning(attempt=1), T0).status
    pod = {
        "metadata": {
            "name": "job-1",
            "labels": {"rekindle.dev/attempt": "1"},
            "annotations": {classify.STOP_ANNOTATION: classify.STALLED_STOP},
            "deletionTimestamp": "2026-11-26T10:00:05Z",
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "trainer", "state": {"terminated": {"exitCode": 137, "reason": "Error"}}}
            ],
        },
    }
    end = classify.classify_pod(pod, now=T0, pending_timeout_seconds=600)
    assert isinstance(end, observation.AttemptEnd)
    assert end.cause is Cause.STALLED
    decision = engine.decide(s, running, end, T0)
    assert decision.action is Action.RESTART_AFTER
    assert decision.requeue_after == 10
    assert decision.status.restarts.failures == 1
    assert decision.status.restarts.by_cause == {"Stalled": 1}
