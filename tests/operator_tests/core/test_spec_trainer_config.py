"""The spec → trainer configuration projection is what the trainer accepts, field for field.

Both sides declare the document once (``rekindle_trainer.contract.training_config``),
so these tests compare whole values and shapes, never a copied list of fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rekindle_operator.core import job_spec
from rekindle_operator.resources import validation
from rekindle_trainer.contract import documents
from rekindle_trainer.contract.training_config import CheckpointPolicy, Training
from rekindle_trainer.core import config
from tests.support import contract_doc

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CUSTOM = Path(__file__).parents[1] / "manifests" / "valid" / "custom-command-spot.yaml"


@pytest.mark.parametrize("path", [*EXAMPLES, CUSTOM], ids=lambda p: p.name)
def test_every_example_projects_to_a_configuration_the_trainer_accepts(path: Path) -> None:
    spec = validation.load(path).spec
    sent = json.dumps(job_spec.trainer_document(spec))
    parsed = config.parse_config(json.loads(sent))
    assert parsed == job_spec.trainer_config(spec)
    assert parsed.entrypoint == spec.entrypoint
    assert documents.project(Training, parsed) == spec.training
    assert parsed.checkpoint == documents.project(CheckpointPolicy, spec.checkpoint)
    assert parsed.early_stopping == spec.early_stopping


def _shape(doc: Any) -> Any:
    """The keys of a document, nested objects included, without the values."""
    if isinstance(doc, dict):
        return {key: _shape(value) for key, value in doc.items() if key != "hyperparameters"}
    return None


def test_the_document_has_the_shape_docs_contract_md_shows() -> None:
    spec = validation.load(REPO / "examples" / "digits.yaml").spec
    doc = job_spec.trainer_document(spec)
    assert _shape(doc) == _shape(contract_doc.trainer_config_example())
    assert doc["entrypoint"] == "rekindle_trainer.examples.digits:build"
    assert doc["earlyStopping"]["monitor"] == "val_loss"


def test_a_spec_without_early_stopping_turns_it_off_explicitly() -> None:
    """The document says so itself, whatever the trainer's default for a missing section."""
    spec = validation.load(REPO / "examples" / "regression.yaml").spec
    doc = job_spec.trainer_document(spec)
    assert doc["earlyStopping"]["enabled"] is False
    assert config.parse_config(doc).early_stopping.enabled is False


def test_a_command_job_has_no_entrypoint() -> None:
    spec = validation.load(CUSTOM).spec
    doc = job_spec.trainer_document(spec)
    assert doc["entrypoint"] is None
    assert config.parse_config(doc).entrypoint is None


def test_the_volume_fields_stay_with_the_operator() -> None:
    """``spec.checkpoint`` is the save policy plus the volume; only the policy is sent."""
    spec = validation.load(CUSTOM).spec
    sent = job_spec.trainer_document(spec)["checkpoint"]
    assert sent == documents.unparse(documents.project(CheckpointPolicy, spec.checkpoint))
    assert set(sent) < set(documents.unparse(spec.checkpoint))
