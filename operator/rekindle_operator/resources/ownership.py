"""How the operator marks what it owns: labels, owner references and object names.

The trainer pods, checkpoint claims and a gang's Service carry these labels (so that kopf, a
PodMonitor and ``kubectl get pods -l rekindle.dev/job=NAME`` can select them)
and an owner reference to their TrainingJob (so that deleting the job lets
Kubernetes' garbage collector delete them). Pure: plain dicts in and out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rekindle_operator.core import job_spec

LABEL_APP: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_JOB: Final = "rekindle.dev/job"
LABEL_ATTEMPT: Final = "rekindle.dev/attempt"
#: The worker index of a gang's pod (``spec.workers`` > 1); 0 is the chief.
LABEL_WORKER: Final = "rekindle.dev/worker"
#: ``app.kubernetes.io/name`` of every trainer pod (the PodMonitor selects it).
TRAINER_APP: Final = "rekindle-trainer"
#: ``app.kubernetes.io/managed-by`` of every object the operator creates.
MANAGER: Final = "rekindle-operator"
#: The job's API version, as owner references and events name it.
JOB_API_VERSION: Final = f"{job_spec.API_GROUP}/{job_spec.API_VERSION}"


def pod_name(job_name: str, attempt: int) -> str:
    """``<job>-<attempt>``: one name per attempt, so a replayed create answers 409."""
    return f"{job_name}-{attempt}"


def worker_pod_name(job_name: str, attempt: int, index: int, workers: int) -> str:
    """Worker ``index``'s pod: ``<job>-<attempt>`` alone, ``<job>-<attempt>-w<index>`` in a gang.

    One worker keeps the name pods had before gangs existed.
    """
    name = pod_name(job_name, attempt)
    return name if workers == 1 else f"{name}-w{index}"


def service_name(job_name: str) -> str:
    """``<job>-workers``: the headless Service under which a gang's workers find each other."""
    return f"{job_name}-workers"


def claim_name(job_name: str) -> str:
    """The name of the checkpoint claim the operator creates for a job."""
    return f"{job_name}-checkpoints"


def owner_reference(job: Mapping[str, Any]) -> dict[str, Any]:
    """An owner reference to ``job`` that makes it the controller of the owned object.

    Raises:
        ValueError: when the job has no ``metadata.uid`` (it was never stored by
            an API server), since Kubernetes rejects an owner reference without one.
    """
    meta = job.get("metadata", {})
    uid = meta.get("uid")
    if not uid:
        raise ValueError(
            f"TrainingJob {meta.get('name')!r} has no metadata.uid; "
            "only a job read back from the API server can own pods"
        )
    return {
        "apiVersion": JOB_API_VERSION,
        "kind": job_spec.KIND,
        "name": meta["name"],
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    """Whether ``obj`` has ``job`` as its controlling owner (matched by uid)."""
    uid = job.get("metadata", {}).get("uid")
    return any(
        ref.get("kind") == job_spec.KIND and ref.get("controller") and ref.get("uid") == uid
        for ref in obj.get("metadata", {}).get("ownerReferences", ())
    )


def controller_job_name(obj: Mapping[str, Any]) -> str | None:
    """The name of the TrainingJob that controls ``obj``, or None if none does."""
    for ref in obj.get("metadata", {}).get("ownerReferences", ()):
        if (
            ref.get("kind") == job_spec.KIND
            and ref.get("apiVersion", "").startswith(f"{job_spec.API_GROUP}/")
            and ref.get("controller")
        ):
            return str(ref.get("name"))
    return None
