"""What a Node object says about its pods, and what volume-attach events say about a pod.

Pure functions over the dicts the API returns. A dead node is not a fast
signal in Kubernetes: its pods stay ``Terminating`` for as long as the Node
object exists, and a ReadWriteOnce volume stays attached to it (about six
minutes, the attach/detach controller's force-detach timer, or for ever where
that timer is off) until an administrator applies the ``out-of-service``
taint. So the operator reads the node of a pod that is not ready and replaces
the pod at once, and it reads the attach events of a replacement that waits
on its node, to say why it waits (see ``docs/dead-nodes.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rekindle_trainer.contract import timestamps

#: NoExecute taints the node lifecycle controller puts on a node it no longer hears from.
DOWN_TAINTS: Final = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
#: The taint an administrator applies to a node known to be down (Kubernetes ≥ 1.28 GA):
#: its terminating pods are deleted and its volumes detached at once.
OUT_OF_SERVICE_TAINT: Final = "node.kubernetes.io/out-of-service"
#: What an administrator runs once a node is known to be dead.
ADMIN_COMMAND: Final = (
    "kubectl taint nodes {node} node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"
)
#: Events of the attach/detach controller about a pod's volumes.
FAILED_ATTACH: Final = "FailedAttachVolume"
SUCCESSFUL_ATTACH: Final = "SuccessfulAttachVolume"
#: Condition reasons: another node holds the volume, or the attach failed otherwise.
MULTI_ATTACH: Final = "MultiAttachError"


def node_down(node: Mapping[str, Any] | None, name: str) -> str | None:
    """Why node ``name`` cannot run its pods any more; None while it can (or is unknown).

    ``node`` is the Node object, None when the API has none (the caller decides
    what a missing node means). Down: ``Ready`` is False or Unknown, or a
    ``NoExecute`` taint says it is unreachable, not ready or out of service.
    """
    if node is None:
        return None
    for taint in (node.get("spec") or {}).get("taints") or []:
        key = taint.get("key")
        if key == OUT_OF_SERVICE_TAINT or (
            key in DOWN_TAINTS and taint.get("effect") == "NoExecute"
        ):
            return f"node {name} has the taint {key}:{taint.get('effect')}"
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") in ("False", "Unknown"):
            said = ": ".join(
                str(p) for p in (condition.get("reason"), condition.get("message")) if p
            )
            ready = f"Ready={condition['status']}"
            return f"node {name} is not ready ({ready}{': ' + said if said else ''})"
    return None


def may_be_stranded(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's node is worth reading: bound, not finished, and not ready or deleting."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if meta.get("deletionTimestamp"):
        return True
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return not ready or ready[0].get("status") != "True"


def creating(pod: Mapping[str, Any]) -> bool:
    """Whether the pod is on its node with its containers not started (volumes attach then)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase", "Pending") != "Pending":
        return False
    states = [c.get("state") or {} for c in status.get("containerStatuses") or []]
    return not any("running" in s or "terminated" in s for s in states)


@dataclass(frozen=True)
class AttachState:
    """What the attach events about a pod say (see :func:`attach_state`)."""

    #: The attach still fails: (reason, message) for the condition; None: it does not.
    blocked: tuple[str, str] | None = None
    #: When its volumes were last attached (the pending timeout counts from then).
    attached_at: datetime | None = None


def attach_state(
    events: Iterable[Mapping[str, Any]], pod: Mapping[str, Any], holder: str | None = None
) -> AttachState:
    """Whether ``pod`` waits for a volume attach, from the Events about it.

    ``holder``: the node the caller believes holds the volume (the last
    attempt's), named when the event's message names none (Kubernetes' does not).

    The newest attach event decides: ``FailedAttachVolume`` (e.g. "Multi-Attach
    error": a ReadWriteOnce volume still attached to another node, often a dead
    one) blocks; ``SuccessfulAttachVolume`` clears it.
    """
    uid = (pod.get("metadata") or {}).get("uid")
    mine = [
        e
        for e in events
        if e.get("reason") in (FAILED_ATTACH, SUCCESSFUL_ATTACH)
        and (uid is None or (e.get("involvedObject") or {}).get("uid") in (None, uid))
    ]
    if not mine:
        return AttachState()
    newest = max(mine, key=_event_time)
    attached = [e for e in mine if e.get("reason") == SUCCESSFUL_ATTACH]
    attached_at = _event_time(max(attached, key=_event_time)) if attached else None
    if newest.get("reason") != FAILED_ATTACH:
        return AttachState(attached_at=attached_at)
    said = str(newest.get("message") or "")
    reason = MULTI_ATTACH if "Multi-Attach" in said else FAILED_ATTACH
    node = (pod.get("spec") or {}).get("nodeName")
    holder = held_by(said) or holder
    text = f"pod {(pod.get('metadata') or {}).get('name')} on node {node}: {said}".rstrip(": ")
    if reason == MULTI_ATTACH:
        text += (
            "; the volume is still attached to "
            + (f"node {holder}" if holder else "another node")
            + ". If that node is dead, run: "
            + ADMIN_COMMAND.format(node=holder or "<node>")
        )
    return AttachState(blocked=(reason, text), attached_at=attached_at)


def held_by(message: str) -> str | None:
    """The node a Multi-Attach message names as holding the volume, if it names one."""
    found = re.search(r"attached to (?:node )?\"?([A-Za-z0-9][A-Za-z0-9.-]*)\"?", message)
    if found is None or found.group(1) in ("one", "another"):
        return None
    return found.group(1)


def _event_time(event: Mapping[str, Any]) -> datetime:
    """When an event last happened: lastTimestamp, eventTime, else firstTimestamp."""
    meta = event.get("metadata") or {}
    for field in ("lastTimestamp", "eventTime", "firstTimestamp"):
        value = event.get(field)
        if value:
            return timestamps.parse_time(str(value))
    return timestamps.parse_time(str(meta.get("creationTimestamp") or "1970-01-01T00:00:00Z"))
