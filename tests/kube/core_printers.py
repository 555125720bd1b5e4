"""The API server's own Table printers for the built-in kinds a Rekindle user looks at.

Written from Kubernetes' ``pkg/printers/internalversion`` (v1.32): the columns
and cells of pods (READY, STATUS as the printer derives it from container
states, RESTARTS with the age of the last restart), claims, volumes,
namespaces and events (core ``v1`` and ``events.k8s.io/v1`` print alike, as
both are one kind inside the server). Pure functions; :data:`PRINTERS` maps
``(group, plural)`` to a :class:`~tests.kube.tables.Printer`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from tests.kube import event_versions, printer
from tests.kube.tables import NAME_COLUMN, ColumnDef, Printer

Obj = Mapping[str, Any]
AGE = ColumnDef("Age", description="CreationTimestamp is a timestamp of the object's creation.")
ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def since(timestamp: Any, now: datetime.datetime) -> str:
    """``translateTimestampSince``: the age, or ``<unknown>`` for a zero (absent) time."""
    if not timestamp:
        return "<unknown>"
    return printer.age(str(timestamp), now)


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


# --- pods ------------------------------------------------------------------------------------


def pod_reason(pod: Obj) -> tuple[str, int]:
    """The STATUS column and the number of ready containers (``printPod``)."""
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "")
    reason = status.get("reason") or phase
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    ready, running = 0, False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated is not None:
            signal = terminated.get("signal")
            reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
        elif container.get("ready") and state.get("running") is not None:
            running = True
            ready += 1
    if reason == "Completed" and running:
        ready_condition = any(c.get("type") == "Ready" for c in status.get("conditions") or [])
        reason = "Running" if ready_condition else "NotReady"
    deleting = _meta(pod).get("deletionTimestamp")
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return str(reason), ready


def pod_restarts(pod: Obj, now: datetime.datetime) -> str:
    """RESTARTS: the sum of restart counts, with the age of the last restart when any."""
    restarts, last = 0, ""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        restarts += int(container.get("restartCount") or 0)
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and (not last or printer.parse_time(finished) > printer.parse_time(last)):
            last = finished
    if restarts and last:
        return f"{restarts} ({since(last, now)} ago)"
    return str(restarts)


def _pod_cells(pod: Obj, now: datetime.datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    reason, ready = pod_reason(pod)
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return [
        _meta(pod).get("name"),
        f"{ready}/{len(spec.get('containers') or [])}",
        reason,
        pod_restarts(pod, now),
        since(_meta(pod).get("creationTimestamp"), now),
        (ips[0].get("ip") if ips else status.get("podIP")) or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]


def _pod_conditions(pod: Obj) -> list[dict[str, Any]]:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded", "message": ""}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": ""}]
    return []


POD = Printer(
    (
        NAME_COLUMN,
        ColumnDef("Ready", description="The aggregate readiness state of this pod."),
        ColumnDef("Status", description="The aggregate status of the containers in this pod."),
        ColumnDef("Restarts", description="Restarts of the pod's containers, and the last one."),
        AGE,
        ColumnDef("IP", priority=1, description="The pod's IP address."),
        ColumnDef("Node", priority=1, description="The node the pod is bound to."),
        ColumnDef("Nominated Node", priority=1, description="The node nominated by preemption."),
        ColumnDef("Readiness Gates", priority=1, description="Readiness gates passed."),
    ),
    _pod_cells,
    _pod_conditions,
)

# --- claims, volumes, namespaces ---------------------------------------------------------------


def access_modes(modes: Any) -> str:
    """``RWO,RWX``… as kubectl abbreviates access modes."""
    return ",".join(ACCESS_MODES.get(m, m) for m in modes or [])


def _claim_cells(claim: Obj, now: datetime.datetime) -> list[Any]:
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    phase = "Terminating" if _meta(claim).get("deletionTimestamp") else status.get("phase")
    bound = bool(spec.get("volumeName"))
    return [
        _meta(claim).get("name"),
        phase,
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", "") if bound else "",
        access_modes(status.get("accessModes")) if bound else "",
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or "<unset>",
        since(_meta(claim).get("creationTimestamp"), now),
        spec.get("volumeMode") or "<unset>",
    ]


CLAIM = Printer(
    (
        NAME_COLUMN,
        ColumnDef("Status"),
        ColumnDef("Volume"),
        ColumnDef("Capacity"),
        ColumnDef("Access Modes"),
        ColumnDef("StorageClass"),
        ColumnDef("VolumeAttributesClass"),
        AGE,
        ColumnDef("VolumeMode", priority=1),
    ),
    _claim_cells,
)


def _volume_cells(volume: Obj, now: datetime.datetime) -> list[Any]:
    spec, status = volume.get("spec") or {}, volume.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""
    phase = "Terminating" if _meta(volume).get("deletionTimestamp") else status.get("phase", "")
    return [
        _meta(volume).get("name"),
        (spec.get("capacity") or {}).get("storage", ""),
        access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        phase,
        claim,
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason", ""),
        since(_meta(volume).get("creationTimestamp"), now),
        spec.get("volumeMode") or "<unset>",
    ]


VOLUME = Printer(
    (
        NAME_COLUMN,
        ColumnDef("Capacity"),
        ColumnDef("Access Modes"),
        ColumnDef("Reclaim Policy"),
        ColumnDef("Status"),
        ColumnDef("Claim"),
        ColumnDef("StorageClass"),
        ColumnDef("VolumeAttributesClass"),
        ColumnDef("Reason"),
        AGE,
        ColumnDef("VolumeMode", priority=1),
    ),
    _volume_cells,
)

NAMESPACE = Printer(
    (NAME_COLUMN, ColumnDef("Status"), AGE),
    lambda ns, now: [
        _meta(ns).get("name"),
        (ns.get("status") or {}).get("phase", ""),
        since(_meta(ns).get("creationTimestamp"), now),
    ],
)

# --- events --------------------------------------------------------------------------------------


def _event_source(event: Obj) -> str:
    source = event.get("source") or {}
    if source.get("component"):
        host = source.get("host")
        return f"{source['component']}, {host}" if host else str(source["component"])
    controller, instance = event.get("reportingComponent", ""), event.get("reportingInstance", "")
    return f"{controller}, {instance}" if instance else str(controller)


def _event_cells(event: Obj, now: datetime.datetime) -> list[Any]:
    """A core ``v1`` Event's row (``printEvent``)."""
    first = since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    series = event.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or count
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        _event_source(event),
        str(event.get("message", "")).strip(),
        first,
        int(count),
        _meta(event).get("name"),
    ]


