"""Project a TrainingJob spec onto the trainer configuration document.

The operator (in ``REKINDLE_CONFIG``) and ``rekindle run`` (in a file named by
``REKINDLE_CONFIG_FILE``) both send the trainer this one document; its shape
is fixed in ``docs/contract.md`` and parsed by ``rekindle_trainer.config``.
Every field is written out, so that the trainer's own defaults never decide
anything (early stopping in particular: absent from the spec means off).
"""

from __future__ import annotations

import json
from typing import Any

from rekindle_operator.spec import TrainingJobSpec


def project(spec: TrainingJobSpec) -> dict[str, Any]:
    """The trainer configuration document for ``spec`` (camelCase, JSON-ready)."""
    training = spec.training
    checkpoint = spec.checkpoint
    early = spec.early_stopping
    doc: dict[str, Any] = {}
    if spec.entrypoint is not None:
        doc["entrypoint"] = spec.entrypoint
    doc.update(
        {
            "epochs": training.epochs,
            "batchSize": training.batch_size,
            "stepsPerEpoch": training.steps_per_epoch,
            "seed": training.seed,
            "deterministic": training.deterministic,
            "mixedPrecision": training.mixed_precision,
            "hyperparameters": dict(training.hyperparameters),
            "checkpoint": {
                "everyEpochs": checkpoint.every_epochs,
                "everySteps": checkpoint.every_steps,
                "everySeconds": checkpoint.every_seconds,
                "keep": checkpoint.keep,
                "keepBest": checkpoint.keep_best,
            },
            "earlyStopping": {
                "enabled": early.enabled,
                "monitor": early.monitor,
                "minDelta": early.min_delta,
                "patience": early.patience,
                "mode": early.mode.value,
                "baseline": early.baseline,
                "restoreBestWeights": early.restore_best_weights,
                "startFromEpoch": early.start_from_epoch,
            },
        }
    )
    return doc


def to_json(spec: TrainingJobSpec) -> str:
    """:func:`project` as compact JSON, the value of ``REKINDLE_CONFIG``."""
    return json.dumps(project(spec), separators=(",", ":"), sort_keys=True)
