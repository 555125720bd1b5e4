"""``GraceTooShort``: the grace period judged against the trainer's measured saves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rekindle_operator.core import conditions, engine, grace, job_spec, job_status
from rekindle_operator.core.observation import AttemptEnd, AttemptRunning
from rekindle_operator.core.reasons import Cause, ConditionType, Phase

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("grace_seconds", "p99", "saves", "too_short", "suggested"),
    [
        (120, None, 10, None, None),  # an older trainer reports no p99: nothing to judge
        (10, 60.0, 2, None, None),  # two saves: a cold first save must not warn alone
        (120, 80.0, 3, True, 130),  # 80 * 1.5 + 10 = 130 > the default 120
        (99, 60.0, 3, True, 100),
        (100, 60.0, 3, False, 100),  # exactly enough
        (120, 4.2, 50, False, 17),  # ceil(4.2 * 1.5 + 10) = 17
        (16, 4.2, 50, True, 17),
        (5, 0.0, 3, True, 10),  # the margin alone is more than 5 s
    ],
)
def test_the_rule(
    grace_seconds: int,
    p99: float | None,
    saves: int,
    too_short: bool | None,
    suggested: int | None,
) -> None:
    verdict = grace.judge(grace_seconds, p99, saves)
    if too_short is None:
        assert verdict is None
        return
    assert verdict is not None
    assert (verdict.too_short, verdict.suggested_seconds) == (too_short, suggested)


def test_the_message_names_the_field_the_measurement_and_the_fix() -> None:
    verdict = grace.judge(30, 41.5, 7)
    assert verdict is not None
    for part in ("spec.terminationGracePeriodSeconds (30 s)", "41.5 s", "7 saves", "at least 73"):
        assert part in verdict.message


def _running() -> job_status.Status:
    started = engine.decide(SPEC, job_status.Status(), None, T0).status
    return engine.decide(SPEC, started, AttemptRunning(attempt=1), T0).status


SPEC = job_spec.parse_spec({"image": "trainer:1", "entrypoint": "m:f", "training": {"epochs": 5}})


def _condition(status: job_status.Status) -> job_status.Condition | None:
    return conditions.find(status.conditions, ConditionType.GRACE_TOO_SHORT)


def test_the_condition_is_raised_once_and_cleared_when_the_saves_fit() -> None:
    status = _running()
    slow = grace.judge(120, 90.0, 3)
    raised, fired = grace.with_verdict(status, slow, T0)
    shown = _condition(raised)
    assert shown is not None
    assert (shown.status, shown.reason, fired) == ("True", "SaveOutlastsGrace", True)
    # The next read says the same: no second event.
    again, fired = grace.with_verdict(raised, grace.judge(120, 91.0, 4), T0 + timedelta(seconds=10))
    assert fired is False
    # No verdict (a new attempt, not yet 3 saves): the condition stays as it was.
    assert grace.with_verdict(again, None, T0) == (again, False)
    # The spec raised (or saves faster): False, with why.
    cleared, fired = grace.with_verdict(again, grace.judge(200, 91.0, 5), T0)
    shown = _condition(cleared)
    assert shown is not None
    assert (shown.status, shown.reason, fired) == ("False", "GraceCoversSave", False)


def test_a_job_whose_grace_fits_gets_no_condition() -> None:
    status = _running()
    assert grace.with_verdict(status, grace.judge(120, 2.0, 10), T0) == (status, False)


def test_a_phase_change_leaves_the_finding_as_it_is() -> None:
    raised, _ = grace.with_verdict(_running(), grace.judge(120, 90.0, 3), T0)
    ended = AttemptEnd(attempt=1, cause=Cause.PREEMPTED)
    restarting = engine.decide(SPEC, raised, ended, T0 + timedelta(minutes=1)).status
    assert restarting.phase is not Phase.RUNNING
    shown = _condition(restarting)
    assert shown is not None
    assert shown.status == "True"
