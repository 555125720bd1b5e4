"""The real operator with Kueue's plain-Pod integration (emulated: its webhook's gate).

Pods of a job with a queue carry the queue and pod-group labels; while Kueue
holds them back the job shows ``Queued`` and waits as long as it takes, the
pending timeout notwithstanding; a run that ends lets Kueue finish its group.
Pods' states are written by the test, as a kubelet would (no kubelet here).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.kube import kueue
from tests.kube.cluster import Cluster
from tests.operator_tests.cluster import test_operator as base
from tests.support.operator_process import OperatorProcess

#: One emulated cluster and one operator for the module (the same fixtures as test_operator's).
cluster = base.cluster
operator = base.operator
NS = base.NS
GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
FINISHED = {"kueue.x-k8s.io/retriable-in-group": "false"}


def running() -> dict[str, Any]:
    """A pod status whose trainer runs."""
    return {
        "phase": "Running",
        "containerStatuses": [
            {"name": "trainer", "state": {"running": {"startedAt": "2026-11-26T10:00:00Z"}}}
        ],
    }


def pod_annotations(cluster: Cluster, pod: str) -> dict[str, str]:
    found = cluster.get("pods", NS, pod)
    return dict(found["metadata"].get("annotations") or {})


@pytest.mark.slow
def test_a_job_queued_longer_than_its_pending_timeout_waits_then_runs_when_admitted(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    policy = {"pendingTimeoutSeconds": 1, "maxRestarts": 0}
    with kueue.installed(cluster):
        cluster.create(base.training_job("queued", NS, queueName="team-a", restartPolicy=policy))
        pod = cluster.wait_for("pods", NS, "queued-1", lambda _: True, what="the first pod")
    labels = pod["metadata"]["labels"]
    assert labels[kueue.QUEUE_LABEL] == "team-a"
    assert labels[GROUP_LABEL].startswith("queued-")
    assert pod["metadata"]["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "1"
    assert kueue.is_gated(pod)
    # The scheduler's word on a gated pod wakes the operator: the job shows it is queued.
    gated = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}
    base.end_pod(cluster, NS, "queued-1", gated)
    job = base.wait_status(cluster, NS, "queued", {"phase": "Pending", "reason": "Queued"})
    queued = base.condition(job, "Queued")
    assert queued is not None
    assert (queued["status"], queued["reason"]) == ("True", "WaitingForAdmission")
    assert queued["message"] == "waiting for Kueue to admit it from LocalQueue team-a"
    time.sleep(3)  # three pending timeouts: still queued, never a failure
    base.end_pod(cluster, NS, "queued-1", {**gated, "message": "still gated"})
    time.sleep(1)
    job = cluster.get("trainingjobs", NS, "queued")
    assert (job["status"]["phase"], job["status"]["attempt"]) == ("Pending", 1)
    assert job["status"]["restarts"]["total"] == 0
    assert base.trainer_pods(cluster, NS, "queued") == ["queued-1"]
    kueue.admit(cluster, NS, "queued-1")
    base.end_pod(cluster, NS, "queued-1", running())
    job = base.wait_status(cluster, NS, "queued", {"phase": "Running"})
    assert (base.condition(job, "Queued") or {}).get("status") == "False"
    base.succeeds_without_restarts(cluster, NS, "queued", "queued-1")


@pytest.mark.slow
def test_replacements_stay_in_the_group_and_a_failed_job_lets_kueue_finish_it(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    policy = {"maxRestarts": 1, "backoff": {"initialSeconds": 1, "maxSeconds": 1}}
    labels = {kueue.QUEUE_LABEL: "team-b"}
    job = base.training_job("grouped", NS, restartPolicy=policy)
    job["metadata"]["labels"] = labels  # the queue named by the job's own label
    cluster.create(job)
    first = cluster.wait_for("pods", NS, "grouped-1", lambda _: True)
    base.end_pod(cluster, NS, "grouped-1", base.terminated(1))
    second = cluster.wait_for("pods", NS, "grouped-2", lambda _: True, what="the replacement")
    group = first["metadata"]["labels"][GROUP_LABEL]
    assert second["metadata"]["labels"][GROUP_LABEL] == group
    assert second["metadata"]["labels"][kueue.QUEUE_LABEL] == "team-b"
    assert pod_annotations(cluster, "grouped-1") == first["metadata"].get("annotations", {})
    base.end_pod(cluster, NS, "grouped-2", base.terminated(1))
    base.wait_status(cluster, NS, "grouped", {"phase": "Failed"})
    cluster.wait_for(
        "pods",
        NS,
        "grouped-2",
        lambda p: FINISHED.items() <= (p["metadata"].get("annotations") or {}).items(),
        what="the last pod marked so that Kueue finishes the group",
    )


@pytest.mark.slow
def test_a_suspended_run_lets_kueue_finish_its_group_and_the_resumed_one_is_a_new_group(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(base.training_job("paused", NS, queueName="team-c"))
    first = cluster.wait_for("pods", NS, "paused-1", lambda _: True)
    base.end_pod(cluster, NS, "paused-1", running())
    base.wait_status(cluster, NS, "paused", {"phase": "Running"})
    cluster.patch("trainingjobs", NS, "paused", {"spec": {"suspend": True}})
    # Not on a node, the stopped pod goes at once; its last states show how it was stopped.
    base.wait_status(cluster, NS, "paused", {"phase": "Suspended", "reason": "Suspended"})
    marks = [
        p["metadata"].get("annotations") or {} for p in cluster.history("pods", NS, "paused-1")
    ]
    assert any(FINISHED.items() <= m.items() for m in marks), marks
    cluster.patch("trainingjobs", NS, "paused", {"spec": {"suspend": False}})
    resumed = cluster.wait_for("pods", NS, "paused-2", lambda _: True, what="the resumed pod")
    assert resumed["metadata"]["labels"][GROUP_LABEL] != first["metadata"]["labels"][GROUP_LABEL]
