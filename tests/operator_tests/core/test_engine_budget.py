"""The failure budget (``status.restartBudget``) beyond the shared table's rows.

The table (``tests/support/engine_cases.py``) pins the budget's main rules for
every body; these pin the edges: a spec edit, an epoch that goes back, a
suspension, and what starts it afresh (only progress).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rekindle_operator.core import engine, job_spec, job_status
from rekindle_operator.core.engine import Action
from rekindle_operator.core.job_status import RestartBudget, Restarts, Status
from rekindle_operator.core.observation import AttemptEnd, Progress
from rekindle_operator.core.reasons import Cause, Phase

NOW = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)


def _spec(**policy: Any) -> job_spec.TrainingJobSpec:
    return job_spec.parse_spec(
        {
            "image": "trainer:1",
            "entrypoint": "m:f",
            "training": {"epochs": 50},
            "restartPolicy": {"maxRestarts": 3, **policy},
        }
    )


def _running(*, attempt: int, epoch: int, used: int, since: int, resets: int = 0) -> Status:
    return Status(
        phase=Phase.RUNNING,
        attempt=attempt,
        current_epoch=epoch,
        restarts=Restarts(total=attempt - 1, failures=attempt - 1),
        restart_budget=RestartBudget(
            failures_used=used, failures_left=3 - used, progress_epoch=since, resets=resets
        ),
        start_time=NOW,
    )


def _crash(attempt: int, epoch: int | None = None) -> AttemptEnd:
    progress = None if epoch is None else Progress(epoch=epoch)
    return AttemptEnd(attempt=attempt, cause=Cause.CRASHED, exit_code=1, progress=progress)


def _budget(status: Status) -> RestartBudget:
    assert status.restart_budget is not None
    return status.restart_budget


def test_off_by_default_so_progress_forgives_nothing() -> None:
    status = _running(attempt=4, epoch=40, used=3, since=1)
    decision = engine.decide(_spec(), status, _crash(4), NOW)
    assert decision.action is Action.FAIL
    assert "resetAfterProgressEpochs" not in decision.status.message


def test_a_spec_edit_of_max_restarts_shows_in_what_is_left() -> None:
    status = _running(attempt=3, epoch=5, used=2, since=4)
    decision = engine.decide(_spec(maxRestarts=10), status, None, NOW)
    assert decision.action is Action.WAIT
    assert _budget(decision.status).failures_left == 8


def test_an_epoch_that_went_back_is_no_progress() -> None:
    """A restore from an older checkpoint trains epochs again: not progress past the furthest."""
    status = _running(attempt=3, epoch=7, used=2, since=9)
    decision = engine.decide(_spec(resetAfterProgressEpochs=2), status, _crash(3, epoch=8), NOW)
    assert decision.action is Action.RESTART_AFTER
    assert _budget(decision.status) == RestartBudget(
        failures_used=3, failures_left=0, progress_epoch=9, resets=0
    )
    # Epoch 10 later is 1 epoch past the furthest (9), not 2 past the last failure's 8.
    then = decision.status.but(phase=Phase.RUNNING, attempt=4, current_epoch=10)
    final = engine.decide(_spec(resetAfterProgressEpochs=2), then, _crash(4), NOW)
    assert final.action is Action.FAIL


def test_a_failure_while_suspending_is_counted_with_progress_first() -> None:
    status = _running(attempt=4, epoch=5, used=3, since=5)
    spec = job_spec.parse_spec(
        {**job_spec.to_document(_spec(resetAfterProgressEpochs=2)), "suspend": True}
    )
    decision = engine.decide(spec, status, _crash(4, epoch=8), NOW)
    assert decision.status.phase is Phase.SUSPENDED
    assert _budget(decision.status) == RestartBudget(
        failures_used=1, failures_left=2, progress_epoch=8, resets=1
    )


def test_the_budget_round_trips_through_the_status_document() -> None:
    """What a restarted operator or a second ``rekindle run`` reads back is what was written."""
    status = _running(attempt=6, epoch=12, used=1, since=11, resets=2)
    decision = engine.decide(_spec(resetAfterProgressEpochs=3), status, _crash(6, epoch=12), NOW)
    again = job_status.parse_status(job_status.to_document(decision.status))
    assert again == decision.status
    assert _budget(again) == RestartBudget(
        failures_used=2, failures_left=1, progress_epoch=12, resets=2
    )
