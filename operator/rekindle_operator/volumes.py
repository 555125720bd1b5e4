"""The checkpoint volume of a TrainingJob: which claim its pods mount, and the one it creates.

A claim the user names (``spec.checkpoint.volumeClaimName``) is used as it is
and never created or deleted by Rekindle. Otherwise the operator creates
``<job>-checkpoints`` of ``spec.checkpoint.size``, owned by the job (deleted
with it by the garbage collector) unless ``retainVolume`` keeps it.
Pure: returns plain dicts; :mod:`rekindle_operator.handlers` sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rekindle_operator import ownership
from rekindle_operator.spec import TrainingJobSpec

#: The pod volume (and mount) name of the checkpoint claim.
VOLUME_NAME: Final = "checkpoints"
#: One pod at a time writes the checkpoints; successive attempts may land on other nodes.
ACCESS_MODES: Final = ("ReadWriteOnce",)


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
        "accessModes": list(ACCESS_MODES),
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
