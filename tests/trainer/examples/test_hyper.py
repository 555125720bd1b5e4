"""The examples' hyperparameters: a bad value names its field and the range, before training."""

from __future__ import annotations

from typing import Any

import pytest

from rekindle_trainer.core.config import ConfigError, TrainerConfig, parse_config
from rekindle_trainer.examples import digits, digits_records, regression
from rekindle_trainer.examples.hyper import number, whole


def _config(**hyperparameters: Any) -> TrainerConfig:
    return parse_config(
        {
            "entrypoint": "rekindle_trainer.examples.digits:build",
            "epochs": 2,
            "hyperparameters": hyperparameters,
        }
    )


@pytest.mark.parametrize(("value", "expected"), [(None, 0.5), (0.25, 0.25), (1, 1.0), (0, 0.0)])
def test_a_number_in_range_or_its_default(value: Any, expected: float) -> None:
    config = _config() if value is None else _config(rate=value)
    assert number(config, "rate", 0.5, 0.0, 1.0) == expected


@pytest.mark.parametrize("value", [1.5, -0.1, True, "0.3", None, [1]])
def test_a_number_out_of_range_or_not_a_number_names_the_field(value: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        number(_config(rate=value), "rate", 0.5, 0.0, 1.0)
    assert str(raised.value) == (
        f"hyperparameters.rate: expected a number from 0.0 to 1.0, got {value!r}"
    )


@pytest.mark.parametrize("value", [2.0, 0, 11, False, "3"])
def test_a_whole_number_refuses_floats_bools_and_the_out_of_range(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^hyperparameters\.shards: expected a whole number"):
        whole(_config(shards=value), "shards", 4, 1, 10)
    assert whole(_config(shards=7), "shards", 4, 1, 10) == 7


@pytest.mark.parametrize(
    ("module", "field", "value"),
    [
        (digits, "dropout", 2),
        (digits_records, "shards", 0),
        (regression, "samples", 1.5),
    ],
)
def test_each_example_refuses_a_bad_hyperparameter_before_it_builds(
    module: Any, field: str, value: Any
) -> None:
    with pytest.raises(ConfigError, match=rf"^hyperparameters\.{field}: expected"):
        module.build(_config(**{field: value}))
