"""metav1.Condition helpers: lastTransitionTime moves only when status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rekindle_operator.core import conditions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_new_condition_is_appended_with_now() -> None:
    result = conditions.set_condition(
        (), "Running", status="True", reason="AttemptRunning", message="m", now=T0, generation=2
    )
    (cond,) = result
    assert (cond.type, cond.status, cond.reason, cond.message) == (
        "Running",
        "True",
        "AttemptRunning",
        "m",
    )
    assert cond.last_transition_time == T0
    assert cond.observed_generation == 2


def test_same_status_new_reason_keeps_the_transition_time() -> None:
    first = conditions.set_condition(
        (), "Running", status="False", reason="A", message="", now=T0, generation=1
    )
    second = conditions.set_condition(
        first,
        "Running",
        status="False",
        reason="B",
        message="x",
        now=T0 + timedelta(1),
        generation=3,
    )
    (cond,) = second
    assert cond.reason == "B"
    assert cond.last_transition_time == T0
    assert cond.observed_generation == 3


def test_a_flip_moves_the_transition_time_and_keeps_the_order() -> None:
    start = conditions.set_condition(
        (), "Running", status="True", reason="A", message="", now=T0, generation=None
    )
    start = conditions.set_condition(
        start, "Suspended", status="False", reason="A", message="", now=T0, generation=None
    )
    later = T0 + timedelta(minutes=5)
    flipped = conditions.set_condition(
        start, "Running", status="False", reason="B", message="", now=later, generation=None
    )
    assert [c.type for c in flipped] == ["Running", "Suspended"]
    assert flipped[0].last_transition_time == later
    assert flipped[1] == start[1]
    assert [c.status for c in start] == ["True", "False"]
    assert [c.status for c in flipped] == ["False", "False"]
    assert conditions.find(flipped, "Failed") is None


def test_only_true_false_unknown_are_accepted() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        conditions.set_condition(
            (), "Running", status="yes", reason="A", message="", now=T0, generation=None
        )
