"""The examples' hyperparameters, read from the config with a clear error on bad input.

A value out of range or of the wrong type ends the run before training with a
:class:`~rekindle_trainer.core.config.ConfigError` naming ``hyperparameters.<name>``
and the range it must fall in.
"""

from __future__ import annotations

from rekindle_trainer.core.config import ConfigError, TrainerConfig


def number(config: TrainerConfig, name: str, default: float, low: float, high: float) -> float:
    """``hyperparameters.<name>`` as a float from ``low`` to ``high`` (``default`` when unset)."""
    value = config.hyperparameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(
            f"hyperparameters.{name}", f"expected a number from {low} to {high}, got {value!r}"
        )
    return float(value)


def whole(config: TrainerConfig, name: str, default: int, low: int, high: int) -> int:
    """``hyperparameters.<name>`` as an int from ``low`` to ``high`` (``default`` when unset)."""
    value = config.hyperparameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"hyperparameters.{name}",
            f"expected a whole number from {low} to {high}, got {value!r}",
        )
    return value
