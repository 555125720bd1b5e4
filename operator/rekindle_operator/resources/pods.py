"""The trainer pod of one attempt of a TrainingJob, built as a plain dict.

Pure (no API calls, no clock): the handlers pass in the job, the attempt number
and the trainer configuration projected from the spec, and send what comes out.
The pod is named ``<job>-<attempt>`` (a gang's worker ``i``: ``<job>-<attempt>-w<i>``,
see :mod:`.workers`) so that a replayed create is answered 409,
is owned by the job, runs the trainer with the environment of the operator ⇄
trainer contract, mounts the checkpoint claim, and runs restricted: non-root,
no privilege escalation, RuntimeDefault seccomp, no capabilities, no token.
The template passes Kubernetes' own pod fields through (identity, runtime,
scheduling, security context overrides, init and sidecar containers, DRA
claims); what the contract needs of the trainer container stays Rekindle's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from rekindle_operator.core.job_spec import TrainingJobSpec
from rekindle_operator.resources import ownership, podgroups, trainer_env, volumes, workers
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
#: The UID and GID containers run as unless ``template.securityContext.runAsUser`` is set: the
#: trainer image's user, so that an image built to run as root (the stock
#: ``tensorflow/tensorflow``) still starts under ``runAsNonRoot``.
DEFAULT_RUN_AS_USER: Final = 10001


class PodSpecError(ValueError):
    """The spec asks for a pod that cannot be built; the message names the field and the fix."""


def checkpoint_dir(job_name: str) -> str:
    """The job's folder on the checkpoint volume (a named claim may hold several jobs)."""
    return f"{contract.DEFAULT_CHECKPOINT_MOUNT}/{job_name}"


def _contract_env(
    job: Mapping[str, Any], attempt: int, config: Mapping[str, Any], place: workers.Place
) -> list[dict[str, Any]]:
    """The contract's variables (:mod:`.trainer_env`) as the container's ``env`` entries."""
    values = trainer_env.variables(
        tf_config=place.tf_config(),
        config=config,
        checkpoint_dir=checkpoint_dir(job["metadata"]["name"]),
        attempt=attempt,
        job=trainer_env.JobIdentity.of(job),
        metrics_port=contract.DEFAULT_METRICS_PORT,
        termination_log=contract.DEFAULT_TERMINATION_LOG,
    )
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
    if spec.resources.claims:
        resources["claims"] = copy.deepcopy(list(spec.resources.claims))
    return resources


def _env(
    job: Mapping[str, Any],
    attempt: int,
    config: Mapping[str, Any],
    spec: TrainingJobSpec,
    place: workers.Place,
) -> list[dict[str, Any]]:
    """The user's env from the template, then the contract's (names may not clash)."""
    ours = _contract_env(job, attempt, config, place)
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
    worker: int = 0,
) -> dict[str, Any]:
    """The pod that runs ``attempt`` (1, 2, …) of ``job``, or its worker ``worker``.

    Args:
        job: the TrainingJob as read from the API (``metadata`` with ``uid``).
        spec: its parsed spec.
        attempt: the attempt number; the pod is ``<job>-<attempt>``.
        config: the trainer configuration document (``REKINDLE_CONFIG``).
        worker: with ``spec.workers`` above 1, which worker (0 is the chief); the pod
            is ``<job>-<attempt>-w<worker>`` and gets its ``TF_CONFIG`` (:mod:`.workers`).

    With ``spec.gangScheduling`` the pod joins the attempt's PodGroup (:mod:`.podgroups`).

    Raises:
        PodSpecError: when the spec's template clashes with what the operator
            sets (a reserved env name, volume name or mount path, a container
            named like the trainer).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    meta = job["metadata"]
    name = meta["name"]
    place = workers.Place(name, meta["namespace"], worker, spec.workers)
    pod_volumes, mounts = _volumes(name, spec)
    pod_security = _pod_security(spec)
    trainer = _container(job, spec, attempt, config, mounts, place=place)
    trainer["securityContext"] = _container_security(spec, pod_security)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "automountServiceAccountToken": spec.template.automount_service_account_token,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [trainer, *_extra_containers(spec.template.sidecars, "sidecars")],
        "volumes": pod_volumes,
        **_scheduling(spec),
        **_passed_through(spec),
        **place.pod_spec_fields(),
    }
    metadata: dict[str, Any] = {
        "name": place.pod_name(attempt),
        "namespace": meta["namespace"],
        "labels": {**pod_labels(name, attempt, spec), **place.labels()},
        "ownerReferences": [ownership.owner_reference(job)],
    }
    if spec.template.metadata.annotations:
        metadata["annotations"] = dict(spec.template.metadata.annotations)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
    return podgroups.with_gang(pod, spec, name, attempt)


def _container(
    job: Mapping[str, Any],
    spec: TrainingJobSpec,
    attempt: int,
    config: Mapping[str, Any],
    mounts: list[dict[str, Any]],
    *,
    place: workers.Place,
) -> dict[str, Any]:
    """The trainer container: the contract's env, the metrics port (security: the caller's)."""
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        **_command(spec),
        "env": _env(job, attempt, config, spec, place),
        "resources": _resources(spec),
        "ports": [
            {
                "name": contract.METRICS_PORT_NAME,
                "containerPort": contract.DEFAULT_METRICS_PORT,
                "protocol": "TCP",
            },
            *place.ports(),
        ],
        "volumeMounts": mounts,
        "terminationMessagePath": contract.DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _scheduling(spec: TrainingJobSpec) -> dict[str, Any]:
    """The template's scheduling fields that are set (absent ones are left out)."""
    template = spec.template
    fields: dict[str, Any] = {}
    if template.node_selector:
        fields["nodeSelector"] = dict(template.node_selector)
    if template.tolerations:
        fields["tolerations"] = [dict(t) for t in template.tolerations]
    if template.affinity:
        fields["affinity"] = dict(template.affinity)
    if template.priority_class_name is not None:
        fields["priorityClassName"] = template.priority_class_name
    return fields


