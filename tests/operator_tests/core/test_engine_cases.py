"""Every row of the shared engine table: the decision, and both bodies' classification."""

from __future__ import annotations

import pytest

from rekindle_operator.core import engine, job_status
from rekindle_operator.core.engine import Action
from rekindle_operator.core.observation import AttemptEnd
from rekindle_operator.core.reasons import Cause, Reason
from rekindle_operator.resources import classify, validation
from tests.support import engine_cases
from tests.support.engine_cases import CASES, POD_CASES, PROCESS_CASES, EngineCase


def _ids(cases: tuple[EngineCase, ...]) -> list[str]:
    return [c.name for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_the_engine_decides_each_row(case: EngineCase) -> None:
    decision = engine.decide(
        case.spec, case.status, case.observed, case.now, generation=case.generation
    )
    assert case.decision_mismatches(decision) == [], case.why


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_deciding_again_on_the_result_is_stable(case: EngineCase) -> None:
    """Level-triggered: the same observation applied to the new status changes nothing more."""
    first = engine.decide(
        case.spec, case.status, case.observed, case.now, generation=case.generation
    )
    if first.action in (Action.START, Action.RESTART, Action.STOP, Action.DELETE):
        return  # the caller acts first; the next call sees a new world
    again = engine.decide(
        case.spec, first.status, case.observed, case.now, generation=case.generation
    )
    assert again.action is Action.WAIT
    assert again.event is None
    assert again.status == first.status


@pytest.mark.parametrize("case", POD_CASES, ids=_ids(POD_CASES))
def test_the_pod_is_classified_as_the_row_says(case: EngineCase) -> None:
    assert case.ending is not None
    assert case.ending.pod is not None
    form = case.ending.pod
    got = classify.classify_pod(
        form.pod,
        now=case.now,
        pending_timeout_seconds=case.spec.restart_policy.pending_timeout_seconds,
        gone=form.gone,
        node_exists=form.node_exists,
    )
    assert got == case.ending.observed


@pytest.mark.parametrize("case", PROCESS_CASES, ids=_ids(PROCESS_CASES))
def test_the_process_is_classified_as_the_row_says(case: EngineCase) -> None:
    assert case.ending is not None
    assert case.ending.process is not None
    observed = case.ending.observed
    assert isinstance(observed, AttemptEnd)
    form = case.ending.process
    got = classify.classify_process(
        observed.attempt,
        form.exit_code,
        form.termination,
        known_cause=form.known_cause,
        detail=form.detail,
    )
    assert got == observed


def test_the_table_covers_every_cause_action_and_reason() -> None:
    causes = {
        c.ending.observed.cause
        for c in CASES
        if c.ending is not None and isinstance(c.ending.observed, AttemptEnd)
    }
    assert causes == set(Cause)
    assert {c.expect.action for c in CASES} == set(Action)
    assert {c.expect.reason for c in CASES} == set(Reason)


def test_row_names_are_unique_and_explained() -> None:
    assert len(engine_cases.BY_NAME) == len(CASES)
    assert all(c.why for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_each_rows_documents_are_valid_trainingjobs(case: EngineCase) -> None:
    manifest = case.manifest(engine_cases.JOB)
    assert validation.validate(manifest) == []
    decision = engine.decide(case.spec, case.status, case.observed, case.now)
    manifest["status"] = job_status.to_document(decision.status)
    assert validation.validate(manifest) == []


def test_a_broken_expectation_is_reported() -> None:
    case = engine_cases.BY_NAME["crashed-restarts-after-backoff"]
    decision = engine.decide(case.spec, case.status, case.observed, case.now)
    wrong = engine.Decision(
        action=Action.RESTART, status=decision.status.but(phase=None), attempt=2
    )
    problems = case.decision_mismatches(wrong)
    assert any(p.startswith("phase") for p in problems)
    assert any(p.startswith("action") for p in problems)
    assert any(p.startswith("expected no event") or p.startswith("no Warning") for p in problems)
