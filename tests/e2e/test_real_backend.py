"""The real-cluster backend's plumbing, run here against the emulated API server.

``tests/e2e/real.py`` only talks HTTP to an API server through the
``kubernetes`` client, and tests/kube's emulated server speaks that API, so
every call it makes (creating and patching jobs, strategic-merge patching
``pods/status`` for a preemption, the privileged helper pod that SIGKILLs a
trainer, the helper pod that reads the volume, a local operator in namespaced
mode) is exercised here with a cheap program instead of TensorFlow. What only
a real cluster can show (images, a real kubelet, hostPID) is left to the
``cluster`` scenarios.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rekindle_trainer.checkpoint import store
from tests.e2e import manifests, volume_report
from tests.e2e.real import RealCluster, Settings
from tests.kube.cluster import Cluster
from tests.kube.fixtures import CHART_CRDS


@pytest.fixture
def real_on_emulator(tmp_path: Path) -> Iterator[tuple[RealCluster, Cluster]]:
    cluster = Cluster(tmp_path / "cluster").start()
    real: RealCluster | None = None
    try:
        cluster.install_crds(CHART_CRDS)
        cluster.start_kubelet(tmp_path / "node")
        settings = Settings(kubeconfig=str(cluster.kubeconfig), image="img:e2e", operator="local")
        real = RealCluster(settings, tmp_path).start()
        yield real, cluster
    finally:
        if real is not None:
            real.stop()
            print(f"--- operator log ---\n{(tmp_path / 'operator.log').read_text()[-20000:]}")
        cluster.stop()


def _sleeper(name: str, image: str) -> dict[str, Any]:
    program = "import time; time.sleep(600)"
    return manifests.digits(name, image, entrypoint=None, command=["python3", "-c", program])


def _by_cause(real: RealCluster, name: str) -> dict[str, int]:
    restarts = (real.job(name).get("status") or {}).get("restarts") or {}
    return dict(restarts.get("byCause") or {})


@pytest.mark.slow
def test_real_backend_drives_the_api_faults_and_operator(
    real_on_emulator: tuple[RealCluster, Cluster],
) -> None:
    real, cluster = real_on_emulator
    assert real.namespace.startswith("rekindle-e2e-")
    assert cluster.find("namespaces", None, real.namespace) is not None

    name = "sleeper"
    real.apply(_sleeper(name, real.trainer_image))
    real.wait_pod_running(f"{name}-1", timeout=60)
    assert real.get_tj_row(name)["PHASE"] in {"Pending", "Running"}

    real.preempt(f"{name}-1")
    real.wait_pod_running(f"{name}-2", timeout=60)
    real.wait_job(name, lambda j: _by_cause(real, name) == {"Preempted": 1}, timeout=30, what="1")
    preempted = cluster.history("pods", real.namespace, f"{name}-1")
    reasons = {
        c.get("reason")
        for state in preempted
        for c in state.get("status", {}).get("conditions", [])
    }
    assert "PreemptionByScheduler" in reasons, "DisruptionTarget merged into the pod's conditions"

    real.crash(f"{name}-2")  # the privileged helper pod finds the process by its environment
    real.wait_pod_running(f"{name}-3", timeout=60)
    real.wait_job(
        name,
        lambda j: _by_cause(real, name) == {"Preempted": 1, "Crashed": 1},
        timeout=30,
        what="a crash counted",
    )
    phases = {p["metadata"]["name"]: p["status"]["phase"] for p in real.pods(name)}
    assert phases[f"{name}-2"] == "Failed"
    assert real.termination(f"{name}-2")["exitCode"] == 137, "SIGKILLed by the helper pod"
    # the watch saw the preempted pod's last state, though the pod is gone
    assert real.get("pods", f"{name}-1") is None
    assert real.termination(f"{name}-1")["exitCode"] == 143

    real.kill_operator()
    real.start_operator()
    real.patch_job(name, {"spec": {"suspend": True}})
    real.wait_suspended(name, timeout=60)
    description = real.describe(name)
    assert description.condition("Suspended") == ("True", "Suspended")
    assert [r for t, r in description.reasons() if r == "Restarting"] == ["Restarting"] * 2

    real.delete_job(name)
    real.wait_gone("trainingjobs", name, timeout=30)
    assert real.get("trainingjobs", name) is None


@pytest.mark.slow
def test_real_backend_reads_the_volume_through_a_helper_pod(
    real_on_emulator: tuple[RealCluster, Cluster],
) -> None:
    real, cluster = real_on_emulator
    real.apply(manifests.user_claim("data"))
    assert real.get("persistentvolumeclaims", "data") is not None
    assert cluster.kubelet is not None
    folder = cluster.kubelet.volume_path(real.namespace, "data") / "job"
    snapshot = store.Snapshot(
        groups={"model": [("w", np.arange(4, dtype="float32"))]},
        meta={"epoch": 2, "step": 20, "step_in_epoch": 0, "trigger": "sigterm"},
    )
    store.CheckpointStore(folder).write(snapshot)
    assert real.volume_report("data", "job") == volume_report.describe(folder)


@pytest.mark.slow
def test_real_backend_hits_one_worker_of_a_gang(
    real_on_emulator: tuple[RealCluster, Cluster],
) -> None:
    """The helper pod SIGKILLs worker 1 alone (by its TF_CONFIG index); a node loss via the API."""
    real, cluster = real_on_emulator
    name = "pair"
    real.apply(
        {
            **_sleeper(name, real.trainer_image),
            "spec": {**_sleeper(name, real.trainer_image)["spec"], "workers": 2},
        }
    )
    for worker in (0, 1):
        real.wait_pod_running(f"{name}-1-w{worker}", timeout=60)
    real.crash(f"{name}-1-w1")
    real.wait_job(name, lambda j: _by_cause(real, name) == {"Crashed": 1}, timeout=60, what="1")
    assert real.termination(f"{name}-1-w1")["exitCode"] == 137
    assert real.termination(f"{name}-1-w0")["exitCode"] != 137, "only worker 1 was killed"
    for worker in (0, 1):
        real.wait_pod_running(f"{name}-2-w{worker}", timeout=60)
    real.lose_node(f"{name}-2-w1")
    real.wait_job(
        name,
        lambda j: _by_cause(real, name) == {"Crashed": 1, "NodeLost": 1},
        timeout=60,
        what="a node loss counted",
    )
    lost = cluster.history("pods", real.namespace, f"{name}-2-w1")
    reasons = {c.get("reason") for s in lost for c in s.get("status", {}).get("conditions", [])}
    assert "DeletionByTaintManager" in reasons
    real.delete_job(name)
