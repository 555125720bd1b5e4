"""Kueue's plain-Pod integration, emulated: queued pods wait gated, admission and preemption."""

from __future__ import annotations

import time
from typing import Any

from tests.kube import kueue
from tests.kube.cluster import Cluster
from tests.kube.kubelet import ProcessKubelet
from tests.kube.test_kubelet import NS, container_state, phase_is, python_pod

SLEEPER = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
SLEEPER += "time.sleep(60)\n"


def queued(name: str) -> dict[str, Any]:
    pod = python_pod(name, SLEEPER)
    pod["metadata"]["labels"] = {kueue.QUEUE_LABEL: "team-a"}
    return pod


def test_a_queued_pod_waits_gated_until_admitted_then_runs(
    kube_api: Cluster, kubelet: ProcessKubelet
) -> None:
    with kueue.installed(kube_api):
        kube_api.create(queued("waits"), NS)
        kube_api.create(python_pod("free", SLEEPER), NS)
    kubelet.wait_running(NS, "free")
    pod = kube_api.wait_for(
        "pods", NS, "waits", lambda p: bool(p.get("status", {}).get("conditions"))
    )
    assert kueue.is_gated(pod)
    assert pod["metadata"]["labels"][kueue.MANAGED_LABEL] == "true"
    assert pod["status"]["conditions"][0]["reason"] == "SchedulingGated"
    time.sleep(0.5)
    pod = kube_api.get("pods", NS, "waits")
    assert not pod["spec"].get("nodeName")
    assert pod["status"]["phase"] == "Pending"
    kueue.admit(kube_api, NS, "waits")
    kubelet.wait_running(NS, "waits")
    assert not kueue.is_gated(kube_api.get("pods", NS, "waits"))


def test_a_preempted_pod_is_marked_and_stopped_gracefully(
    kube_api: Cluster, kubelet: ProcessKubelet
) -> None:
    kube_api.create(python_pod("victim", SLEEPER), NS)
    kubelet.wait_running(NS, "victim")
    kueue.preempt(kube_api, NS, "victim")
    kube_api.wait_gone("pods", NS, "victim")
    last = kube_api.history("pods", NS, "victim")[-1]
    assert phase_is("Failed")(last)
    assert container_state(last)["terminated"]["exitCode"] == 143
    marks = [c for c in last["status"]["conditions"] if c["type"] == "TerminationTarget"]
    assert [(c["status"], c["reason"]) for c in marks] == [("True", kueue.PREEMPTED_REASON)]
