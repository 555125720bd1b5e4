"""A TrainingJob of two workers on the emulated cluster: the real operator, the process kubelet.

Each worker pod runs the stand-in trainer (``local_fake_trainer.py``, which acts
as a worker under ``TF_CONFIG``: only the chief saves and reports), the
kubelet resolves the workers' names to loopback (test-only cluster DNS), and
faults hit one worker the way the cluster would: a SIGKILL of its container,
a preemption (``DisruptionTarget`` and a graceful delete), its node lost. In
every case the operator stops the other worker, waits until the whole gang has
ended, counts one restart by the first cause, starts a new gang, and the job
ends at the uninterrupted run's early-stop epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.contract import timestamps
from tests.kube import patches
from tests.kube.cluster import Cluster
from tests.kube.kubelet import ProcessKubelet
from tests.kube.store import DeleteOptions, Store
from tests.operator_tests.cluster import test_operator
from tests.operator_tests.cluster.test_operator import (
    emulated_cluster,
    event_reasons,
    training_job,
    wait_status,
)

NS = "gang"
FAKE = Path(__file__).parents[1] / "local_fake_trainer.py"
#: 20 epochs of 5 steps at 0.1 s: early stopping fires at epoch 8 (best 6, patience 2).
STOP_EPOCH = 8
RUN_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("cluster")
    with emulated_cluster(folder, NS) as cluster:
        cluster.start_kubelet(folder / "node", node_lost_after=0.3)
        yield cluster


#: The real operator process, one for the module, watching this module's cluster.
operator = test_operator.operator
pytestmark = pytest.mark.usefixtures("operator")


def node(cluster: Cluster) -> ProcessKubelet:
    assert cluster.kubelet is not None
    return cluster.kubelet


def pair(name: str, **spec: Any) -> dict[str, Any]:
    """A two-worker job of the stand-in trainer, ``spec`` merged over it."""
    fake: dict[str, Any] = {
        "image": "local/fake:1",
        "entrypoint": None,
        "command": [sys.executable, str(FAKE)],
        "workers": 2,
        "training": {
            "epochs": 20,
            "stepsPerEpoch": 5,
            "hyperparameters": {"bestEpoch": 6, "stepSeconds": 0.1},
        },
        "earlyStopping": {"monitor": "val_loss", "patience": 2},
        "terminationGracePeriodSeconds": 10,
    }
    job = training_job(name, NS, **{**fake, **spec})
    del job["spec"]["entrypoint"]
    return job


def wait_checkpoint(cluster: Cluster, job: str, epoch: int) -> None:
    """Wait until the chief has published the checkpoint of ``epoch``."""
    folder = node(cluster).volume_path(NS, f"{job}-checkpoints") / job
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(folder.glob(f"{contract.CHECKPOINT_PREFIX}{epoch:06d}-*")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no checkpoint of epoch {epoch} in {folder}")
        time.sleep(0.05)


def run_with(cluster: Cluster, name: str, fault: Callable[[str], None]) -> dict[str, Any]:
    """Apply a two-worker job, hit worker 1 with ``fault`` after epoch 2, wait for Succeeded."""
    cluster.create(pair(name))
    node(cluster).wait_running(NS, f"{name}-1-w1", timeout=RUN_TIMEOUT)
    wait_checkpoint(cluster, name, epoch=2)
    fault(f"{name}-1-w1")
    return wait_status(cluster, NS, name, {"phase": "Succeeded"}, timeout=RUN_TIMEOUT)


def finished_at(cluster: Cluster, pod: str) -> str | None:
    """When the pod's container finished, as its last reported state says (None: never)."""
    for state in reversed(cluster.history("pods", NS, pod)):
        for container in (state.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated and terminated.get("finishedAt"):
                return str(terminated["finishedAt"])
    return None


def created_at(cluster: Cluster, pod: str) -> str:
    return str(cluster.history("pods", NS, pod)[0]["metadata"]["creationTimestamp"])


def assert_one_gang_at_a_time(cluster: Cluster, name: str) -> None:
    """No worker of attempt 2 was created before every worker of attempt 1 had finished."""
    ends = [finished_at(cluster, f"{name}-1-w{i}") for i in (0, 1)]
    starts = [created_at(cluster, f"{name}-2-w{i}") for i in (0, 1)]
    last_end = max(timestamps.parse_time(e) for e in ends if e is not None)
    assert all(timestamps.parse_time(s) >= last_end for s in starts), (ends, starts)


def assert_restarted_once_by(job: dict[str, Any], cause: str, *, disruption: bool) -> None:
    status = job["status"]
    assert status["reason"] == "EarlyStopped"
    assert status["earlyStopEpoch"] == STOP_EPOCH
    assert status["attempt"] == 2
    assert status["restarts"] == {
        "total": 1,
        "failures": 0 if disruption else 1,
        "disruptions": 1 if disruption else 0,
        "byCause": {cause: 1},
    }
    assert [w["pod"] for w in status["workers"]] == [
        f"{job['metadata']['name']}-2-w0",
        f"{job['metadata']['name']}-2-w1",
    ]


def restart_message(cluster: Cluster, job: dict[str, Any]) -> str:
    events = [e for e in cluster.events_for(job) if e["reason"] == "Restarting"]
    assert len(events) == 1, events
    return str(events[0]["message"])


@pytest.mark.slow
def test_a_two_worker_job_trains_as_one_gang_to_the_early_stop(
    cluster: Cluster,
) -> None:
    name = "calm"
    cluster.create(pair(name))
    running = wait_status(cluster, NS, name, {"workersReady": "2/2"}, timeout=RUN_TIMEOUT)
    assert [w["state"] for w in running["status"]["workers"]] == ["Running", "Running"]
    job = wait_status(cluster, NS, name, {"phase": "Succeeded"}, timeout=RUN_TIMEOUT)
    status = job["status"]
    assert (status["reason"], status["earlyStopEpoch"]) == ("EarlyStopped", STOP_EPOCH)
    assert status["restarts"]["total"] == 0
    assert status["lastAttemptEnd"]["worker"] == 0
    assert status["workers"][0]["state"] == "Succeeded"
    # One attempt, two workers (worker 1 is stopped if it still ran when the chief succeeded).
    live = {p["metadata"]["name"] for p in cluster.list("pods", NS, f"rekindle.dev/job={name}")}
    assert f"{name}-1-w0" in live
    assert live <= {f"{name}-1-w0", f"{name}-1-w1"}
    assert cluster.history("pods", NS, f"{name}-1-w1")
    assert not cluster.history("pods", NS, f"{name}-2-w0")
    service = cluster.get("services", NS, f"{name}-workers")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"rekindle.dev/job": name, "rekindle.dev/attempt": "1"}
    claim = cluster.get("persistentvolumeclaims", NS, f"{name}-checkpoints")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    info = node(cluster).process(NS, f"{name}-1-w0")
    assert info is None  # ended
    # kubectl get tj: the Workers column says how many of the gang run (none, once it ended)
    assert {r["Name"]: r["Workers"] for r in cluster.get_table("tj", NS)}[name] == "0/2"
    assert event_reasons(cluster, job) == [("Normal", "AttemptStarted"), ("Normal", "EarlyStopped")]


