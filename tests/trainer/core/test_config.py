"""The configuration document and environment: every field checked, errors name it.

The document's fields, defaults and bounds are the shared declarations of
``rekindle_trainer.contract.training_config`` (the TrainingJob's); these tests
check that the trainer reads them as ``docs/contract.md`` says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.contract.training_config import (
    EARLY_STOPPING_OFF,
    CheckpointPolicy,
    EarlyStopping,
    EarlyStoppingMode,
)
from rekindle_trainer.core.config import (
    ConfigError,
    TrainerConfig,
    load_document,
    parse_config,
    parse_runtime_env,
)
from tests.support import contract_doc


def test_the_contract_example_parses() -> None:
    config = parse_config(contract_doc.trainer_config_example())
    assert config == TrainerConfig(
        entrypoint="rekindle_trainer.examples.digits:build",
        epochs=100,
        hyperparameters={"learningRate": 0.001},
        early_stopping=EarlyStopping(),
    )


def test_a_document_with_only_epochs_takes_the_declared_defaults() -> None:
    config = parse_config({"epochs": 3})
    assert config == TrainerConfig(epochs=3)
    assert config.checkpoint == CheckpointPolicy()
    assert config.early_stopping == EARLY_STOPPING_OFF


def test_null_is_the_same_as_left_out() -> None:
    doc = {"epochs": 3, "stepsPerEpoch": None, "checkpoint": None, "earlyStopping": None}
    assert parse_config(doc) == TrainerConfig(epochs=3)


def test_early_stopping_written_in_is_on_and_left_out_is_off() -> None:
    """As for a TrainingJob: an empty section turns it on with Keras' defaults."""
    assert parse_config({"epochs": 3}).early_stopping.enabled is False
    assert parse_config({"epochs": 3, "earlyStopping": {}}).early_stopping == EarlyStopping()


def test_every_early_stopping_parameter_is_read() -> None:
    doc = {
        "epochs": 3,
        "earlyStopping": {
            "enabled": False,
            "monitor": "val_accuracy",
            "minDelta": 0.01,
            "patience": 4,
            "mode": "max",
            "baseline": 0.9,
            "restoreBestWeights": True,
            "startFromEpoch": 2,
        },
    }
    assert parse_config(doc).early_stopping == EarlyStopping(
        enabled=False,
        monitor="val_accuracy",
        min_delta=0.01,
        patience=4,
        mode=EarlyStoppingMode.MAX,
        baseline=0.9,
        restore_best_weights=True,
        start_from_epoch=2,
    )


def test_a_negative_min_delta_is_accepted_its_sign_ignored_as_keras_does() -> None:
    config = parse_config({"epochs": 1, "earlyStopping": {"minDelta": -0.25}})
    assert config.early_stopping.min_delta == -0.25  # EarlyStopper takes |minDelta|


def test_restoring_the_best_weights_with_keep_best_is_accepted() -> None:
    doc = {"epochs": 1, "earlyStopping": {"restoreBestWeights": True}}
    assert parse_config(doc).checkpoint.keep_best
    disabled = {**doc, "checkpoint": {"keepBest": False}, "earlyStopping": {}}
    assert not parse_config(disabled).checkpoint.keep_best


@pytest.mark.parametrize(
    ("doc", "field", "accepted"),
    [
        ({}, "epochs", "required"),
        ({"epochs": 0}, "epochs", "must be >= 1, got 0"),
        ({"epochs": True}, "epochs", "expected an integer"),
        ({"epochs": 1.5}, "epochs", "expected an integer"),
        ({"batchSize": "32"}, "batchSize", "expected an integer"),
        ({"stepsPerEpoch": 0}, "stepsPerEpoch", "must be >= 1"),
        ({"seed": -1}, "seed", "must be >= 0"),
        ({"seed": 2**40}, "seed", "must be <= 2147483647"),
        ({"deterministic": "yes"}, "deterministic", "true or false"),
        ({"mixedPrecision": 1}, "mixedPrecision", "true or false"),
        ({"hyperparameters": [1]}, "hyperparameters", "expected an object"),
        ({"entrypoint": "digits"}, "entrypoint", "module:function, e.g."),
        ({"entrypoint": 3}, "entrypoint", "expected a string"),
        ({"surprise": 1}, "surprise", "unknown field; known fields:"),
        ({"epoch": 3}, "epoch", "unknown field; did you mean 'epochs'?"),
        ({"checkpoint": 5}, "checkpoint", "expected an object"),
        ({"checkpoint": {"everySeconds": -1}}, "checkpoint.everySeconds", "must be >= 0"),
        ({"checkpoint": {"everySeconds": 0.5}}, "checkpoint.everySeconds", "expected an integer"),
        ({"checkpoint": {"keep": 0}}, "checkpoint.keep", "must be >= 1, got 0"),
        ({"checkpoint": {"keepBest": "no"}}, "checkpoint.keepBest", "true or false"),
        ({"checkpoint": {"every": 1}}, "checkpoint.every", "did you mean 'every"),
        ({"earlyStopping": {"monitor": ""}}, "earlyStopping.monitor", "a metric name"),
        ({"earlyStopping": {"mode": "up"}}, "earlyStopping.mode", "not one of auto, min, max"),
        ({"earlyStopping": {"patience": -2}}, "earlyStopping.patience", "must be >= 0"),
        ({"earlyStopping": {"baseline": "low"}}, "earlyStopping.baseline", "finite number"),
        ({"earlyStopping": {"baseline": float("nan")}}, "earlyStopping.baseline", "finite"),
        ({"earlyStopping": {"minDelta": "0.1"}}, "earlyStopping.minDelta", "finite number"),
        (
            {"earlyStopping": {"restoreBestWeights": True}, "checkpoint": {"keepBest": False}},
            "earlyStopping.restoreBestWeights",
            "needs checkpoint.keepBest (true by default)",
        ),
        ({"earlyStopping": {"startFromEpoch": 0.5}}, "earlyStopping.startFromEpoch", "integer"),
        ({"earlyStopping": {"restore": True}}, "earlyStopping.restore", "restoreBestWeights"),
    ],
)
def test_bad_fields_are_named_with_what_is_accepted(doc: Any, field: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"epochs": 1, **doc} if doc else doc)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert accepted in str(caught.value)


