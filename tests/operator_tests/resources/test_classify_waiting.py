"""Pods that wait: for a container the kubelet refuses to create, for a queue, for a node."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rekindle_operator.core import observation
from rekindle_operator.core.observation import AttemptEnd, AttemptPending
from rekindle_operator.core.reasons import Cause
from rekindle_operator.resources import classify
from rekindle_trainer.contract import Outcome
from tests.support.engine_cases import NOW, disruption, pod, scheduled, termination


def _classify(p: dict[str, Any]) -> observation.Observation:
    return classify.classify_pod(p, now=NOW, pending_timeout_seconds=600)


@pytest.mark.parametrize(
    "kubelet_says",
    [
        'container has runAsNonRoot and image will run as root (pod: "digits-1_ml(…)", '
        "container: trainer)",
        "container has runAsNonRoot and image has non-numeric user (rekindle), cannot verify "
        "user is non-root",
    ],
)
def test_an_image_refused_under_run_as_non_root_ends_with_the_fix_named(kubelet_says: str) -> None:
    observed = _classify(pod(phase="Pending", waiting=("CreateContainerConfigError", kubelet_says)))
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.CONFIG_ERROR
    assert observed.message.startswith(f"CreateContainerConfigError: {kubelet_says}; ")
    assert "set spec.template.securityContext.runAsUser to a non-zero UID" in observed.message
    assert "build the image with a numeric non-root USER" in observed.message


def test_another_config_error_gets_no_unrelated_fix() -> None:
    refused = ("CreateContainerConfigError", 'secret "wandb" not found')
    observed = _classify(pod(phase="Pending", waiting=refused))
    assert isinstance(observed, AttemptEnd)
    assert observed.message == 'CreateContainerConfigError: secret "wandb" not found'


def test_a_pod_held_by_another_scheduling_gate_is_queued_with_the_gates_named() -> None:
    held = pod(phase="Pending", node=None)
    held["spec"]["schedulingGates"] = [{"name": "example.com/quota"}, {"name": "x/y"}]
    assert _classify(held) == AttemptPending(
        attempt=1,
        queued="SchedulingGated",
        message="waiting for its scheduling gates to go: example.com/quota, x/y",
    )


def test_a_pod_no_scheduler_looked_at_yet_waits_for_one() -> None:
    fresh = pod(phase="Pending", node=None, created=NOW - timedelta(hours=2))
    assert _classify(fresh) == AttemptPending(
        attempt=1, queued="WaitingForScheduler", message="not looked at by a scheduler yet"
    )


def test_the_pending_timeout_counts_from_when_the_pod_got_its_node() -> None:
    on_node = pod(
        phase="Pending",
        created=NOW - timedelta(hours=5),
        conditions=(scheduled(NOW - timedelta(seconds=599)),),
    )
    assert _classify(on_node) == AttemptPending(attempt=1, since=NOW - timedelta(seconds=599))


def test_kueues_stop_condition_is_a_preemption_by_the_queue() -> None:
    stopped = pod(phase="Failed", exit_code=143, message=termination(Outcome.PREEMPTED))
    stopped["status"]["conditions"] = [
        {
            "type": "TerminationTarget",
            "status": "True",
            "reason": "WorkloadEvictedDueToPreempted",
            "message": "Preempted to accommodate a workload due to prioritization",
        },
        {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"},
    ]
    observed = _classify(stopped)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.PREEMPTED
    assert observed.message == (
        "preempted by Kueue (WorkloadEvictedDueToPreempted): Preempted to accommodate a "
        "workload due to prioritization"
    )


def test_an_older_kueues_disruption_target_is_a_preemption_too() -> None:
    condition = disruption("StoppedByKueue", "Preempted to accommodate a higher priority Workload")
    gone = pod(phase="Running", running=True, conditions=(condition,))
    observed = classify.classify_pod(gone, now=NOW, pending_timeout_seconds=600, gone=True)
    assert isinstance(observed, AttemptEnd)
    assert observed.cause is Cause.PREEMPTED
    assert observed.message.startswith("preempted by Kueue (StoppedByKueue): ")
