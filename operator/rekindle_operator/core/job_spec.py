"""The typed ``spec`` of a TrainingJob, with the CRD's defaults and bounds.

Every field carries :func:`rekindle_trainer.contract.documents.schema` metadata;
a test walks these declarations and the CRD in ``charts/rekindle/crds/`` side
by side and fails on any difference in names, defaults, bounds, enums or
required fields. The parts the trainer is told (``training``, the save policy
of ``checkpoint``, ``earlyStopping``, ``entrypoint``) are declared once, in
:mod:`rekindle_trainer.contract.training_config`, and reused here; the trainer
parses its configuration document with the same declarations. Cross-field
rules live in the CRD's CEL rules (see
:mod:`rekindle_operator.resources.validation`), not here.

Example:
    >>> from rekindle_operator.core import job_spec
    >>> s = job_spec.parse_spec({"image": "trainer:1", "entrypoint": "m:f",
    ...                          "training": {"epochs": 5}})
    >>> s.training.batch_size, s.restart_policy.max_restarts
    (32, 3)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

from rekindle_trainer import contract
from rekindle_trainer.contract import documents, training_config
from rekindle_trainer.contract.documents import schema
from rekindle_trainer.contract.training_config import (
    CheckpointPolicy,
    EarlyStopping,
    TrainerConfig,
    Training,
)

API_GROUP: Final = "rekindle.dev"
API_VERSION: Final = "v1alpha1"
KIND: Final = "TrainingJob"
PLURAL: Final = "trainingjobs"
SINGULAR: Final = "trainingjob"
SHORT_NAME: Final = "tj"
CATEGORY: Final = "rekindle"

#: The checkpoint claim size used when the user names neither a claim nor a size.
DEFAULT_VOLUME_SIZE: Final = "10Gi"

QUANTITY_PATTERN: Final = r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?"


@dataclass(frozen=True, kw_only=True)
class Resources:
    """GPUs and the container's resource requests and limits."""

    gpus: int = field(default=0, metadata=schema("gpus", minimum=0, maximum=64))
    requests: dict[str, Any] = field(default_factory=dict, metadata=schema("requests"))
    limits: dict[str, Any] = field(default_factory=dict, metadata=schema("limits"))
    #: The trainer container's ``resources.claims`` (DRA): names of ``template.resourceClaims``.
    claims: tuple[dict[str, Any], ...] = field(default=(), metadata=schema("claims"))


