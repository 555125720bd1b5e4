"""The checkpoint volume of a TrainingJob: which claim its pods mount, and the one it creates.

A claim the user names (``spec.checkpoint.volumeClaimName``) is used as it is
and never created or deleted by Rekindle. Otherwise the operator creates
``<job>-checkpoints`` of ``spec.checkpoint.size``, owned by the job (deleted
with it by the garbage collector) unless ``retainVolume`` keeps it.

One worker mounts the claim at a time (ReadWriteOnce). A gang
(``spec.workers`` above 1) mounts it from every worker's pod, on as many
nodes: the claim Rekindle creates asks for ReadWriteMany, and a named claim
without ReadWriteMany is refused before any pod is made (:func:`claim_problem`).
Pure: returns plain dicts; :mod:`rekindle_operator.handlers` sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rekindle_operator.core.job_spec import TrainingJobSpec
from rekindle_operator.resources import ownership

#: The pod volume (and mount) name of the checkpoint claim.
VOLUME_NAME: Final = "checkpoints"
#: One pod at a time writes the checkpoints; successive attempts may land on other nodes.
ACCESS_MODES: Final = ("ReadWriteOnce",)
#: A gang's pods, on several nodes at once, all mount the checkpoints (the chief writes them).
GANG_ACCESS_MODES: Final = ("ReadWriteMany",)


def access_modes(spec: TrainingJobSpec) -> tuple[str, ...]:
    """The access modes of the claim Rekindle creates for ``spec``."""
    return GANG_ACCESS_MODES if spec.workers > 1 else ACCESS_MODES


def claim_problem(spec: TrainingJobSpec, claim: Mapping[str, Any] | None) -> str | None:
    """Why the user's claim cannot hold a gang's checkpoints; None when it can (or is not known).

    Args:
        spec: the job's spec (only a gang with a named claim is checked).
        claim: the PersistentVolumeClaim ``spec.checkpoint.volumeClaimName`` as
            read from the API; None when it does not exist (yet): its pods wait
            for it, as for one worker.
    """
    name = spec.checkpoint.volume_claim_name
    if spec.workers == 1 or name is None or claim is None:
        return None
    modes = (claim.get("status") or {}).get("accessModes") or (claim.get("spec") or {}).get(
        "accessModes"
    )
    if not modes or GANG_ACCESS_MODES[0] in modes:
        return None
    return (
        f"spec.checkpoint.volumeClaimName: claim {name} is {', '.join(modes)}, but "
        f"spec.workers: {spec.workers} mounts it from {spec.workers} pods on several nodes, "
        "which needs ReadWriteMany; name a ReadWriteMany claim (NFS, CephFS, EFS, Filestore, "
        "Azure Files), or remove volumeClaimName and set spec.checkpoint.storageClassName to a "
        "ReadWriteMany class so that Rekindle creates one, or set spec.workers: 1"
    )


def claim_name(job_name: str, spec: TrainingJobSpec) -> str:
    """The claim the job's pods mount: the user's, or the one the operator creates."""
    return spec.checkpoint.volume_claim_name or ownership.claim_name(job_name)


def build_claim(job: Mapping[str, Any], spec: TrainingJobSpec) -> dict[str, Any] | None:
    """The PersistentVolumeClaim the operator creates for ``job``, or None for a user's claim.

    Args:
        job: the TrainingJob as read from the API (``metadata`` is read).
        spec: its parsed spec.
    """
    size = spec.checkpoint.claim_size
    if size is None:
        return None
    meta = job["metadata"]
    metadata: dict[str, Any] = {
        "name": ownership.claim_name(meta["name"]),
        "namespace": meta["namespace"],
        "labels": {
            ownership.LABEL_MANAGED_BY: ownership.MANAGER,
            ownership.LABEL_JOB: meta["name"],
        },
    }
    if not spec.checkpoint.retain_volume:
        metadata["ownerReferences"] = [ownership.owner_reference(job)]
    claim_spec: dict[str, Any] = {
        "accessModes": list(access_modes(spec)),
        "resources": {"requests": {"storage": size}},
    }
    if spec.checkpoint.storage_class_name is not None:
        claim_spec["storageClassName"] = spec.checkpoint.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": claim_spec,
    }


def build_volume(job_name: str, spec: TrainingJobSpec) -> dict[str, Any]:
    """The pod volume that mounts the job's checkpoint claim."""
    return {
        "name": VOLUME_NAME,
        "persistentVolumeClaim": {"claimName": claim_name(job_name, spec)},
    }
