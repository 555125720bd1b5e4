"""The trainer pod of one attempt of a TrainingJob, built as a plain dict.

Pure (no API calls, no clock): the handlers pass in the job, the attempt number
and the trainer configuration projected from the spec, and send what comes out.
The pod is named ``<job>-<attempt>`` so that a replayed create is answered 409,
is owned by the job, runs the trainer with the environment of the operator ⇄
trainer contract, mounts the checkpoint claim, and runs restricted: non-root,
no privilege escalation, RuntimeDefault seccomp, no capabilities, no token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from rekindle_operator import ownership, volumes
from rekindle_operator.spec import TrainingJobSpec
from rekindle_trainer import contract

#: The trainer container's name (``kubectl logs tj-pod -c trainer``).
CONTAINER_NAME: Final = "trainer"
#: The command that runs a built-in ``module:function`` entrypoint in the trainer image.
TRAINER_COMMAND: Final = ("rekindle-train",)
#: The extended resource the NVIDIA device plugin advertises.
GPU_RESOURCE: Final = "nvidia.com/gpu"
#: Group of the checkpoint volume's files, so a non-root trainer can write a fresh claim.
VOLUME_GROUP: Final = 1000
RUNTIME_DEFAULT_SECCOMP: Final = {"type": "RuntimeDefault"}


class PodSpecError(ValueError):
    """The spec asks for a pod that cannot be built; the message names the field and the fix."""


def checkpoint_dir(job_name: str) -> str:
    """The job's folder on the checkpoint volume (a named claim may hold several jobs)."""
    return f"{contract.DEFAULT_CHECKPOINT_MOUNT}/{job_name}"


