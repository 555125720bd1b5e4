"""EarlyStopper against Keras' own EarlyStopping, and its state across a restart."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import keras
import pytest

from rekindle_trainer.contract.training_config import EarlyStopping, EarlyStoppingMode
from rekindle_trainer.core.early_stopping import EarlyStopper, EarlyStoppingState, has_stopped

SERIES = {
    "falls then plateaus": [1.0, 0.8, 0.7, 0.69, 0.695, 0.71, 0.68, 0.7, 0.72, 0.73],
    "noisy": [0.9, 0.95, 0.85, 0.86, 0.84, 0.9, 0.91, 0.83, 0.99, 1.2, 1.3],
    "never improves": [0.5, 0.6, 0.7, 0.8, 0.9],
}

CONFIGS = {
    "keras defaults": EarlyStopping(monitor="val_loss"),
    "patience 2": EarlyStopping(monitor="val_loss", patience=2),
    "min_delta": EarlyStopping(monitor="val_loss", patience=1, min_delta=0.02),
    "baseline": EarlyStopping(monitor="val_loss", patience=2, baseline=0.75),
    "start_from_epoch": EarlyStopping(monitor="val_loss", patience=1, start_from_epoch=3),
    "restore best": EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
    "max mode": EarlyStopping(monitor="val_loss", patience=1, mode=EarlyStoppingMode.MAX),
}


class _Model:
    """Just enough of a model for Keras' EarlyStopping."""

    stop_training = False
    metrics: ClassVar[list[Any]] = []

    def get_weights(self) -> list[Any]:
        return []

    def set_weights(self, weights: list[Any]) -> None:
        del weights


def keras_stop_epoch(config: EarlyStopping, values: list[float]) -> tuple[int | None, Any]:
    callback = keras.callbacks.EarlyStopping(
        monitor=config.monitor,
        min_delta=config.min_delta,
        patience=config.patience,
        mode=config.mode,
        baseline=config.baseline,
        restore_best_weights=config.restore_best_weights,
        start_from_epoch=config.start_from_epoch,
    )
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {config.monitor: value})
        if model.stop_training:
            return epoch, callback.best
    return None, callback.best


def ours(
    config: EarlyStopping, values: list[float], restart_at: int | None = None
) -> tuple[int | None, float | None]:
    direction = "max" if config.mode == "max" else "min"
    stopper = EarlyStopper(config, direction)
    for epoch, value in enumerate(values):
        if epoch == restart_at:  # a new process: state only from the checkpoint's JSON
            saved = stopper.state.to_dict()
            stopper = EarlyStopper(config, direction, EarlyStoppingState.from_dict(saved))
        if stopper.on_epoch_end(epoch, {config.monitor: value}).stop:
            return epoch, stopper.state.best
    return None, stopper.state.best


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("name", CONFIGS)
def test_same_decisions_as_keras(name: str, series: str) -> None:
    config, values = CONFIGS[name], SERIES[series]
    expected_epoch, expected_best = keras_stop_epoch(config, values)
    epoch, best = ours(config, values)
    assert epoch == expected_epoch
    assert best == pytest.approx(float(expected_best))


@pytest.mark.parametrize("restart_at", range(1, 9))
def test_restart_does_not_change_the_stop_epoch(restart_at: int) -> None:
    config = CONFIGS["patience 2"]
    values = SERIES["falls then plateaus"]
    assert ours(config, values, restart_at) == ours(config, values)


def test_plain_keras_restarted_stops_later_than_it_should() -> None:
    """The bug this module exists for: Keras forgets `best` and `wait` on a new fit."""
    config = CONFIGS["patience 2"]
    values = SERIES["falls then plateaus"]
    uninterrupted, _ = keras_stop_epoch(config, values)
    restart = 5
    first, _ = keras_stop_epoch(config, values[:restart])
    assert first is None
    resumed, _ = keras_stop_epoch(config, values[restart:])
    assert uninterrupted is not None
    assert resumed is None or resumed + restart > uninterrupted


def test_missing_monitor_and_warm_up_are_ignored() -> None:
    config = replace(CONFIGS["keras defaults"], start_from_epoch=2)
    stopper = EarlyStopper(config, "min")
    assert not stopper.on_epoch_end(0, {"loss": 1.0}).stop
    assert not stopper.on_epoch_end(1, {"val_loss": 1.0}).stop
    assert stopper.state == EarlyStoppingState()


def test_direction_is_checked() -> None:
    with pytest.raises(ValueError, match="direction"):
        EarlyStopper(EarlyStopping(), "down")


@pytest.mark.parametrize(
    ("enabled", "stopped_epoch", "expect"),
    [(True, 4, True), (True, None, False), (False, 4, False), (False, None, False)],
)
def test_a_disabled_rule_never_ends_the_run(
    enabled: bool, stopped_epoch: int | None, expect: bool
) -> None:
    """Disabled, the rule still runs (for restoreBestWeights) but never stops training."""
    state = EarlyStoppingState(stopped_epoch=stopped_epoch)
    assert has_stopped(state, EarlyStopping(enabled=enabled)) is expect
