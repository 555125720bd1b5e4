"""The process kubelet: pods run as processes, report as a kubelet would, and take faults."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

import pytest

from tests.kube.cluster import Cluster
from tests.kube.kubelet import ProcessKubelet

NS = "default"


def python_pod(
    name: str,
    script: str,
    *,
    env: list[dict[str, Any]] | None = None,
    claim: str | None = None,
    restart: str = "Never",
    grace: int = 30,
    image: str = "python:emulated",
    **container: Any,
) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": "/scratch"}]
    if claim:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "data", "mountPath": "/data"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": grace,
            "volumes": volumes,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": [sys.executable, "-c", script],
                    "env": [{"name": "MSG", "value": "/dev/termination-log"}, *(env or [])],
                    "volumeMounts": mounts,
                    **container,
                }
            ],
        },
    }


def claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def phase_is(*phases: str) -> Any:
    return lambda pod: pod.get("status", {}).get("phase") in phases


def container_state(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]
    return state


def phases(kube_api: Cluster, name: str) -> list[str]:
    seen: list[str] = []
    for state in kube_api.history("pods", NS, name):
        phase = state.get("status", {}).get("phase")
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
    return seen


#: Traps SIGTERM like the trainer: writes its message, exits 143.
TRAPS_SIGTERM = """
import os, signal, sys, time
def stop(*_):
    open(os.environ["MSG"], "w").write("saved on SIGTERM")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
open("/scratch/started".replace("/scratch", os.environ["SCRATCH"]), "w").write("yes")
while True:
    time.sleep(0.05)
