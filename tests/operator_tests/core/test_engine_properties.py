"""Invariants of the engine over random histories (hypothesis): counts, phases, conditions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rekindle_operator.core import engine, job_spec, job_status, observation
from rekindle_operator.core.engine import Action
from rekindle_operator.core.reasons import DISRUPTION_CAUSES, FAILURE_CAUSES, Cause, Phase
from rekindle_trainer.contract import Timing
from tests.support.engine_cases import T0

_CAUSES = sorted(Cause, key=lambda c: c.value)

_step = st.one_of(
    st.tuples(st.just("end"), st.sampled_from(_CAUSES)),
    st.tuples(st.just("running"), st.integers(0, 30)),
    st.tuples(st.just("tick"), st.integers(1, 400)),
    st.tuples(st.just("suspend"), st.booleans()),
    st.tuples(st.just("stale"), st.sampled_from(_CAUSES)),
    st.tuples(st.just("queued"), st.sampled_from(["WaitingForAdmission", "Unschedulable"])),
    st.tuples(st.just("timed_end"), st.sampled_from(_CAUSES)),
)
_TIMING = Timing(startup=3.0, restore=1.0, checkpoint_stall=2.0, training=50.0, steps=40)

_PHASE_TRUE = {
    Phase.PENDING: None,
    Phase.RUNNING: "Running",
    Phase.RESTARTING: "Restarting",
    Phase.SUSPENDED: "Suspended",
    Phase.SUCCEEDED: "Succeeded",
    Phase.FAILED: "Failed",
}


def _spec(
    max_restarts: int, max_disruptions: int | None, deadline: int | None
) -> job_spec.TrainingJobSpec:
    doc: dict[str, Any] = {
        "image": "t:1",
        "entrypoint": "m:f",
        "training": {"epochs": 30},
        "restartPolicy": {
            "maxRestarts": max_restarts,
            "maxDisruptions": max_disruptions,
            "backoff": {"initialSeconds": 5, "maxSeconds": 60},
            "pendingTimeoutSeconds": 100,
        },
        "activeDeadlineSeconds": deadline,
    }
    return job_spec.parse_spec(doc)


def _check_invariants(
    before: job_status.Status, decision: engine.Decision, s: job_spec.TrainingJobSpec
) -> None:
    after = decision.status
    counts = after.restarts
    assert counts.total == counts.failures + counts.disruptions == sum(counts.by_cause.values())
    assert set(counts.by_cause) <= {c.value for c in DISRUPTION_CAUSES | FAILURE_CAUSES}
    assert counts.failures <= s.restart_policy.max_restarts
    if s.restart_policy.max_disruptions is not None:
        assert counts.disruptions <= s.restart_policy.max_disruptions
    if before.finished:
        assert after.phase == before.phase
        assert decision.action in (Action.WAIT, Action.DELETE)
    # A new attempt only when none is live any more, one at a time.
    if decision.action in (Action.START, Action.RESTART):
        assert after.attempt == before.attempt + 1 == decision.attempt
        assert not (before.attempt_live and after.last_attempt_end == before.last_attempt_end)
    else:
        assert after.attempt == before.attempt
    # Conditions: exactly the phase's condition is True (and Queued, which is no phase's);
    # Running is always there.
    true = {c.type for c in after.conditions if c.status == "True" and c.type != "Queued"}
    wanted = _PHASE_TRUE[after.phase] if after.phase else None
    assert true == ({wanted} if wanted else set())
    assert any(c.type == "Running" for c in after.conditions) or after.phase is None
    old = {c.type: c for c in before.conditions}
    for cond in after.conditions:
        if cond.type in old and old[cond.type].status == cond.status:
            assert cond.last_transition_time == old[cond.type].last_transition_time
    assert job_status.parse_status(job_status.to_document(after)) == after
    _check_goodput(before, after)


def _check_goodput(before: job_status.Status, after: job_status.Status) -> None:
    """Every second from the first start attributed once; totals only grow."""
    if after.attempt == 0:
        return
    g = after.goodput
    assert g is not None
    assert g.productive_seconds >= 0
    assert all(v >= 0 for v in g.badput_seconds.by_cause().values())
    assert g.productive_seconds + g.badput_seconds.total() == pytest.approx(g.wall_seconds)
    if after.finished and after.completion_time is not None and not after.attempt_live:
        assert g.through >= after.completion_time
    old = before.goodput
    if old is not None:
        assert g.since == old.since
        assert g.through >= old.through
        assert g.productive_seconds >= old.productive_seconds


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(_step, min_size=1, max_size=25),
    max_restarts=st.integers(0, 3),
    max_disruptions=st.one_of(st.none(), st.integers(0, 3)),
    deadline=st.one_of(st.none(), st.integers(200, 3000)),
)
# The deadline passes during the backoff after a failure: the account still reaches the end.
@example(
    steps=[("end", Cause.CONFIG_ERROR), ("tick", 200)],
    max_restarts=1,
    max_disruptions=None,
    deadline=200,
)
def test_invariants_hold_over_any_history(
    steps: list[tuple[str, Any]],
    max_restarts: int,
    max_disruptions: int | None,
    deadline: int | None,
) -> None:
    s = _spec(max_restarts, max_disruptions, deadline)
    now = T0
    current = job_status.Status()
    first = engine.decide(s, current, None, now, generation=1)
    _check_invariants(current, first, s)
    current = first.status
    for kind, value in steps:
        observed: observation.Observation = None
        if kind == "tick":
            now += timedelta(seconds=value)
        elif kind == "suspend":
            s = job_spec.parse_spec({**job_spec.to_document(s), "suspend": value})
        elif kind == "end":
            observed = observation.AttemptEnd(attempt=current.attempt, cause=value, exit_code=1)
        elif kind == "queued":
            observed = observation.AttemptPending(attempt=current.attempt, queued=value)
        elif kind == "timed_end":
            progress = observation.Progress(
                epoch=3, step=30, lost_steps=current.lost_steps + 5, timing=_TIMING
            )
            observed = observation.AttemptEnd(
                attempt=current.attempt, cause=value, exit_code=1, progress=progress
            )
        elif kind == "stale":
            observed = observation.AttemptEnd(attempt=max(current.attempt - 1, 0), cause=value)
        elif kind == "running":
            progress = observation.Progress(epoch=value, step=value * 10)
            observed = observation.AttemptRunning(attempt=current.attempt, progress=progress)
        decision = engine.decide(s, current, observed, now)
        _check_invariants(current, decision, s)
        if kind == "stale" and current.attempt > 1:
            assert decision.status == current
        current = decision.status
