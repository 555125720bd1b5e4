"""Manifests are validated as the API server would: schema, defaults, CEL rules, clear messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rekindle_operator.core import job_spec
from rekindle_operator.resources import validation

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
VALID = EXAMPLES + sorted((Path(__file__).parents[1] / "manifests" / "valid").glob("*.yaml"))
INVALID = sorted((Path(__file__).parents[1] / "manifests" / "invalid").glob("*.yaml"))


def _expected(path: Path) -> list[str]:
    """The ``# expect: …`` lines at the top of an invalid manifest."""
    return [
        line.removeprefix("# expect:").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    ]


def test_there_are_examples_and_invalid_manifests() -> None:
    assert len(EXAMPLES) >= 3
    assert len(INVALID) >= 15


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_example_is_valid(path: Path) -> None:
    manifest = validation.load(path)
    assert manifest.name == yaml.safe_load(path.read_text())["metadata"]["name"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_every_invalid_manifest_is_rejected_with_the_message_a_user_reads(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(validation.ManifestError) as error:
        validation.load(path)
    text = str(error.value)
    assert text.startswith(f"{path} is not a valid TrainingJob:")
    lines = [str(p) for p in error.value.problems]
    for wanted in expected:
        assert any(line.startswith(wanted) for line in lines), (wanted, lines)


def test_defaults_fill_absent_fields_and_keep_given_ones() -> None:
    doc: dict[str, Any] = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "d"},
        "spec": {
            "image": "t:1",
            "entrypoint": "m:f",
            "training": {"epochs": 3, "batchSize": 8},
            "earlyStopping": {"patience": 2},
        },
    }
    defaulted = validation.apply_defaults(doc)
    spec = defaulted["spec"]
    assert spec["training"]["batchSize"] == 8
    assert spec["training"]["seed"] == 1337
    assert spec["restartPolicy"]["backoff"] == {
        "initialSeconds": 10,
        "maxSeconds": 300,
        "factor": 2.0,
    }
    assert spec["earlyStopping"] == {
        "enabled": True,
        "monitor": "val_loss",
        "minDelta": 0.0,
        "patience": 2,
        "mode": "auto",
        "restoreBestWeights": False,
        "startFromEpoch": 0,
    }
    assert "size" not in spec["checkpoint"]
    assert doc["spec"]["training"] == {"epochs": 3, "batchSize": 8}, "the input is not changed"


def test_null_means_absent_as_on_the_api_server() -> None:
    doc = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "n"},
        "spec": {
            "image": "t:1",
            "entrypoint": "m:f",
            "command": None,
            "training": {"epochs": 3, "stepsPerEpoch": None, "batchSize": None},
            "checkpoint": {"volumeClaimName": None, "size": "5Gi"},
        },
    }
    assert validation.validate(doc) == []
    manifest = validation.check(doc)
    assert manifest.spec.training.batch_size == 32
    assert manifest.spec.checkpoint.claim_size == "5Gi"


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "many"},
        "spec": {"image": "t:1", "entrypoint": "m:f", "training": {"epochs": -1, "seed": -2}},
    }
    fields = [p.field for p in validation.validate(doc)]
    assert fields == ["spec.training.epochs", "spec.training.seed"]


def test_a_file_with_two_documents_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(EXAMPLES[0].read_text() + "\n---\n" + EXAMPLES[0].read_text())
    with pytest.raises(validation.ManifestError, match="expected one YAML document"):
        validation.load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(validation.ManifestError, match="cannot read it"):
        validation.load(tmp_path / "absent.yaml")


def test_a_status_written_by_the_engine_validates_against_the_crd_status_schema() -> None:
    from datetime import UTC, datetime

    from rekindle_operator.core import engine, job_status

    s = job_spec.parse_spec({"image": "t:1", "entrypoint": "m:f", "training": {"epochs": 3}})
    decision = engine.decide(s, job_status.Status(), None, datetime(2026, 1, 1, tzinfo=UTC))
    doc = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "st"},
        "spec": job_spec.to_document(s),
        "status": job_status.to_document(decision.status),
    }
    assert validation.validate(doc) == []


def test_an_integer_beyond_64_bits_is_a_problem_not_a_crash() -> None:
    doc = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "big"},
        "spec": {
            "image": "t:1",
            "entrypoint": "m:f",
            "training": {"epochs": 3, "hyperparameters": {"units": 2**64}},
        },
    }
    (problem,) = validation.validate(doc)
    assert problem.field == "spec.training.hyperparameters.units"
    assert "64 bits" in problem.message


def test_the_manifest_in_docs_resource_md_is_valid() -> None:
    """The overview in docs/resource.md stays true to the CRD."""
    text = (REPO / "docs" / "resource.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    manifest = validation.check(yaml.safe_load(block), "docs/resource.md")
    assert manifest.spec.resources.gpus == 1
    assert manifest.spec.checkpoint.claim_size == "10Gi"