@dataclass(frozen=True, kw_only=True)
class Checkpoint(CheckpointPolicy):
    """Where checkpoints live, plus the save policy the trainer is told (the base class)."""

    volume_claim_name: str | None = field(default=None, metadata=schema("volumeClaimName"))
    #: None means "create a claim of :data:`DEFAULT_VOLUME_SIZE`" unless a claim is named.
    size: str | None = field(
        default=None,
        metadata=schema("size", pattern=QUANTITY_PATTERN, accepts="a quantity such as 10Gi"),
    )
    storage_class_name: str | None = field(default=None, metadata=schema("storageClassName"))
    retain_volume: bool = field(default=False, metadata=schema("retainVolume"))

    @property
    def claim_size(self) -> str | None:
        """The size of the claim Rekindle creates, or None when the user names one."""
        if self.volume_claim_name is not None:
            return None
        return self.size or DEFAULT_VOLUME_SIZE


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff between attempts after failures."""

    initial_seconds: int = field(
        default=10, metadata=schema("initialSeconds", minimum=0, maximum=86_400)
    )
    max_seconds: int = field(default=300, metadata=schema("maxSeconds", minimum=0, maximum=86_400))
    factor: float = field(default=2.0, metadata=schema("factor", minimum=1.0, maximum=10.0))

    def delay(self, failures: int) -> float:
        """Seconds to wait before the attempt that follows failure number ``failures`` (1-based)."""
        if failures < 1:
            return 0.0
        raw = self.initial_seconds * self.factor ** (failures - 1)
        return float(min(raw, self.max_seconds))


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """How many failures and disruptions a job survives, and the backoff between them."""

    max_restarts: int = field(default=3, metadata=schema("maxRestarts", minimum=0, maximum=10_000))
    max_disruptions: int | None = field(default=None, metadata=schema("maxDisruptions", minimum=0))
    backoff: Backoff = field(default_factory=Backoff, metadata=schema("backoff"))
    pending_timeout_seconds: int = field(
        default=600, metadata=schema("pendingTimeoutSeconds", minimum=1, maximum=604_800)
    )
    #: No step for this long while the attempt runs: it ends as ``Stalled`` (a failure,
    #: restarted after the backoff). None: off.
    stall_timeout_seconds: int | None = field(
        default=None, metadata=schema("stallTimeoutSeconds", minimum=1, maximum=604_800)
    )
    #: With ``stallTimeoutSeconds``: the allowance of the attempt's first step (start-up,
    #: restore, compilation), counted from when the attempt runs.
    first_step_timeout_seconds: int = field(
        default=1800, metadata=schema("firstStepTimeoutSeconds", minimum=1, maximum=604_800)
    )
    #: A failure after this many epochs of progress since the previous failure
    #: starts the failure budget afresh; 0: never (every failure counts).
    reset_after_progress_epochs: int = field(
        default=0, metadata=schema("resetAfterProgressEpochs", minimum=0, maximum=1_000_000)
    )


@dataclass(frozen=True, kw_only=True)
class TemplateMetadata:
    """Labels and annotations added to the trainer pod."""

    labels: dict[str, str] = field(default_factory=dict, metadata=schema("labels"))
    annotations: dict[str, str] = field(default_factory=dict, metadata=schema("annotations"))


@dataclass(frozen=True, kw_only=True)
class PodTemplate:
    """An overlay onto the trainer pod (Kubernetes shapes, passed through)."""

    metadata: TemplateMetadata = field(
        default_factory=TemplateMetadata, metadata=schema("metadata")
    )
    node_selector: dict[str, str] = field(default_factory=dict, metadata=schema("nodeSelector"))
    tolerations: tuple[dict[str, Any], ...] = field(default=(), metadata=schema("tolerations"))
    affinity: dict[str, Any] = field(default_factory=dict, metadata=schema("affinity"))
    priority_class_name: str | None = field(default=None, metadata=schema("priorityClassName"))
    env: tuple[dict[str, Any], ...] = field(default=(), metadata=schema("env"))
    volumes: tuple[dict[str, Any], ...] = field(default=(), metadata=schema("volumes"))
    volume_mounts: tuple[dict[str, Any], ...] = field(default=(), metadata=schema("volumeMounts"))
    service_account_name: str | None = field(default=None, metadata=schema("serviceAccountName"))
    automount_service_account_token: bool = field(
        default=False, metadata=schema("automountServiceAccountToken")
    )
    image_pull_secrets: tuple[dict[str, Any], ...] = field(
        default=(), metadata=schema("imagePullSecrets")
    )
    runtime_class_name: str | None = field(default=None, metadata=schema("runtimeClassName"))
    scheduler_name: str | None = field(default=None, metadata=schema("schedulerName"))
    topology_spread_constraints: tuple[dict[str, Any], ...] = field(
        default=(), metadata=schema("topologySpreadConstraints")
    )
    #: Merged over Rekindle's pod ``securityContext`` (non-root, RuntimeDefault seccomp, …).
    security_context: dict[str, Any] = field(
        default_factory=dict, metadata=schema("securityContext")
    )
    #: Merged over the trainer container's ``securityContext``.
    container_security_context: dict[str, Any] = field(
        default_factory=dict, metadata=schema("containerSecurityContext")
    )
    init_containers: tuple[dict[str, Any], ...] = field(
        default=(), metadata=schema("initContainers")
    )
    #: Containers beside the trainer (the trainer is always the first container).
    sidecars: tuple[dict[str, Any], ...] = field(default=(), metadata=schema("sidecars"))
    #: Pod-level ``resourceClaims`` (DRA); the trainer uses those named in ``resources.claims``.
    resource_claims: tuple[dict[str, Any], ...] = field(
        default=(), metadata=schema("resourceClaims")
    )


class GangScheduler(enum.StrEnum):
    """Which batch scheduler places an attempt's pods all together (a PodGroup's API)."""

    #: Volcano: ``scheduling.volcano.sh/v1beta1`` PodGroup, scheduler ``volcano``.
    VOLCANO = "volcano"
    #: scheduler-plugins' coscheduling: ``scheduling.x-k8s.io/v1alpha1`` PodGroup.
    SCHEDULER_PLUGINS = "scheduler-plugins"


#: The ``schedulerName`` each gang scheduler is installed under by default.
DEFAULT_SCHEDULER_NAMES: Final = {
    GangScheduler.VOLCANO: "volcano",
    GangScheduler.SCHEDULER_PLUGINS: "scheduler-plugins-scheduler",
}


@dataclass(frozen=True, kw_only=True)
class GangScheduling:
    """All-or-nothing placement of an attempt's pods by a batch scheduler's PodGroup."""

    scheduler: GangScheduler = field(metadata=schema("scheduler", required=True))
    #: The pods' ``schedulerName``; None: the usual one (:data:`DEFAULT_SCHEDULER_NAMES`).
    scheduler_name: str | None = field(default=None, metadata=schema("schedulerName"))
    #: Volcano's Queue for the PodGroup (Volcano only); None: Volcano's ``default`` queue.
    queue: str | None = field(
        default=None,
        metadata=schema(
            "queue", pattern=r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", accepts="a Volcano Queue name"
        ),
    )
    #: scheduler-plugins' ``scheduleTimeoutSeconds`` (scheduler-plugins only).
    schedule_timeout_seconds: int | None = field(
        default=None, metadata=schema("scheduleTimeoutSeconds", minimum=1, maximum=86_400)
    )

    @property
    def pod_scheduler_name(self) -> str:
        """The ``schedulerName`` of every pod: the one set, else the scheduler's usual one."""
        return self.scheduler_name or DEFAULT_SCHEDULER_NAMES[self.scheduler]


