"""Trainer pods: keep a small index of them per job, and wake the job when one changes.

Only pods labelled as Rekindle trainers and controlled by a TrainingJob are
indexed; any other pod, even one with the same name, is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.resources import ownership

#: The parts of a pod that the reconcile reads (the rest would only cost memory).
_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "labels",
    "annotations",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)

#: Where the pod runs, and what holds it back from a node (a queue's scheduling gate).
_KEPT_SPEC = ("nodeName", "schedulingGates")


def summary(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The pod reduced to what :func:`classify.classify_pod` and the reconcile read."""
    meta = pod.get("metadata", {})
    return {
        "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta},
        "spec": {k: v for k, v in (pod.get("spec") or {}).items() if k in _KEPT_SPEC},
        "status": dict(pod.get("status") or {}),
    }


def index_pod(pod: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]] | None:
    """Kopf index entry: (namespace, job name) -> the pod's summary; None for pods not ours."""
    job = ownership.controller_job_name(pod)
    if job is None:
        return None
    namespace = pod.get("metadata", {}).get("namespace", "")
    return {(namespace, job): summary(pod)}


def pod_event(ctx: OperatorContext, event_type: str | None, pod: Mapping[str, Any]) -> None:
    """A trainer pod changed or was deleted (or listed at start-up): wake its job's reconciler."""
    job = ownership.controller_job_name(pod)
    if job is None:
        return
    key = (pod.get("metadata", {}).get("namespace", ""), job)
    if event_type == "ADDED":
        return  # a pod just created (by the reconciler itself) says nothing new yet
    if event_type == "DELETED":
        ctx.wakeups.remember_gone(key, summary(pod))
    ctx.wakeups.wake(key)