def test_a_document_that_is_not_an_object_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config([])
    assert caught.value.field == "(document)"
    assert "expected an object, got a list" in str(caught.value)


def test_every_problem_is_listed_the_first_names_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"epochs": 0, "checkpoint": {"keep": 0}})
    assert caught.value.field == "epochs"
    assert str(caught.value) == "epochs: must be >= 1, got 0; checkpoint.keep: must be >= 1, got 0"


def test_document_from_environment_or_file(tmp_path: Path) -> None:
    assert load_document({contract.ENV_CONFIG: '{"epochs": 3}'}) == {"epochs": 3}
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("epochs: 4\nearlyStopping:\n  patience: 2\n")
    assert load_document({contract.ENV_CONFIG_FILE: str(yaml_file)})["epochs"] == 4
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"epochs": 5}))
    both = {contract.ENV_CONFIG: '{"epochs": 6}', contract.ENV_CONFIG_FILE: str(json_file)}
    assert load_document(both) == {"epochs": 6}
    with pytest.raises(ConfigError, match=contract.ENV_CONFIG):
        load_document({contract.ENV_CONFIG: "{epochs"})
    with pytest.raises(ConfigError, match="cannot read"):
        load_document({contract.ENV_CONFIG_FILE: str(tmp_path / "absent.json")})


def test_runtime_environment() -> None:
    runtime = parse_runtime_env(
        {
            contract.ENV_CHECKPOINT_DIR: "/ckpt/job",
            contract.ENV_ATTEMPT: "3",
            contract.ENV_METRICS_PORT: "0",
            contract.ENV_PROGRESS_FILE: "/tmp/p.jsonl",
        }
    )
    assert runtime.checkpoint_dir == Path("/ckpt/job")
    assert runtime.attempt == 3
    assert runtime.metrics_port == 0
    assert runtime.progress_file == Path("/tmp/p.jsonl")
    assert runtime.termination_log == Path(contract.DEFAULT_TERMINATION_LOG)
    assert runtime.report_timing is False  # an operator before goodput: no timing
    asked = parse_runtime_env(
        {contract.ENV_CHECKPOINT_DIR: "/ckpt/job", contract.ENV_REPORT_TIMING: "1"}
    )
    assert asked.report_timing is True


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, contract.ENV_CHECKPOINT_DIR),
        ({contract.ENV_CHECKPOINT_DIR: "/c", contract.ENV_ATTEMPT: "0"}, contract.ENV_ATTEMPT),
        (
            {contract.ENV_CHECKPOINT_DIR: "/c", contract.ENV_METRICS_PORT: "x"},
            contract.ENV_METRICS_PORT,
        ),
        (
            {contract.ENV_CHECKPOINT_DIR: "/c", contract.ENV_METRICS_PORT: "70000"},
            contract.ENV_METRICS_PORT,
        ),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_runtime_env(env)
    assert caught.value.field == name


@pytest.mark.parametrize("inside", [False, True])
def test_a_checkpoint_folder_that_is_a_file_is_invalid(tmp_path: Path, inside: bool) -> None:
    """Exit 2 before anything trains, not a crash that is retried (issue 14, point 11)."""
    blocker = tmp_path / "ckpt"
    blocker.write_text("not a folder")
    folder = blocker / "job" if inside else blocker
    with pytest.raises(ConfigError) as caught:
        parse_runtime_env({contract.ENV_CHECKPOINT_DIR: str(folder)})
    assert caught.value.field == contract.ENV_CHECKPOINT_DIR
    assert f"{folder} " in str(caught.value)
    assert "not a folder" in str(caught.value)
    assert "spec.checkpoint" in str(caught.value)
    assert not (tmp_path / "ckpt").is_dir()


def test_a_checkpoint_folder_that_does_not_exist_yet_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "volume" / "job"
    assert parse_runtime_env({contract.ENV_CHECKPOINT_DIR: str(folder)}).checkpoint_dir == folder
    assert not folder.exists()  # nothing is created while parsing
