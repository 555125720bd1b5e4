"""Kueue's plain-Pod integration, as far as a pod's owner can see it, for the emulated cluster.

What Kueue does to the pods it manages, and nothing of its quota bookkeeping:

* its webhook gates every pod created with the label ``kueue.x-k8s.io/queue-name``
  (scheduling gate ``kueue.x-k8s.io/admission``, label ``kueue.x-k8s.io/managed``):
  :func:`installed` adds that admission hook to a cluster;
* admitting a Workload removes the gate from its pods: :func:`admit` (the test
  decides when, as a ClusterQueue with quota would);
* preempting (evicting) a Workload marks its pods ``TerminationTarget`` (reason
  ``WorkloadEvictedDueToPreempted``), then deletes them gracefully: :func:`preempt`.
  The pods' owner must create replacements; they are gated again until admitted.

The process kubelet keeps a gated pod unbound and Pending (``SchedulingGated``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import kmock

from tests.kube import admission, patches
from tests.kube.cluster import Cluster
from tests.kube.store import PODS, DeleteOptions, Store, add_condition

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_LABEL = "kueue.x-k8s.io/managed"
GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
GATE = "kueue.x-k8s.io/admission"
#: What Kueue (v0.9 and later) says on the pods of a Workload it preempted.
PREEMPTED_REASON = "WorkloadEvictedDueToPreempted"
PREEMPTED_MESSAGE = (
    "Preempted to accommodate a workload (UID: 5ba4d3c0) due to prioritization in the ClusterQueue"
)


def gate_queued_pods(resource: kmock.resource, namespace: str | None, obj: dict[str, Any]) -> None:
    """Kueue's mutating webhook: a pod that names a queue is gated until admitted."""
    labels = obj.get("metadata", {}).get("labels") or {}
    if resource != PODS or QUEUE_LABEL not in labels:
        return
    labels[MANAGED_LABEL] = "true"
    spec = obj.setdefault("spec", {})
    gates = [g for g in spec.get("schedulingGates") or [] if g.get("name") != GATE]
    spec["schedulingGates"] = [*gates, {"name": GATE}]


@contextlib.contextmanager
def installed(cluster: Cluster) -> Iterator[None]:
    """The cluster gates queued pods (Kueue's webhook) until the block ends."""
    with admission.installed(cluster, gate_queued_pods):
        yield


def is_gated(pod: dict[str, Any] | None) -> bool:
    """Whether ``pod`` waits for Kueue's admission."""
    gates = ((pod or {}).get("spec") or {}).get("schedulingGates") or []
    return any(g.get("name") == GATE for g in gates)


def admit(cluster: Cluster, namespace: str, name: str) -> None:
    """Admit the pod's Workload: remove Kueue's gate (other gates stay)."""

    def ungate(store: Store) -> None:
        pod = store.find(PODS, namespace, name)
        gates = [g for g in pod["spec"].get("schedulingGates") or [] if g.get("name") != GATE]
        body = {"spec": {"schedulingGates": gates or None}}
        store.patch(PODS, namespace, name, patches.MERGE, body)

    cluster.call(ungate)


def preempt(cluster: Cluster, namespace: str, name: str) -> None:
    """Preempt the pod's Workload: ``TerminationTarget``, then a graceful delete (SIGTERM)."""

    def evict(store: Store) -> None:
        pod = store.find(PODS, namespace, name)
        add_condition(
            pod, "TerminationTarget", "True", PREEMPTED_REASON, PREEMPTED_MESSAGE, store.clock()
        )
        store.set_pod_status(namespace, name, pod["status"])
        store.delete(PODS, namespace, name, DeleteOptions())

    cluster.call(evict)