EVENT = Printer(
    (
        ColumnDef("Last Seen", description="The time at which the most recent occurrence."),
        ColumnDef("Type", description="Type of this event (Normal, Warning)."),
        ColumnDef("Reason", description="Why the action was taken."),
        ColumnDef("Object", description="The object this Event is about."),
        ColumnDef("Subobject", priority=1, description="The field of the object."),
        ColumnDef("Source", priority=1, description="The component reporting this event."),
        ColumnDef("Message", description="A human-readable description."),
        ColumnDef("First Seen", priority=1, description="The time of the first occurrence."),
        ColumnDef("Count", priority=1, description="The number of times it occurred."),
        ColumnDef("Name", format="name", priority=1, description="The event's name."),
    ),
    _event_cells,
)

#: ``events.k8s.io/v1`` Events print as the core Events they are.
EVENT_V1 = Printer(
    EVENT.columns, lambda event, now: _event_cells(event_versions.to_core(event), now)
)

#: The built-in printers by ``(group, plural)``.
PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): POD,
    ("", "persistentvolumeclaims"): CLAIM,
    ("", "persistentvolumes"): VOLUME,
    ("", "namespaces"): NAMESPACE,
    ("", "events"): EVENT,
    ("events.k8s.io", "events"): EVENT_V1,
}
