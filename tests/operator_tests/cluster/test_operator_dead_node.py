"""A node dies under a running job: the real operator on the emulated cluster (issue #16.5).

The emulated cluster loses the node as Kubernetes does: the Node turns
``Ready=Unknown`` with the ``unreachable`` taints, the pod only turns not
ready (the taint manager would delete it after its toleration, here one
minute, and it would then stay ``Terminating``), and the job's ReadWriteOnce
checkpoint claim stays attached to the dead node. The operator must replace
the pod at once under its new name, show why the replacement waits
(``VolumeAttachBlocked``, naming the dead node and the admin's command),
never count that wait as a pending timeout, and carry on once the
administrator applies the ``out-of-service`` taint.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kube.cluster import Cluster
from tests.kube.kubelet import ProcessKubelet
from tests.operator_tests.cluster import test_operator
from tests.operator_tests.cluster.test_operator import (
    condition,
    emulated_cluster,
    training_job,
    wait_status,
)

NS = "dead"
FAKE = Path(__file__).parents[1] / "local_fake_trainer.py"
#: The taint manager's toleration here: far longer than the operator may take to react.
TOLERATION = 60.0
RUN_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("cluster")
    with emulated_cluster(folder, NS) as cluster:
        cluster.start_kubelet(folder / "node", node_lost_after=TOLERATION)
        yield cluster


#: The real operator process (watching every namespace: it may read Nodes).
operator = test_operator.operator
pytestmark = pytest.mark.usefixtures("operator")


def kubelet(cluster: Cluster) -> ProcessKubelet:
    assert cluster.kubelet is not None
    return cluster.kubelet


def job(name: str) -> dict[str, Any]:
    """One worker of the stand-in trainer with a ReadWriteOnce claim; a 1 s pending timeout."""
    manifest = training_job(
        name,
        NS,
        image="local/fake:1",
        command=[sys.executable, str(FAKE)],
        training={
            "epochs": 20,
            "stepsPerEpoch": 5,
            "hyperparameters": {"bestEpoch": 6, "stepSeconds": 0.1},
        },
        earlyStopping={"monitor": "val_loss", "patience": 2},
        terminationGracePeriodSeconds=10,
        restartPolicy={"pendingTimeoutSeconds": 1},
    )
    del manifest["spec"]["entrypoint"]
    return manifest


@pytest.mark.slow
def test_a_dead_nodes_pod_is_replaced_at_once_and_its_volume_wait_is_shown_not_failed(
    cluster: Cluster,
) -> None:
    cluster.create(job("stranded"))
    kubelet(cluster).wait_running(NS, "stranded-1", timeout=RUN_TIMEOUT)
    cluster.wait_for("trainingjobs", NS, "stranded", lambda j: j["status"]["phase"] == "Running")
    died = time.monotonic()
    lost = kubelet(cluster).fail_node()

    # Replaced at once (not after the taint manager's toleration), under a new name.
    replaced = wait_status(cluster, NS, "stranded", {"attempt": 2}, timeout=TOLERATION / 2)
    assert time.monotonic() - died < TOLERATION / 2
    assert replaced["status"]["restarts"]["byCause"] == {"NodeLost": 1}
    assert replaced["status"]["lastAttemptEnd"]["message"].startswith(f"node {lost} ")
    assert cluster.find("pods", NS, "stranded-2") is not None
    assert cluster.find("pods", NS, "stranded-1") is not None  # Terminating, on the dead node

    # The replacement waits for the claim the dead node holds: shown, never a pending timeout.
    blocked = cluster.wait_for(
        "trainingjobs",
        NS,
        "stranded",
        lambda j: (condition(j, "VolumeAttachBlocked") or {}).get("status") == "True",
        timeout=RUN_TIMEOUT,
    )
    shown = condition(blocked, "VolumeAttachBlocked")
    assert shown is not None
    assert shown["reason"] == "MultiAttachError"
    assert f"still attached to node {lost}" in shown["message"]
    assert f"kubectl taint nodes {lost} node.kubernetes.io/out-of-service" in shown["message"]
    time.sleep(2.5)  # more than pendingTimeoutSeconds (1)
    waiting = cluster.get("trainingjobs", NS, "stranded")["status"]
    assert (waiting["phase"], waiting["attempt"], waiting["restarts"]["total"]) == ("Pending", 2, 1)

    # The administrator's action: the out-of-service taint. The job carries on and finishes.
    node = cluster.get("nodes", None, lost)
    taint = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown"}
    taints = [*node["spec"]["taints"], {**taint, "effect": "NoExecute"}]
    cluster.patch("nodes", None, lost, {"spec": {"taints": taints}})
    done = wait_status(cluster, NS, "stranded", {"phase": "Succeeded"}, timeout=RUN_TIMEOUT)
    assert done["status"]["restarts"]["total"] == 1
    cleared = condition(done, "VolumeAttachBlocked")
    assert cleared is not None
    assert cleared["status"] == "False"
    cluster.wait_gone("pods", NS, "stranded-1")  # the pod GC removed the dead node's pod
