"""A gang's workers: each one's place (names, ``TF_CONFIG``) and the Service they meet under.

With ``spec.workers: N`` above 1, attempt ``k`` of job ``j`` is N pods
``j-k-w0`` … ``j-k-w{N-1}``. Each pod sets ``hostname: w<i>`` and
``subdomain: j-workers``; the headless Service ``j-workers`` selects the
current attempt's pods (job and attempt labels), so cluster DNS answers
``w<i>.j-workers.<namespace>.svc`` with that worker's pod address, and every
worker's ``TF_CONFIG`` lists those names on port
:data:`~rekindle_trainer.contract.DEFAULT_WORKER_PORT`. The names do not change
from one attempt to the next; the Service's selector moves to the new attempt
before its pods are created. Worker 0 is the chief.

With one worker none of this exists: the pod is ``j-k``, with no hostname,
no Service and no ``TF_CONFIG`` (the pod of a job from before gangs).
Pure: plain dicts in and out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rekindle_operator.resources import ownership
from rekindle_trainer import contract
from rekindle_trainer.contract import gang


@dataclass(frozen=True)
class Place:
    """Where one worker stands: its job, its index and the size of its gang."""

    job_name: str
    namespace: str
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= contract.MAX_WORKERS:
            raise ValueError(f"a gang has 1 to {contract.MAX_WORKERS} workers, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index} is outside the gang of {self.count}")

    @property
    def is_gang(self) -> bool:
        """Whether the attempt has several workers (one worker is a plain pod)."""
        return self.count > 1

    def pod_name(self, attempt: int) -> str:
        """The pod of this worker in ``attempt``."""
        return ownership.worker_pod_name(self.job_name, attempt, self.index, self.count)

    def labels(self) -> dict[str, str]:
        """The worker label (gangs only)."""
        return {ownership.LABEL_WORKER: str(self.index)} if self.is_gang else {}

    def pod_spec_fields(self) -> dict[str, Any]:
        """``hostname`` and ``subdomain``, which give the pod its DNS name (gangs only)."""
        if not self.is_gang:
            return {}
        return {
            "hostname": hostname(self.index),
            "subdomain": ownership.service_name(self.job_name),
        }

    def ports(self) -> list[dict[str, Any]]:
        """The collective port the other workers dial (gangs only)."""
        if not self.is_gang:
            return []
        return [
            {
                "name": contract.WORKER_PORT_NAME,
                "containerPort": contract.DEFAULT_WORKER_PORT,
                "protocol": "TCP",
            }
        ]

    def tf_config(self) -> str | None:
        """The ``TF_CONFIG`` of this worker (None for one worker: it gets none)."""
        if not self.is_gang:
            return None
        return gang.tf_config_text(hosts(self.job_name, self.namespace, self.count), self.index)


def hostname(index: int) -> str:
    """``w<index>``: a worker's hostname, the same in every attempt."""
    return f"w{index}"


def hosts(job_name: str, namespace: str, count: int) -> list[str]:
    """``w<i>.<job>-workers.<namespace>.svc:<port>`` for each worker, the chief first.

    The cluster domain is left to the pods' DNS search path (it need not be
    ``cluster.local``).
    """
    service = ownership.service_name(job_name)
    port = contract.DEFAULT_WORKER_PORT
    return [f"{hostname(i)}.{service}.{namespace}.svc:{port}" for i in range(count)]


def service_selector(job_name: str, attempt: int) -> dict[str, str]:
    """The pods the Service answers for: the workers of ``attempt`` only (never a stale gang's)."""
    return {ownership.LABEL_JOB: job_name, ownership.LABEL_ATTEMPT: str(attempt)}


def build_service(job: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    """The headless Service ``<job>-workers`` for the workers of ``attempt``.

    ``publishNotReadyAddresses``: workers dial each other while they start,
    before any of them could be called ready.
    """
    meta = job["metadata"]
    name = meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": ownership.service_name(name),
            "namespace": meta["namespace"],
            "labels": {
                ownership.LABEL_MANAGED_BY: ownership.MANAGER,
                ownership.LABEL_JOB: name,
            },
            "ownerReferences": [ownership.owner_reference(job)],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": service_selector(name, attempt),
            "ports": [
                {
                    "name": contract.WORKER_PORT_NAME,
                    "port": contract.DEFAULT_WORKER_PORT,
                    "targetPort": contract.DEFAULT_WORKER_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def selector_patch(
    service: Mapping[str, Any], job_name: str, attempt: int
) -> dict[str, Any] | None:
    """The merge patch that points an existing Service at ``attempt``; None if it already does."""
    wanted = service_selector(job_name, attempt)
    if (service.get("spec") or {}).get("selector") == wanted:
        return None
    return {"spec": {"selector": wanted}}
