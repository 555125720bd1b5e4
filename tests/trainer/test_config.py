"""The configuration document and environment: every field checked, errors name it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.config import (
    CheckpointPolicy,
    ConfigError,
    EarlyStoppingConfig,
    TrainerConfig,
    load_document,
    parse_config,
    parse_runtime_env,
)

CONTRACT_EXAMPLE = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 100,
    "batchSize": 32,
    "stepsPerEpoch": None,
    "seed": 1337,
    "deterministic": True,
    "mixedPrecision": False,
    "hyperparameters": {"learningRate": 0.001},
    "checkpoint": {
        "everyEpochs": 1,
        "everySteps": 0,
        "everySeconds": 0,
        "keep": 3,
        "keepBest": True,
    },
    "earlyStopping": {
        "enabled": True,
        "monitor": "val_loss",
        "minDelta": 0.0,
        "patience": 0,
        "mode": "auto",
        "baseline": None,
        "restoreBestWeights": False,
        "startFromEpoch": 0,
    },
}


def test_the_contract_example_parses() -> None:
    config = parse_config(CONTRACT_EXAMPLE)
    assert config.epochs == 100
    assert config.hyperparameters == {"learningRate": 0.001}
    assert config.checkpoint == CheckpointPolicy()
    assert config.early_stopping == EarlyStoppingConfig()


def test_empty_document_takes_the_defaults() -> None:
    assert parse_config({}) == TrainerConfig()


def test_every_early_stopping_parameter_is_read() -> None:
    doc = {
        "earlyStopping": {
            "enabled": False,
            "monitor": "val_accuracy",
            "minDelta": 0.01,
            "patience": 4,
            "mode": "max",
            "baseline": 0.9,
            "restoreBestWeights": True,
            "startFromEpoch": 2,
        }
    }
    assert parse_config(doc).early_stopping == EarlyStoppingConfig(
        enabled=False,
        monitor="val_accuracy",
        min_delta=0.01,
        patience=4,
        mode="max",
        baseline=0.9,
        restore_best_weights=True,
        start_from_epoch=2,
    )


@pytest.mark.parametrize(
    ("doc", "field", "accepted"),
    [
        ([], "(document)", "JSON object"),
        ({"epochs": 0}, "epochs", ">= 1"),
        ({"epochs": True}, "epochs", "whole number"),
        ({"epochs": 1.5}, "epochs", "whole number"),
        ({"batchSize": "32"}, "batchSize", "whole number"),
        ({"stepsPerEpoch": 0}, "stepsPerEpoch", ">= 1"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"seed": 2**40}, "seed", "from 0 to"),
        ({"deterministic": "yes"}, "deterministic", "true or false"),
        ({"mixedPrecision": 1}, "mixedPrecision", "true or false"),
        ({"hyperparameters": [1]}, "hyperparameters", "object"),
        ({"entrypoint": "digits"}, "entrypoint", "package.module:function"),
        ({"entrypoint": 3}, "entrypoint", "package.module:function"),
        ({"surprise": 1}, "surprise", "accepted fields"),
        ({"checkpoint": 5}, "checkpoint", "object"),
        ({"checkpoint": {"everySeconds": -1}}, "checkpoint.everySeconds", ">= 0"),
        ({"checkpoint": {"everySeconds": float("nan")}}, "checkpoint.everySeconds", "number"),
        ({"checkpoint": {"keep": 0}}, "checkpoint.keep", ">= 1"),
        ({"checkpoint": {"keepBest": None}}, "checkpoint.keepBest", "true or false"),
        ({"checkpoint": {"every": 1}}, "checkpoint.every", "everyEpochs, everySteps"),
        ({"earlyStopping": {"monitor": ""}}, "earlyStopping.monitor", "Keras log name"),
        ({"earlyStopping": {"mode": "up"}}, "earlyStopping.mode", "auto, min, max"),
        ({"earlyStopping": {"patience": -2}}, "earlyStopping.patience", ">= 0"),
        ({"earlyStopping": {"baseline": "low"}}, "earlyStopping.baseline", "a number"),
        ({"earlyStopping": {"minDelta": -0.1}}, "earlyStopping.minDelta", ">= 0"),
        ({"earlyStopping": {"startFromEpoch": 0.5}}, "earlyStopping.startFromEpoch", "whole"),
        ({"earlyStopping": {"restore": True}}, "earlyStopping.restore", "restoreBestWeights"),
    ],
)
def test_bad_fields_are_named_with_what_is_accepted(doc: Any, field: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert accepted in str(caught.value)


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