def preempt(cluster: Cluster, pod: str) -> None:
    """The scheduler preempts the pod: ``DisruptionTarget``, then a graceful delete."""
    resource = cluster.resource("pods")

    def act(store: Store) -> None:
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": "default-scheduler: preempting to accommodate a higher priority pod",
        }
        store.patch(
            resource, NS, pod, patches.MERGE, {"status": {"conditions": [condition]}}, "status"
        )
        store.delete(resource, NS, pod, DeleteOptions(None, None))

    cluster.call(act)


#: name, what hits worker 1, the cause it is counted by, whether that is a disruption, the
#: message's words after the worker.
FAULTS = (
    ("killed", lambda c, pod: node(c).kill(NS, pod), "Crashed", False, "exit code 137 (SIGKILL)"),
    ("preempted", preempt, "Preempted", True, "PreemptionByScheduler"),
    ("lost", lambda c, pod: node(c).lose_node(NS, pod), "NodeLost", True, "DeletionByTaintManager"),
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "fault", "cause", "disruption", "words"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_one_worker_hit_restarts_the_gang_counted_by_the_first_cause(
    cluster: Cluster,
    name: str,
    fault: Callable[[Cluster, str], None],
    cause: str,
    disruption: bool,
    words: str,
) -> None:
    job = run_with(cluster, name, lambda pod: fault(cluster, pod))
    assert_restarted_once_by(job, cause, disruption=disruption)
    message = restart_message(cluster, job)
    assert f"because of {cause}: worker 1 (pod {name}-1-w1): {words}" in message
    assert_one_gang_at_a_time(cluster, name)
    # The Service answers for the new gang; the chief of the old one was stopped by the operator.
    service = cluster.get("services", NS, f"{name}-workers")
    assert service["spec"]["selector"]["rekindle.dev/attempt"] == "2"
    stopped = cluster.history("pods", NS, f"{name}-1-w0")[-1]
    assert stopped["metadata"]["annotations"]["rekindle.dev/stopped-by-operator"] == "AttemptEnded"


def test_a_named_read_write_once_claim_is_refused_for_a_gang(
    cluster: Cluster,
) -> None:
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "solo-disk", "namespace": NS},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    cluster.create(pair("refused", checkpoint={"volumeClaimName": "solo-disk"}))
    job = wait_status(cluster, NS, "refused", {"phase": "Failed"}, timeout=30)
    assert job["status"]["reason"] == "InvalidConfig"
    message = job["status"]["message"]
    assert "spec.checkpoint.volumeClaimName: claim solo-disk is ReadWriteOnce" in message
    assert "ReadWriteMany" in message
    assert cluster.list("pods", NS, "rekindle.dev/job=refused") == []


def test_a_gang_that_cannot_be_made_whole_is_not_started_at_all(cluster: Cluster) -> None:
    """A worker's pod name taken by someone else's pod: the job fails, no worker of it runs."""
    foreign = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "taken-1-w1", "namespace": NS},
        "spec": {"containers": [{"name": "main", "image": "x", "command": ["sleep", "60"]}]},
    }
    cluster.create(foreign)
    cluster.create(pair("taken"))
    job = wait_status(cluster, NS, "taken", {"phase": "Failed"}, timeout=30)
    assert job["status"]["reason"] == "InvalidConfig"
    assert "pod gang/taken-1-w1 already exists and is not owned by this" in job["status"]["message"]
    cluster.wait_gone("pods", NS, "taken-1-w0", timeout=30)
    assert cluster.history("pods", NS, "taken-1-w0"), "worker 0 was created first, then deleted"
