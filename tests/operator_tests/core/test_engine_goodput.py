"""The engine folds goodput into the status as attempts start, leave the queue and end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rekindle_operator.core import engine, job_spec, job_status
from rekindle_operator.core.engine import Action
from rekindle_operator.core.observation import AttemptEnd, AttemptPending, AttemptRunning, Progress
from rekindle_operator.core.reasons import Cause
from rekindle_trainer.contract import Timing

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SPEC = job_spec.parse_spec(
    {
        "image": "trainer:1",
        "entrypoint": "m:f",
        "training": {"epochs": 10},
        "workers": 2,
        "resources": {"gpus": 4},
        "restartPolicy": {"backoff": {"initialSeconds": 10, "maxSeconds": 60}},
    }
)
TIMING = Timing(startup=10.0, restore=4.0, checkpoint_stall=6.0, training=80.0, steps=100)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _decide(status: job_status.Status, observed: object, seconds: float) -> engine.Decision:
    return engine.decide(SPEC, status, observed, _at(seconds))  # type: ignore[arg-type]


def test_a_queued_crashed_and_early_stopped_job_adds_up_to_its_wall_time() -> None:
    status = _decide(job_status.Status(), None, 0).status
    status = _decide(status, AttemptPending(attempt=1, queued="WaitingForAdmission"), 2).status
    status = _decide(status, AttemptRunning(attempt=1), 32).status  # admitted after 30 s
    assert status.goodput is not None
    assert status.goodput.badput_seconds.queued == 30
    crashed = Progress(epoch=2, step=100, timing=TIMING)
    decision = _decide(status, AttemptEnd(attempt=1, cause=Cause.CRASHED, progress=crashed), 132)
    assert decision.action is Action.RESTART_AFTER
    status = _decide(decision.status, None, 142).status  # the backoff is over: attempt 2
    status = _decide(status, AttemptRunning(attempt=2), 143).status
    stopped = Progress(epoch=4, step=200, lost_steps=25, early_stop_epoch=4, timing=TIMING)
    end = AttemptEnd(attempt=2, cause=Cause.EARLY_STOPPED, progress=stopped)
    decision = _decide(status, end, 242)
    assert decision.action is Action.SUCCEED
    g = decision.status.goodput
    assert g is not None
    assert decision.status.completion_time == g.through == _at(242)
    assert g.since == decision.status.start_time == T0
    bad = g.badput_seconds
    assert (bad.queued, bad.restart_downtime, bad.restore) == (30, 10, 8)
    assert bad.lost_work_replayed == pytest.approx(18.5)
    assert g.productive_seconds == pytest.approx(74 + 55.5)
    assert g.productive_seconds + bad.total() == pytest.approx(242)
    gpus = 4 * 2
    assert g.gpu_seconds.lost_to_interruptions == pytest.approx(gpus * (18.5 + 16 + 4))
    assert g.gpu_seconds.saved_by_early_stopping == pytest.approx(gpus * 6 * (74 + 55.5) / 4)
    assert job_status.parse_status(job_status.to_document(decision.status)) == decision.status


def test_time_suspended_is_its_own_cause() -> None:
    status = _decide(job_status.Status(), None, 0).status
    status = _decide(status, AttemptRunning(attempt=1), 1).status
    suspended = job_spec.parse_spec({**job_spec.to_document(SPEC), "suspend": True})
    status = engine.decide(suspended, status, None, _at(50)).status
    end = AttemptEnd(attempt=1, cause=Cause.STOPPED, progress=Progress(timing=TIMING))
    status = engine.decide(suspended, status, end, _at(60)).status
    status = _decide(status, None, 560).status  # resumed: attempt 2 created
    g = status.goodput
    assert g is not None
    assert g.badput_seconds.suspended == 500
    assert g.productive_seconds + g.badput_seconds.total() == pytest.approx(560)


def test_an_end_seen_twice_is_folded_once() -> None:
    status = _decide(job_status.Status(), None, 0).status
    end = AttemptEnd(attempt=1, cause=Cause.PREEMPTED, progress=Progress(timing=TIMING))
    once = _decide(status, end, 100).status
    twice = _decide(once, end, 150).status
    assert twice.goodput == once.goodput
