"""The training configuration, declared once: what the operator sends and the trainer reads.

The TrainingJob's ``spec.training``, the save policy of ``spec.checkpoint`` and
``spec.earlyStopping`` are these dataclasses; the operator's spec reuses them
(``rekindle_operator.core.job_spec``), and the trainer parses its configuration
document (``REKINDLE_CONFIG``, see ``docs/contract.md``) into
:class:`TrainerConfig` with the same parser (:mod:`.documents`). Defaults and
bounds are the CRD's (``charts/rekindle/crds/``), which stays the user-facing
source; a test compares every declaration here with it.

Example:
    >>> from rekindle_trainer.contract import documents, training_config
    >>> c = documents.parse(training_config.TrainerConfig, {"epochs": 5})
    >>> c.batch_size, c.checkpoint.keep, c.early_stopping.enabled
    (32, 3, False)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

from rekindle_trainer.contract.documents import schema

#: ``package.module:function``, the trainer's entrypoint.
ENTRYPOINT_PATTERN: Final = (
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
)
#: The ``entrypoint`` field (spec and document); absent when the user runs their own command.
ENTRYPOINT_SCHEMA: Final = schema(
    "entrypoint",
    pattern=ENTRYPOINT_PATTERN,
    accepts="module:function, e.g. rekindle_trainer.examples.digits:build",
)


class EarlyStoppingMode(enum.StrEnum):
    """Keras ``EarlyStopping(mode=…)``: which direction of the metric is better."""

    AUTO = "auto"
    MIN = "min"
    MAX = "max"


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
class CheckpointPolicy:
    """When to save and how many checkpoints to keep (0 turns a trigger off)."""

    every_epochs: int = field(
        default=1, metadata=schema("everyEpochs", minimum=0, maximum=1_000_000)
    )
    every_steps: int = field(default=0, metadata=schema("everySteps", minimum=0))
    every_seconds: int = field(
        default=0, metadata=schema("everySeconds", minimum=0, maximum=604_800)
    )
    keep: int = field(default=3, metadata=schema("keep", minimum=1, maximum=1000))
    keep_best: bool = field(default=True, metadata=schema("keepBest"))


@dataclass(frozen=True, kw_only=True)
class EarlyStopping:
    """Every ``keras.callbacks.EarlyStopping`` parameter, in camelCase.

    A section that is written in is on unless it says ``enabled: false``; one
    that is left out is :data:`EARLY_STOPPING_OFF`.
    """

    enabled: bool = field(default=True, metadata=schema("enabled"))
    monitor: str = field(
        default="val_loss",
        metadata=schema("monitor", pattern=r".+", accepts="a metric name such as val_loss"),
    )
    min_delta: float = field(default=0.0, metadata=schema("minDelta"))
    patience: int = field(default=0, metadata=schema("patience", minimum=0, maximum=1_000_000))
    mode: EarlyStoppingMode = field(default=EarlyStoppingMode.AUTO, metadata=schema("mode"))
    baseline: float | None = field(default=None, metadata=schema("baseline"))
    restore_best_weights: bool = field(default=False, metadata=schema("restoreBestWeights"))
    start_from_epoch: int = field(default=0, metadata=schema("startFromEpoch", minimum=0))


def mode_warning(early_stopping: EarlyStopping) -> str | None:
    """A warning for ``mode: max`` on a loss-like monitor: ``loss``, ``val_loss``, ``<out>_loss``.

    Keras takes the mode as given, so the highest loss would count as the best:
    allowed, but almost surely a mistake. ``None`` when there is nothing to say
    (or the rule is off: neither stopping nor restoring the best weights).
    """
    es = early_stopping
    if es.mode is not EarlyStoppingMode.MAX or not (es.enabled or es.restore_best_weights):
        return None
    name = es.monitor.removeprefix("val_")
    if name != "loss" and not name.endswith("_loss"):
        return None
    return (
        f"earlyStopping.mode is max, but {es.monitor!r} is a loss (lower is better): the "
        "highest value will count as the best; set mode to min unless that is meant"
    )


#: What a job or configuration without an ``earlyStopping`` section gets: early stopping off.
EARLY_STOPPING_OFF: Final = EarlyStopping(enabled=False)
#: The ``earlyStopping`` field (spec and document), :data:`EARLY_STOPPING_OFF` when left
#: out: Rekindle applies this default, not the CRD, so that a section written in (even
#: empty) is told apart from one left out.
EARLY_STOPPING_SCHEMA: Final = schema("earlyStopping", schema_default=False)


@dataclass(frozen=True, kw_only=True)
class TrainerConfig(Training):
    """The trainer configuration document (``REKINDLE_CONFIG``, see ``docs/contract.md``).

    ``spec.training``'s fields at the top level, then the entrypoint, the save
    policy and early stopping, each declared as in the TrainingJob's spec.
    """

    entrypoint: str | None = field(default=None, metadata=ENTRYPOINT_SCHEMA)
    checkpoint: CheckpointPolicy = field(
        default_factory=CheckpointPolicy, metadata=schema("checkpoint")
    )
    early_stopping: EarlyStopping = field(
        default=EARLY_STOPPING_OFF, metadata=EARLY_STOPPING_SCHEMA
    )