def _passed_through(spec: TrainingJobSpec) -> dict[str, Any]:
    """The template's pod fields that Rekindle passes as they are (absent ones left out)."""
    template = spec.template
    given: dict[str, Any] = {
        "serviceAccountName": template.service_account_name,
        "imagePullSecrets": list(template.image_pull_secrets),
        "runtimeClassName": template.runtime_class_name,
        "schedulerName": template.scheduler_name,
        "topologySpreadConstraints": list(template.topology_spread_constraints),
        "resourceClaims": list(template.resource_claims),
        "initContainers": _extra_containers(template.init_containers, "initContainers"),
    }
    return {key: copy.deepcopy(value) for key, value in given.items() if value}


def _extra_containers(
    containers: tuple[dict[str, Any], ...], field_name: str
) -> list[dict[str, Any]]:
    """Init or sidecar containers as given; none may take the trainer container's name."""
    for index, item in enumerate(containers):
        if item.get("name") == CONTAINER_NAME:
            raise PodSpecError(
                f"spec.template.{field_name}[{index}].name: the container name "
                f"{CONTAINER_NAME} is Rekindle's trainer container; choose another name"
            )
    return copy.deepcopy(list(containers))


def _pod_security(spec: TrainingJobSpec) -> dict[str, Any]:
    """Rekindle's pod ``securityContext`` with the template's merged over it.

    Unless the template sets ``runAsUser`` (or turns ``runAsNonRoot`` off), every
    container runs as :data:`DEFAULT_RUN_AS_USER`: the kubelet refuses a
    ``runAsNonRoot`` container whose image would run as root or as a named user.
    """
    given = spec.template.security_context
    ours: dict[str, Any] = {
        "runAsNonRoot": True,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
        "fsGroup": VOLUME_GROUP,
        "fsGroupChangePolicy": "OnRootMismatch",
    }
    if "runAsUser" not in given and given.get("runAsNonRoot", True):
        ours["runAsUser"] = DEFAULT_RUN_AS_USER
        ours["runAsGroup"] = given.get("runAsGroup", DEFAULT_RUN_AS_USER)
    return merged(ours, given)


def _container_security(spec: TrainingJobSpec, pod_security: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer's ``securityContext``: restricted, ``runAsNonRoot`` as the pod's, overridable."""
    ours: dict[str, Any] = {
        "runAsNonRoot": pod_security.get("runAsNonRoot", True),
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }
    return merged(ours, spec.template.container_security_context)


def merged(ours: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``ours``: its keys win, and an object under a key of both is merged.

    A security context nests one level deep (``capabilities``, ``seccompProfile``), so
    ``capabilities: {add: [IPC_LOCK]}`` keeps Rekindle's ``drop: [ALL]``.
    """
    result = {**ours, **given}
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(ours.get(key), Mapping):
            result[key] = {**ours[key], **value}
    return copy.deepcopy(result)