@dataclass(frozen=True, kw_only=True)
class TrainingJobSpec:
    """``spec`` of a TrainingJob."""

    image: str = field(
        metadata=schema("image", required=True, pattern=r"\S+", accepts="an image reference")
    )
    entrypoint: str | None = field(default=None, metadata=training_config.ENTRYPOINT_SCHEMA)
    command: tuple[str, ...] | None = field(default=None, metadata=schema("command"))
    args: tuple[str, ...] | None = field(default=None, metadata=schema("args"))
    resources: Resources = field(default_factory=Resources, metadata=schema("resources"))
    #: Workers of each attempt (a gang under ``MultiWorkerMirroredStrategy``); 1: one pod.
    workers: int = field(
        default=1, metadata=schema("workers", minimum=1, maximum=contract.MAX_WORKERS)
    )
    training: Training = field(metadata=schema("training", required=True))
    checkpoint: Checkpoint = field(default_factory=Checkpoint, metadata=schema("checkpoint"))
    #: Absent in the manifest: early stopping is off (``EARLY_STOPPING_OFF``).
    early_stopping: EarlyStopping = field(
        default=training_config.EARLY_STOPPING_OFF,
        metadata=training_config.EARLY_STOPPING_SCHEMA,
    )
    restart_policy: RestartPolicy = field(
        default_factory=RestartPolicy, metadata=schema("restartPolicy")
    )
    active_deadline_seconds: int | None = field(
        default=None, metadata=schema("activeDeadlineSeconds", minimum=1)
    )
    ttl_seconds_after_finished: int | None = field(
        default=None, metadata=schema("ttlSecondsAfterFinished", minimum=0)
    )
    suspend: bool = field(default=False, metadata=schema("suspend"))
    termination_grace_period_seconds: int = field(
        default=120, metadata=schema("terminationGracePeriodSeconds", minimum=1, maximum=86_400)
    )
    template: PodTemplate = field(default_factory=PodTemplate, metadata=schema("template"))
    #: Kueue's LocalQueue for every pod of the job (else the job's own queue-name label).
    queue_name: str | None = field(
        default=None,
        metadata=schema(
            "queueName", pattern=r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", accepts="a LocalQueue name"
        ),
    )
    #: A PodGroup per attempt so a batch scheduler places all its pods or none; None: off.
    gang_scheduling: GangScheduling | None = field(default=None, metadata=schema("gangScheduling"))


def parse_spec(doc: Any) -> TrainingJobSpec:
    """Parse a TrainingJob's ``spec`` (defaults applied or not).

    Raises:
        documents.DocumentError: naming every field that is missing, unknown,
            of the wrong type or out of bounds (``spec.training.epochs: …``).
    """
    return documents.parse(TrainingJobSpec, doc, "spec")


def trainer_config(spec: TrainingJobSpec) -> TrainerConfig:
    """What the trainer is told: the spec's shared parts, as they are (nothing renamed)."""
    return documents.project(
        TrainerConfig,
        spec.training,
        entrypoint=spec.entrypoint,
        checkpoint=documents.project(CheckpointPolicy, spec.checkpoint),
        early_stopping=spec.early_stopping,
    )


def trainer_document(spec: TrainingJobSpec) -> dict[str, Any]:
    """The trainer configuration document for ``spec`` (``REKINDLE_CONFIG``, JSON-ready).

    Every field is written out (nulls included), so that no default of the
    trainer's decides anything.
    """
    doc: dict[str, Any] = documents.unparse(trainer_config(spec))
    return doc


def to_document(spec: TrainingJobSpec) -> dict[str, Any]:
    """The spec as a camelCase document with every default written out (nulls dropped)."""
    doc: dict[str, Any] = _drop_none(documents.unparse(spec))
    return doc


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