"""
SCRATCH_ENV = [{"name": "SCRATCH", "value": "/scratch"}]


def test_pod_runs_to_success_with_env_volume_and_message(
    kube_api: Cluster, kubelet: ProcessKubelet
) -> None:
    kube_api.create(claim("data"))
    script = (
        "import os; "
        "who = os.environ['POD'] + '@' + os.environ['NS']; "
        "open(os.environ['OUT'] + '/result', 'w').write(who); "
        "open(os.environ['MSG'], 'w').write('{\"outcome\": \"completed\"}')"
    )
    env: list[dict[str, Any]] = [
        {"name": "OUT", "value": "/data/job"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    (kubelet.volume_path(NS, "data") / "job").mkdir(parents=True)
    kube_api.create(python_pod("ok", script, env=env, claim="data"))
    pod = kube_api.wait_for("pods", NS, "ok", phase_is("Succeeded", "Failed"))
    terminated = container_state(pod)["terminated"]
    assert pod["status"]["phase"] == "Succeeded"
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert terminated["message"] == '{"outcome": "completed"}'
    assert pod["spec"]["nodeName"] == kubelet.node_name
    assert (kubelet.volume_path(NS, "data") / "job" / "result").read_text() == "ok@default"
    assert phases(kube_api, "ok") == ["Pending", "Running", "Succeeded"]
    assert kubelet.errors == []


def test_failure_reports_exit_code_and_message(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    script = "import os, sys; open(os.environ['MSG'], 'w').write('boom'); sys.exit(3)"
    kube_api.create(python_pod("bad", script))
    pod = kube_api.wait_for("pods", NS, "bad", phase_is("Succeeded", "Failed"))
    terminated = container_state(pod)["terminated"]
    assert pod["status"]["phase"] == "Failed"
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
        3,
        "Error",
        "boom",
    )


def test_fallback_to_logs_on_error(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    script = "import sys; print('last words', flush=True); sys.exit(1)"
    pod = python_pod("logs", script, terminationMessagePolicy="FallbackToLogsOnError")
    kube_api.create(pod)
    done = kube_api.wait_for("pods", NS, "logs", phase_is("Failed"))
    assert container_state(done)["terminated"]["message"].strip() == "last words"


def test_deletion_sends_sigterm_and_removes_the_pod(
    kube_api: Cluster, kubelet: ProcessKubelet
) -> None:
    kube_api.create(python_pod("term", TRAPS_SIGTERM, env=SCRATCH_ENV))
    info = kubelet.wait_running(NS, "term")
    kube_api.wait_for("pods", NS, "term", phase_is("Running"))
    deadline = time.monotonic() + 10
    while not (info.cwd.parent / "volumes" / "scratch" / "started").exists():
        assert time.monotonic() < deadline, "the process never started its loop"
        time.sleep(0.05)
    started = time.monotonic()
    kube_api.delete("pods", NS, "term")
    kube_api.wait_gone("pods", NS, "term")
    assert time.monotonic() - started < 10, "it exited on SIGTERM, not after the 30s grace"
    last = kube_api.history("pods", NS, "term")[-1]
    terminated = container_state(last)["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (143, "saved on SIGTERM")
    assert last["status"]["phase"] == "Failed"


def test_sigkill_after_the_grace_period(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    kube_api.create(python_pod("stubborn", script, grace=1))
    kubelet.wait_running(NS, "stubborn")
    time.sleep(0.3)  # let the interpreter install its handler
    started = time.monotonic()
    kube_api.delete("pods", NS, "stubborn")
    kube_api.wait_gone("pods", NS, "stubborn")
    assert 0.9 < time.monotonic() - started < 10
    last = kube_api.history("pods", NS, "stubborn")[-1]
    assert container_state(last)["terminated"]["exitCode"] == 137


def test_sigkill_fault(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    kube_api.create(python_pod("victim", "import time; time.sleep(60)"))
    kubelet.wait_running(NS, "victim")
    kubelet.kill(NS, "victim")
    pod = kube_api.wait_for("pods", NS, "victim", phase_is("Failed"))
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "Error")


def test_oom_fault(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    kube_api.create(python_pod("hungry", "import time; time.sleep(60)"))
    kubelet.wait_running(NS, "hungry")
    kubelet.oom_kill(NS, "hungry")
    pod = kube_api.wait_for("pods", NS, "hungry", phase_is("Failed"))
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled")


def test_eviction_fault(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    kube_api.create(python_pod("evicted", TRAPS_SIGTERM, env=SCRATCH_ENV))
    kubelet.wait_running(NS, "evicted")
    kube_api.wait_for("pods", NS, "evicted", phase_is("Running"))
    time.sleep(0.3)
    kubelet.evict(NS, "evicted")
    kube_api.wait_gone("pods", NS, "evicted")
    history = kube_api.history("pods", NS, "evicted")
    marked = [
        s
        for s in history
        if any(c["type"] == "DisruptionTarget" for c in s["status"].get("conditions", []))
    ]
    assert marked, "the pod carried DisruptionTarget before it went"
    assert not marked[0]["metadata"].get("deletionTimestamp"), "marked first, then deleted"
    condition = next(
        c for c in marked[-1]["status"]["conditions"] if c["type"] == "DisruptionTarget"
    )
    assert condition["reason"] == "EvictionByEvictionAPI"
    assert container_state(history[-1])["terminated"]["exitCode"] == 143


def test_node_loss_fault(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    """As Kubernetes: not ready, then the taint manager's graceful delete; it stays Terminating."""
    kube_api.create(python_pod("stranded", "import time; time.sleep(60)", grace=1))
    info = kubelet.wait_running(NS, "stranded")
    kube_api.wait_for("pods", NS, "stranded", phase_is("Running"))
    kubelet.lose_node(NS, "stranded")
    evicted = kube_api.wait_for(
        "pods", NS, "stranded", lambda p: bool(p["metadata"].get("deletionTimestamp"))
    )
    assert evicted["status"]["phase"] == "Running"  # no Unknown phase, no pod reason
    assert "reason" not in evicted["status"]
    conditions = {c["type"]: c for c in evicted["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
    with pytest.raises(ProcessLookupError):
        os.kill(info.pid, 0)
    time.sleep(1.5)  # past its grace period: nobody ends it
    assert kube_api.find("pods", NS, "stranded") is not None
    assert "terminated" not in container_state(kube_api.get("pods", NS, "stranded"))


def _attach_events(kube_api: Cluster, pod: dict[str, Any]) -> list[str]:
    return [
        e["reason"]
        for e in kube_api.events_for(pod)
        if e["reason"] in ("FailedAttachVolume", "SuccessfulAttachVolume")
    ]


def test_a_dead_nodes_volume_blocks_the_next_pod_until_the_out_of_service_taint(
    kube_api: Cluster, kubelet: ProcessKubelet
) -> None:
    kube_api.create(claim("ckpt"))
    kube_api.create(python_pod("first", "import time; time.sleep(60)", claim="ckpt"))
    kubelet.wait_running(NS, "first")
    lost = kubelet.fail_node()
    node = kube_api.get("nodes", None, lost)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"
    assert {t["key"] for t in node["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    kube_api.create(python_pod("second", "import time; time.sleep(60)", claim="ckpt"))
    second = kube_api.wait_for(
        "pods", NS, "second", lambda p: "FailedAttachVolume" in _attach_events(kube_api, p)
    )
    assert second["spec"]["nodeName"] == f"{lost}-2"
    assert second["status"]["phase"] == "Pending"
    failed = next(e for e in kube_api.events_for(second) if e["reason"] == "FailedAttachVolume")
    assert failed["message"].startswith('Multi-Attach error for volume "')
    # The taint manager's graceful delete: Terminating, and it stays so.
    kube_api.wait_for("pods", NS, "first", lambda p: bool(p["metadata"].get("deletionTimestamp")))
    time.sleep(0.5)
    assert kubelet.process(NS, "second") is None
    taint = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown"}
    taints = [*node["spec"]["taints"], {**taint, "effect": "NoExecute"}]
    kube_api.patch("nodes", None, lost, {"spec": {"taints": taints}})
    kubelet.wait_running(NS, "second")
    kube_api.wait_gone("pods", NS, "first")  # the pod GC deleted the dead node's pod
    assert _attach_events(kube_api, kube_api.get("pods", NS, "second")) == [
        "FailedAttachVolume",
        "SuccessfulAttachVolume",
    ]


def test_unpullable_image_stays_pending(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    kubelet.unpullable.add("registry.invalid/nope:1")
    kube_api.create(python_pod("nopull", "pass", image="registry.invalid/nope:1"))
    pod = kube_api.wait_for(
        "pods",
        NS,
        "nopull",
        lambda p: "waiting" in (p["status"].get("containerStatuses") or [{}])[0].get("state", {}),
    )
    assert pod["status"]["phase"] == "Pending"
    assert container_state(pod)["waiting"]["reason"] == "ImagePullBackOff"
    kube_api.delete("pods", NS, "nopull")
    kube_api.wait_gone("pods", NS, "nopull")


def test_bad_container_config(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}}]
    kube_api.create(python_pod("misconfigured", "pass", env=env))
    pod = kube_api.wait_for(
        "pods", NS, "misconfigured", lambda p: bool(p["status"].get("containerStatuses"))
    )
    waiting = container_state(pod)["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert 'secret "missing" not found' in waiting["message"]
    assert pod["status"]["phase"] == "Pending"


def test_missing_executable_is_a_start_error(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    pod = python_pod("noexec", "pass")
    pod["spec"]["containers"][0]["command"] = ["no-such-binary-here"]
    kube_api.create(pod)
    done = kube_api.wait_for("pods", NS, "noexec", phase_is("Failed"))
    terminated = container_state(done)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (128, "StartError")


def test_on_failure_restarts_in_place(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    script = (
        "import os, sys\n"
        "flag = os.path.join(os.environ['SCRATCH'], 'tried')\n"
        "if os.path.exists(flag): sys.exit(0)\n"
        "open(flag, 'w').close(); sys.exit(1)\n"
    )
    kube_api.create(python_pod("flaky", script, env=SCRATCH_ENV, restart="OnFailure"))
    done = kube_api.wait_for("pods", NS, "flaky", phase_is("Succeeded"))
    status = done["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert phases(kube_api, "flaky") == ["Pending", "Running", "Succeeded"]


def test_pod_waits_for_its_claim(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    kube_api.create(python_pod("patient", "pass", claim="later"))
    pending = kube_api.wait_for(
        "pods", NS, "patient", lambda p: bool(p["status"].get("conditions"))
    )
    scheduled = next(c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["reason"] == "Unschedulable"
    kube_api.create(claim("later"))
    kube_api.wait_for("pods", NS, "patient", phase_is("Succeeded"))


SERVE = """
import http.server, os
address = ("127.0.0.1", int(os.environ["PORT"]))
http.server.HTTPServer(address, http.server.BaseHTTPRequestHandler).serve_forever()
"""


def test_pods_get_their_own_host_ports(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    ports = [{"name": "metrics", "containerPort": 9102}]
    env = [{"name": "PORT", "value": "9102"}]
    for name in ("one", "two"):
        kube_api.create(python_pod(name, SERVE, env=env, ports=ports))
    infos = [kubelet.wait_running(NS, name) for name in ("one", "two")]
    host_ports = {info.ports[9102] for info in infos}
    assert len(host_ports) == 2
    for port in host_ports:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"nothing listens on host port {port}"
                time.sleep(0.05)
    assert all(kube_api.get("pods", NS, n)["status"]["phase"] == "Running" for n in ("one", "two"))


def test_node_selector_must_match_the_node(kube_api: Cluster, kubelet: ProcessKubelet) -> None:
    for name, selector in (("fits", {"kubernetes.io/os": "linux"}), ("nowhere", {"gpu": "h100"})):
        pod = python_pod(name, "pass")
        pod["spec"]["nodeSelector"] = selector
        kube_api.create(pod)
    kube_api.wait_for("pods", NS, "fits", phase_is("Succeeded"))
    stuck = kube_api.wait_for("pods", NS, "nowhere", lambda p: bool(p["status"].get("conditions")))
    assert stuck["status"]["phase"] == "Pending"
    assert stuck["status"]["conditions"][0]["reason"] == "Unschedulable"
    assert not stuck["spec"].get("nodeName")
