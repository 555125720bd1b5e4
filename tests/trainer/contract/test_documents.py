"""The generic parser the operator and the trainer share: problems located, values moved."""

from __future__ import annotations

import pytest

from rekindle_trainer.contract import documents
from rekindle_trainer.contract.training_config import TrainerConfig, Training


def test_every_problem_is_located_under_the_path_given() -> None:
    with pytest.raises(documents.DocumentError) as caught:
        documents.parse(Training, {"epochs": 0, "seed": "x", "batch": 1}, "spec.training")
    assert caught.value.located == [
        ("spec.training.batch", "unknown field; did you mean 'batchSize'?"),
        ("spec.training.epochs", "must be >= 1, got 0"),
        ("spec.training.seed", "expected an integer, got 'x'"),
    ]
    assert caught.value.problems[1] == "spec.training.epochs: must be >= 1, got 0"


def test_without_a_path_fields_are_named_from_the_root() -> None:
    with pytest.raises(documents.DocumentError) as caught:
        documents.parse(TrainerConfig, {"checkpoint": {"keep": 0}})
    assert [where for where, _ in caught.value.located] == ["epochs", "checkpoint.keep"]
    with pytest.raises(documents.DocumentError) as caught:
        documents.parse(TrainerConfig, "epochs: 3")
    assert caught.value.located == [("(document)", "expected an object, got a string")]


def test_project_moves_the_shared_fields_between_related_declarations() -> None:
    training = Training(epochs=4, batch_size=8, hyperparameters={"units": 3})
    config = documents.project(TrainerConfig, training, entrypoint="m:f")
    assert config == TrainerConfig(
        epochs=4, batch_size=8, hyperparameters={"units": 3}, entrypoint="m:f"
    )
    assert documents.project(Training, config) == training
