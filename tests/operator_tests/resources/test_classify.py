"""Classification edge cases the shared table does not hold (the table covers every cause)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rekindle_operator.core import observation
from rekindle_operator.core.observation import AttemptEnd, AttemptPending, AttemptRunning
from rekindle_operator.core.reasons import Cause
from rekindle_operator.resources import classify
from rekindle_trainer.contract import Outcome
from tests.support.engine_cases import NOW, T0, disruption, pod, termination, ts


def _classify(p: dict[str, Any]) -> observation.Observation:
    return classify.classify_pod(p, now=NOW, pending_timeout_seconds=600)


def test_the_attempt_number_comes_from_the_label_then_the_name() -> None:
    labelled = pod(3)
    assert classify.attempt_of(labelled) == 3
    del labelled["metadata"]["labels"]["rekindle.dev/attempt"]
    assert classify.attempt_of(labelled) == 3
    labelled["metadata"]["name"] = "digits-x"
    with pytest.raises(ValueError, match=r"no attempt number in label rekindle.dev/attempt"):
        classify.attempt_of(labelled)


def test_a_gang_workers_attempt_is_read_from_its_name_too() -> None:
    worker = pod(3)
    del worker["metadata"]["labels"]["rekindle.dev/attempt"]
    worker["metadata"]["name"] = "digits-12-w3"
    assert classify.attempt_of(worker) == 12


def test_a_running_pod_is_its_attempt_running() -> None:
    assert _classify(pod(2, running=True, created=T0)) == AttemptRunning(attempt=2)


def test_a_pod_being_deleted_is_waited_for_until_its_trainer_exits() -> None:
    """After SIGTERM the trainer saves; replacing it early would mean two writers."""
    shutting_down = pod(
        running=True,
        deleting=True,
        conditions=(disruption("PreemptionByScheduler", "preempted"),),
    )
    shutting_down["metadata"]["deletionTimestamp"] = ts(NOW + timedelta(seconds=20))
    assert _classify(shutting_down) is None


def test_a_pod_on_its_node_without_a_scheduling_time_is_pending_since_its_creation() -> None:
    created = NOW - timedelta(seconds=30)
    assert _classify(pod(phase="Pending", created=created)) == AttemptPending(
        attempt=1, since=created
    )


def test_an_unknown_disruption_reason_is_still_a_disruption() -> None:
    p = pod(phase="Failed", exit_code=137, conditions=(disruption("SomethingNew", "x"),))
    observed = _classify(p)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.EVICTED


def test_success_wins_over_a_disruption() -> None:
    p = pod(
        phase="Succeeded",
        exit_code=0,
        message=termination(Outcome.COMPLETED, epoch=20, step=1120),
        conditions=(disruption("EvictionByEvictionAPI", "drain"),),
    )
    observed = _classify(p)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.COMPLETED


def test_oom_wins_over_a_disruption() -> None:
    p = pod(
        phase="Failed",
        exit_code=137,
        terminated_reason="OOMKilled",
        conditions=(disruption("EvictionByEvictionAPI", "drain"),),
    )
    observed = _classify(p)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.OOM_KILLED


def test_a_termination_message_that_is_not_ours_is_quoted_not_trusted() -> None:
    p = pod(phase="Failed", exit_code=1, message="Traceback (most recent call last):\n  boom")
    observed = _classify(p)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.CRASHED
    assert observed.progress is None
    assert observed.message == "exit code 1: Traceback (most recent call last): boom"


def test_a_broken_json_termination_message_is_reported() -> None:
    p = pod(phase="Failed", exit_code=1, message='{"outcome": "exploded"}')
    observed = _classify(p)
    assert isinstance(observed, AttemptEnd)
    assert "outcome" in observed.message
    assert observed.progress is None


def test_a_completed_pod_without_a_message_is_completed() -> None:
    observed = _classify(pod(phase="Succeeded", exit_code=0))
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.COMPLETED
    assert observed.progress is None


@pytest.mark.parametrize(
    ("code", "cause", "exit_code"),
    [
        (-15, Cause.PREEMPTED, 143),
        (-9, Cause.CRASHED, 137),
        (-6, Cause.CRASHED, 134),
        (3, Cause.CRASHED, 3),
        (2, Cause.INVALID, 2),
        (0, Cause.COMPLETED, 0),
    ],
)
def test_process_exit_codes(code: int, cause: Cause, exit_code: int) -> None:
    observed = classify.classify_process(4, code, None)
    assert (observed.attempt, observed.cause, observed.exit_code) == (4, cause, exit_code)


def test_a_known_cause_does_not_hide_a_success_or_an_invalid_config() -> None:
    done = classify.classify_process(1, 0, None, known_cause=Cause.PREEMPTED)
    assert done.cause is Cause.COMPLETED
    invalid = classify.classify_process(1, 2, None, known_cause=Cause.NODE_LOST)
    assert invalid.cause is Cause.INVALID


def test_the_termination_message_progress_is_carried() -> None:
    text = termination(
        Outcome.PREEMPTED,
        epoch=3,
        step=90,
        best_metric=0.5,
        monitor="val_loss",
        best_epoch=2,
        lost_steps=4,
    )
    observed = classify.classify_process(2, 143, text)
    assert observed.progress == observation.Progress(
        epoch=3,
        step=90,
        checkpoint="ckpt-000005-0000000280",
        best_metric=0.5,
        monitor="val_loss",
        best_epoch=2,
        lost_steps=4,
    )


def test_a_pod_the_node_refused_is_a_counted_crash_not_a_free_restart() -> None:
    """Admission errors recur at once on the same node: they must back off."""
    rejected = pod(phase="Failed", pod_reason=("UnexpectedAdmissionError", "Allocate failed"))
    rejected["status"]["containerStatuses"] = []
    observed = _classify(rejected)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.CRASHED
    assert observed.exit_code is None
    assert observed.message == (
        "pod Failed without an exit code: UnexpectedAdmissionError: Allocate failed"
    )


@pytest.mark.parametrize(
    ("returncode", "exit_code", "name"),
    [
        (0, 0, None),
        (1, 1, None),
        (2, 2, None),
        (143, 143, "SIGTERM"),
        (-9, 137, "SIGKILL"),
        (-15, 143, "SIGTERM"),
        (-6, 134, "SIGABRT"),
        (200, 200, None),  # past the last signal: just a code
    ],
)
def test_exit_codes_read_as_a_container_runtime_reports_them(
    returncode: int, exit_code: int, name: str | None
) -> None:
    assert classify.exit_code_of(returncode) == exit_code
    assert classify.signal_of(exit_code) == name


def test_an_exit_is_described_with_its_signal() -> None:
    assert classify.describe_exit(137) == "exit code 137 (SIGKILL)"
    assert classify.describe_exit(3) == "exit code 3"
    assert classify.describe_exit(200) == "exit code 200"
