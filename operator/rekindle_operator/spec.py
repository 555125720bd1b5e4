"""The typed ``spec`` of a TrainingJob, with the CRD's defaults and bounds.

Every field carries :func:`rekindle_operator.parsing.schema` metadata; a test
walks these declarations and the CRD in ``charts/rekindle/crds/`` side by side
and fails on any difference in names, defaults, bounds, enums or required
fields. Cross-field rules live in the CRD's CEL rules (see
:mod:`rekindle_operator.validation`), not here.

Example:
    >>> from rekindle_operator import spec
    >>> s = spec.parse_spec({"image": "trainer:1", "entrypoint": "m:f",
    ...                      "training": {"epochs": 5}})
    >>> s.training.batch_size, s.restart_policy.max_restarts
    (32, 3)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

from rekindle_operator import parsing
from rekindle_operator.parsing import schema

API_GROUP: Final = "rekindle.dev"
API_VERSION: Final = "v1alpha1"
KIND: Final = "TrainingJob"
PLURAL: Final = "trainingjobs"
SINGULAR: Final = "trainingjob"
SHORT_NAME: Final = "tj"
CATEGORY: Final = "rekindle"

#: The checkpoint claim size used when the user names neither a claim nor a size.
DEFAULT_VOLUME_SIZE: Final = "10Gi"

ENTRYPOINT_PATTERN: Final = (
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
)
QUANTITY_PATTERN: Final = r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?"


class EarlyStoppingMode(enum.StrEnum):
    """Keras ``EarlyStopping(mode=…)``: which direction of the metric is better."""

    AUTO = "auto"
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True, kw_only=True)
class Resources:
    """GPUs and the container's resource requests and limits."""

    gpus: int = field(default=0, metadata=schema("gpus", minimum=0, maximum=64))
    requests: dict[str, Any] = field(default_factory=dict, metadata=schema("requests"))
    limits: dict[str, Any] = field(default_factory=dict, metadata=schema("limits"))


@dataclass(frozen=True, kw_only=True)
class Training:
    """The epoch budget, batch size, seeds and free-form hyperparameters."""

    epochs: int = field(metadata=schema("epochs", required=True, minimum=1, maximum=1_000_000))
    batch_size: int = field(default=32, metadata=schema("batchSize", minimum=1, maximum=1_048_576))
    steps_per_epoch: int | None = field(default=None, metadata=schema("stepsPerEpoch", minimum=1))
    seed: int = field(default=1337, metadata=schema("seed", minimum=0, maximum=2_147_483_647))
    deterministic: bool = field(default=True, metadata=schema("deterministic"))
    mixed_precision: bool = field(default=False, metadata=schema("mixedPrecision"))
    hyperparameters: dict[str, Any] = field(
        default_factory=dict, metadata=schema("hyperparameters")
    )


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """Where checkpoints live, how often they are saved and how many are kept."""

    volume_claim_name: str | None = field(default=None, metadata=schema("volumeClaimName"))
    #: None means "create a claim of :data:`DEFAULT_VOLUME_SIZE`" unless a claim is named.
    size: str | None = field(
        default=None,
        metadata=schema("size", pattern=QUANTITY_PATTERN, accepts="a quantity such as 10Gi"),
    )
    storage_class_name: str | None = field(default=None, metadata=schema("storageClassName"))
    retain_volume: bool = field(default=False, metadata=schema("retainVolume"))
    every_epochs: int = field(
        default=1, metadata=schema("everyEpochs", minimum=0, maximum=1_000_000)
    )
    every_steps: int = field(default=0, metadata=schema("everySteps", minimum=0))
    every_seconds: int = field(
        default=0, metadata=schema("everySeconds", minimum=0, maximum=604_800)
    )
    keep: int = field(default=3, metadata=schema("keep", minimum=1, maximum=1000))
    keep_best: bool = field(default=True, metadata=schema("keepBest"))

    @property
    def claim_size(self) -> str | None:
        """The size of the claim Rekindle creates, or None when the user names one."""
        if self.volume_claim_name is not None:
            return None
        return self.size or DEFAULT_VOLUME_SIZE


@dataclass(frozen=True, kw_only=True)
class EarlyStopping:
    """Every ``keras.callbacks.EarlyStopping`` parameter, in camelCase."""

    enabled: bool = field(default=True, metadata=schema("enabled"))
    monitor: str = field(
        default="val_loss",
        metadata=schema("monitor", pattern=r".+", accepts="a metric name such as val_loss"),
    )
    min_delta: float = field(default=0.0, metadata=schema("minDelta", minimum=0))
    patience: int = field(default=0, metadata=schema("patience", minimum=0, maximum=1_000_000))
    mode: EarlyStoppingMode = field(default=EarlyStoppingMode.AUTO, metadata=schema("mode"))
    baseline: float | None = field(default=None, metadata=schema("baseline"))
    restore_best_weights: bool = field(default=False, metadata=schema("restoreBestWeights"))
    start_from_epoch: int = field(default=0, metadata=schema("startFromEpoch", minimum=0))


#: What a TrainingJob without an ``earlyStopping`` section gets: early stopping off.
EARLY_STOPPING_OFF: Final = EarlyStopping(enabled=False)


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


@dataclass(frozen=True, kw_only=True)
class TrainingJobSpec:
    """``spec`` of a TrainingJob."""

    image: str = field(
        metadata=schema("image", required=True, pattern=r"\S+", accepts="an image reference")
    )
    entrypoint: str | None = field(
        default=None,
        metadata=schema(
            "entrypoint",
            pattern=ENTRYPOINT_PATTERN,
            accepts="module:function, e.g. rekindle_trainer.examples.digits:build",
        ),
    )
    command: tuple[str, ...] | None = field(default=None, metadata=schema("command"))
    args: tuple[str, ...] | None = field(default=None, metadata=schema("args"))
    resources: Resources = field(default_factory=Resources, metadata=schema("resources"))
    training: Training = field(metadata=schema("training", required=True))
    checkpoint: Checkpoint = field(default_factory=Checkpoint, metadata=schema("checkpoint"))
    #: Absent in the manifest: early stopping is off (:data:`EARLY_STOPPING_OFF`).
    early_stopping: EarlyStopping = field(
        default=EARLY_STOPPING_OFF, metadata=schema("earlyStopping", schema_default=False)
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


def parse_spec(doc: Any) -> TrainingJobSpec:
    """Parse a TrainingJob's ``spec`` (defaults applied or not).

    Raises:
        parsing.DocumentError: naming every field that is missing, unknown,
            of the wrong type or out of bounds (``spec.training.epochs: …``).
    """
    return parsing.parse(TrainingJobSpec, doc, "spec")


def to_document(spec: TrainingJobSpec) -> dict[str, Any]:
    """The spec as a camelCase document with every default written out (nulls dropped)."""
    doc: dict[str, Any] = _drop_none(parsing.unparse(spec))
    return doc


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
