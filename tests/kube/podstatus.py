"""Pod status documents as a kubelet writes them, built from what happened to the process.

Pure functions: the kubelet decides *what* happened (started, exited with a
code, killed for memory, image not pullable…); these build the ``status``
a real kubelet would report for it: ``phase``, the four standard conditions,
and ``containerStatuses`` with ``state.waiting/running/terminated``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

#: The conditions a kubelet owns; others (DisruptionTarget…) belong to other controllers.
KUBELET_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


def rfc3339(moment: datetime.datetime) -> str:
    """Kubernetes' timestamp format (UTC, seconds)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(ready: bool, initialized: bool, now: datetime.datetime) -> list[dict[str, Any]]:
    """The kubelet's four conditions."""
    stamp = rfc3339(now)
    flag = {True: "True", False: "False"}
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        {"type": "Initialized", "status": flag[initialized], "lastTransitionTime": stamp},
        {"type": "ContainersReady", "status": flag[ready], "lastTransitionTime": stamp},
        {"type": "Ready", "status": flag[ready], "lastTransitionTime": stamp},
    ]


def _container(
    name: str,
    image: str,
    state: dict[str, Any],
    *,
    ready: bool,
    restarts: int,
    last_state: Mapping[str, Any] | None = None,
    container_id: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": name,
        "image": image,
        "imageID": f"process://{image}",
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
        "lastState": dict(last_state or {}),
    }
    if container_id:
        status["containerID"] = container_id
    return status


def waiting(
    pod: Mapping[str, Any], reason: str, message: str, now: datetime.datetime
) -> dict[str, Any]:
    """A pod whose container cannot start (ImagePullBackOff, CreateContainerConfigError…)."""
    container = (pod.get("spec", {}).get("containers") or [{}])[0]
    return {
        "phase": "Pending",
        "conditions": conditions(ready=False, initialized=True, now=now),
        "hostIP": "127.0.0.1",
        "startTime": rfc3339(now),
        "containerStatuses": [
            _container(
                container.get("name", "main"),
                container.get("image", ""),
                {"waiting": {"reason": reason, "message": message}},
                ready=False,
                restarts=0,
            )
        ],
    }


def running(
    pod: Mapping[str, Any],
    pid: int,
    started: datetime.datetime,
    restarts: int = 0,
    last_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod whose container process runs."""
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Running",
        "conditions": conditions(ready=True, initialized=True, now=started),
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": pod.get("status", {}).get("startTime") or rfc3339(started),
        "containerStatuses": [
            _container(
                container.get("name", "main"),
                container.get("image", ""),
                {"running": {"startedAt": rfc3339(started)}},
                ready=True,
                restarts=restarts,
                last_state=last_state,
                container_id=f"process://{pid}",
            )
        ],
    }


def terminated_state(
    exit_code: int,
    reason: str,
    message: str,
    started: datetime.datetime,
    finished: datetime.datetime,
    pid: int | None = None,
) -> dict[str, Any]:
    """``state.terminated`` of a container that ended."""
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": rfc3339(started),
        "finishedAt": rfc3339(finished),
    }
    if message:
        state["message"] = message
    if pid is not None:
        state["containerID"] = f"process://{pid}"
    return {"terminated": state}


def terminated(
    pod: Mapping[str, Any],
    state: dict[str, Any],
    *,
    phase: str,
    restarts: int = 0,
    now: datetime.datetime,
) -> dict[str, Any]:
    """A pod whose (only) container ended and will not restart: phase Succeeded or Failed."""
    container = pod["spec"]["containers"][0]
    pid = state["terminated"].get("containerID")
    return {
        "phase": phase,
        "conditions": conditions(ready=False, initialized=True, now=now),
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": pod.get("status", {}).get("startTime") or rfc3339(now),
        "containerStatuses": [
            _container(
                container.get("name", "main"),
                container.get("image", ""),
                state,
                ready=False,
                restarts=restarts,
                container_id=pid,
            )
        ],
    }


def end_reason(exit_code: int, oom_killed: bool) -> str:
    """``terminated.reason`` as container runtimes report it."""
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


def end_phase(restart_policy: str, exit_code: int) -> str | None:
    """The pod phase after its container exits, or None when the kubelet restarts it."""
    if restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0):
        return None
    return "Succeeded" if exit_code == 0 else "Failed"


def node_lost(pod: Mapping[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """What the node controller writes on a pod whose node stopped reporting.

    ``MarkPodsNotReady``: ``Ready`` (and ``ContainersReady``) False; the phase
    and the container states stay as the kubelet last wrote them (Kubernetes
    sets no ``Unknown`` phase and no pod reason here).
    """
    status = dict(pod.get("status") or {})
    stamp = rfc3339(now)
    status["conditions"] = [
        {**c, "status": "False", "lastTransitionTime": stamp}
        if c.get("type") in ("Ready", "ContainersReady")
        else c
        for c in status.get("conditions") or []
    ]
    return status


def node_down(node: Mapping[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """The Node as the node lifecycle controller leaves it once its kubelet stops posting.

    ``Ready=Unknown`` and the ``unreachable`` taints (NoSchedule, and NoExecute
    that the taint manager acts on after each pod's toleration, 300 s by default).
    """
    stamp = rfc3339(now)
    conditions = [
        c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") != "Ready"
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastTransitionTime": stamp,
        }
    )
    taints = [
        {"key": "node.kubernetes.io/unreachable", "effect": effect, "timeAdded": stamp}
        for effect in ("NoSchedule", "NoExecute")
    ]
    return {"spec": {"taints": taints}, "status": {"conditions": conditions}}
