"""The spec → trainer configuration projection is what the trainer accepts, field for field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rekindle_operator import trainer_config, validation
from rekindle_trainer import config as trainer

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CUSTOM = Path(__file__).parent / "manifests" / "valid" / "custom-command-spot.yaml"


@pytest.mark.parametrize("path", [*EXAMPLES, CUSTOM], ids=lambda p: p.name)
def test_every_example_projects_to_a_configuration_the_trainer_accepts(path: Path) -> None:
    spec = validation.load(path).spec
    parsed = trainer.parse_config(json.loads(trainer_config.to_json(spec)))
    assert parsed.entrypoint == spec.entrypoint
    assert parsed.epochs == spec.training.epochs
    assert parsed.batch_size == spec.training.batch_size
    assert parsed.steps_per_epoch == spec.training.steps_per_epoch
    assert parsed.seed == spec.training.seed
    assert parsed.deterministic == spec.training.deterministic
    assert parsed.mixed_precision == spec.training.mixed_precision
    assert parsed.hyperparameters == spec.training.hyperparameters
    assert parsed.checkpoint.every_epochs == spec.checkpoint.every_epochs
    assert parsed.checkpoint.every_steps == spec.checkpoint.every_steps
    assert parsed.checkpoint.every_seconds == spec.checkpoint.every_seconds
    assert parsed.checkpoint.keep == spec.checkpoint.keep
    assert parsed.checkpoint.keep_best == spec.checkpoint.keep_best
    early = spec.early_stopping
    assert parsed.early_stopping.enabled == early.enabled
    assert parsed.early_stopping.monitor == early.monitor
    assert parsed.early_stopping.min_delta == early.min_delta
    assert parsed.early_stopping.patience == early.patience
    assert parsed.early_stopping.mode == early.mode.value
    assert parsed.early_stopping.baseline == early.baseline
    assert parsed.early_stopping.restore_best_weights == early.restore_best_weights
    assert parsed.early_stopping.start_from_epoch == early.start_from_epoch


def test_the_document_has_the_shape_docs_contract_md_shows() -> None:
    spec = validation.load(REPO / "examples" / "digits.yaml").spec
    doc = trainer_config.project(spec)
    assert list(doc) == [
        "entrypoint",
        "epochs",
        "batchSize",
        "stepsPerEpoch",
        "seed",
        "deterministic",
        "mixedPrecision",
        "hyperparameters",
        "checkpoint",
        "earlyStopping",
    ]
    assert doc["entrypoint"] == "rekindle_trainer.examples.digits:build"
    assert doc["earlyStopping"]["monitor"] == "val_loss"


def test_a_spec_without_early_stopping_turns_it_off_explicitly() -> None:
    """The trainer's own default is on; the projection must never leave it to that."""
    spec = validation.load(REPO / "examples" / "regression.yaml").spec
    doc = trainer_config.project(spec)
    assert doc["earlyStopping"]["enabled"] is False
    assert trainer.parse_config(doc).early_stopping.enabled is False


def test_a_command_job_has_no_entrypoint() -> None:
    spec = validation.load(CUSTOM).spec
    assert "entrypoint" not in trainer_config.project(spec)