def trainer_env(
    job: Mapping[str, Any], attempt: int, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The environment the contract gives the trainer (``docs/contract.md``, "In")."""
    meta = job["metadata"]
    values = {
        contract.ENV_CONFIG: json.dumps(config, separators=(",", ":"), sort_keys=True),
        contract.ENV_CHECKPOINT_DIR: checkpoint_dir(meta["name"]),
        contract.ENV_ATTEMPT: str(attempt),
        contract.ENV_JOB_NAME: meta["name"],
        contract.ENV_JOB_NAMESPACE: meta["namespace"],
        contract.ENV_JOB_UID: meta.get("uid", ""),
        contract.ENV_METRICS_PORT: str(contract.DEFAULT_METRICS_PORT),
        contract.ENV_TERMINATION_LOG: contract.DEFAULT_TERMINATION_LOG,
    }
    return [{"name": name, "value": value} for name, value in values.items()]


def pod_labels(job_name: str, attempt: int, spec: TrainingJobSpec) -> dict[str, str]:
    """The user's template labels, then Rekindle's (which always win)."""
    return {
        **spec.template.metadata.labels,
        ownership.LABEL_APP: ownership.TRAINER_APP,
        ownership.LABEL_MANAGED_BY: ownership.MANAGER,
        ownership.LABEL_JOB: job_name,
        ownership.LABEL_ATTEMPT: str(attempt),
    }


def _command(spec: TrainingJobSpec) -> dict[str, Any]:
    """``command``/``args`` of the container: the user's own, or the trainer's runner."""
    if spec.command:
        return {"command": list(spec.command), "args": list(spec.args or ())}
    if spec.entrypoint is None:
        raise PodSpecError(
            "spec: set either spec.entrypoint (module:function) or spec.command; neither is set"
        )
    return {"command": list(TRAINER_COMMAND), "args": list(spec.args or ())}


def _resources(spec: TrainingJobSpec) -> dict[str, Any]:
    """Requests and limits, with the GPU count as an ``nvidia.com/gpu`` limit."""
    requests = dict(spec.resources.requests)
    limits = dict(spec.resources.limits)
    if GPU_RESOURCE in requests or GPU_RESOURCE in limits:
        raise PodSpecError(
            f"spec.resources: set GPUs with spec.resources.gpus, not {GPU_RESOURCE} "
            "in requests or limits"
        )
    if spec.resources.gpus:
        limits[GPU_RESOURCE] = spec.resources.gpus
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _env(
    job: Mapping[str, Any], attempt: int, config: Mapping[str, Any], spec: TrainingJobSpec
) -> list[dict[str, Any]]:
    """The user's env from the template, then the contract's (names may not clash)."""
    ours = trainer_env(job, attempt, config)
    reserved = {item["name"] for item in ours}
    for index, item in enumerate(spec.template.env):
        if item.get("name") in reserved:
            raise PodSpecError(
                f"spec.template.env[{index}].name: {item.get('name')} is set by the operator "
                "(see docs/contract.md); remove it from the template"
            )
    return [dict(item) for item in spec.template.env] + ours


def _volumes(
    job_name: str, spec: TrainingJobSpec
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and container mounts: the checkpoint claim plus the template's."""
    for index, volume in enumerate(spec.template.volumes):
        if volume.get("name") == volumes.VOLUME_NAME:
            raise PodSpecError(
                f"spec.template.volumes[{index}].name: {volumes.VOLUME_NAME!r} is the checkpoint "
                "volume's name; rename yours"
            )
    for index, mount in enumerate(spec.template.volume_mounts):
        if mount.get("mountPath") == contract.DEFAULT_CHECKPOINT_MOUNT:
            raise PodSpecError(
                f"spec.template.volumeMounts[{index}].mountPath: "
                f"{contract.DEFAULT_CHECKPOINT_MOUNT} is where checkpoints are mounted; "
                "choose another path"
            )
    pod_volumes = [volumes.build_volume(job_name, spec), *map(dict, spec.template.volumes)]
    mounts = [
        {"name": volumes.VOLUME_NAME, "mountPath": contract.DEFAULT_CHECKPOINT_MOUNT},
        *map(dict, spec.template.volume_mounts),
    ]
    return pod_volumes, mounts


def build_pod(
    job: Mapping[str, Any],
    spec: TrainingJobSpec,
    attempt: int,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The pod that runs ``attempt`` (1, 2, …) of ``job``.

    Args:
        job: the TrainingJob as read from the API (``metadata`` with ``uid``).
        spec: its parsed spec.
        attempt: the attempt number; the pod is ``<job>-<attempt>``.
        config: the trainer configuration document (``REKINDLE_CONFIG``).

    Raises:
        PodSpecError: when the spec's template clashes with what the operator
            sets (a reserved env name, volume name or mount path).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    meta = job["metadata"]
    name = meta["name"]
    pod_volumes, mounts = _volumes(name, spec)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        **_command(spec),
        "env": _env(job, attempt, config, spec),
        "resources": _resources(spec),
        "ports": [
            {
                "name": contract.METRICS_PORT_NAME,
                "containerPort": contract.DEFAULT_METRICS_PORT,
                "protocol": "TCP",
            }
        ],
        "volumeMounts": mounts,
        "terminationMessagePath": contract.DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
            "fsGroup": VOLUME_GROUP,
            "fsGroupChangePolicy": "OnRootMismatch",
        },
        "containers": [container],
        "volumes": pod_volumes,
    }
    template = spec.template
    if template.node_selector:
        pod_spec["nodeSelector"] = dict(template.node_selector)
    if template.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in template.tolerations]
    if template.affinity:
        pod_spec["affinity"] = dict(template.affinity)
    if template.priority_class_name is not None:
        pod_spec["priorityClassName"] = template.priority_class_name
    metadata: dict[str, Any] = {
        "name": ownership.pod_name(name, attempt),
        "namespace": meta["namespace"],
        "labels": pod_labels(name, attempt, spec),
        "ownerReferences": [ownership.owner_reference(job)],
    }
    if template.metadata.annotations:
        metadata["annotations"] = dict(template.metadata.annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
