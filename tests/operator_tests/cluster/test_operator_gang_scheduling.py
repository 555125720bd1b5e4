"""The real operator with ``spec.gangScheduling: volcano``, within the chart's RBAC (emulated).

The emulated cluster serves Volcano's PodGroup once its CRD is created (as
installing Volcano does); the operator runs as the chart's service account
with ``gangScheduling.volcano=true``, so a PodGroup call the chart does not
grant fails the test. Pods' states are written by the test, as a kubelet would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest

from tests.kube import chart_rbac
from tests.kube.cluster import Cluster
from tests.operator_tests.cluster import test_operator as base
from tests.support.operator_process import OperatorProcess, running_operator

NS = "gangs"
PODGROUPS = kmock.resource("scheduling.volcano.sh", "v1beta1", "podgroups")
GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
#: Volcano's PodGroup CRD, reduced to what the API server needs to serve it.
VOLCANO_PODGROUP_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "podgroups.scheduling.volcano.sh"},
    "spec": {
        "group": "scheduling.volcano.sh",
        "scope": "Namespaced",
        "names": {"kind": "PodGroup", "plural": "podgroups", "singular": "podgroup"},
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with base.emulated_cluster(tmp_path_factory.mktemp("cluster"), NS) as cluster:
        cluster.create(VOLCANO_PODGROUP_CRD)
        yield cluster


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    identity = chart_rbac.install(cluster, {"gangScheduling": {"volcano": True}})
    log: Path = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster.kubeconfig_for(identity), log) as process:
        yield process


@pytest.mark.slow
def test_each_attempt_gets_its_pod_group_before_its_pods_and_drops_the_last(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    policy = {"maxRestarts": 1, "backoff": {"initialSeconds": 1, "maxSeconds": 1}}
    gang = {"scheduler": "volcano", "queue": "research"}
    cluster.create(base.training_job("vc", NS, restartPolicy=policy, gangScheduling=gang))
    pod = cluster.wait_for("pods", NS, "vc-1", lambda _: True, what="the first pod")
    assert pod["spec"]["schedulerName"] == "volcano"
    assert pod["metadata"]["annotations"][GROUP_ANNOTATION] == "vc-1"
    group = cluster.get(PODGROUPS, NS, "vc-1")
    assert group["spec"] == {"minMember": 1, "queue": "research"}
    job = cluster.get("trainingjobs", NS, "vc")
    (owner,) = group["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("TrainingJob", job["metadata"]["uid"])
    base.end_pod(cluster, NS, "vc-1", base.terminated(1))
    second = cluster.wait_for("pods", NS, "vc-2", lambda _: True, what="the replacement")
    assert second["metadata"]["annotations"][GROUP_ANNOTATION] == "vc-2"
    assert cluster.get(PODGROUPS, NS, "vc-2")["spec"]["minMember"] == 1
    assert cluster.find(PODGROUPS, NS, "vc-1") is None, "the last attempt's group is deleted"
    assert cluster.emulator.denied == [], "a call the chart does not grant"
