"""Keras 3.15.1's own EarlyStopping tests, ported to Rekindle's pure rule.

The reference is ``keras/src/callbacks/early_stopping_test.py`` at v3.15.1 (and
``early_stopping.py``/``monitor_callback.py`` of the same tag). Cases that need
a fit (the ``mode="auto"`` lookup on a compiled model, baseline and
start_from_epoch on a real fit) are in ``tests/trainer/training/test_keras_early_stopping.py``;
here the rule runs on the series the Keras tests feed by hand, and every verdict
is also checked against Keras' own callback fed the same series.

Where Rekindle differs on purpose, the test says so: the state survives a new
``fit`` (it is the run's, not the call's), and a monitor that is not logged ends
the attempt instead of a warning per epoch.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any, ClassVar

import keras
import pytest

from rekindle_trainer.contract.training_config import EarlyStopping, EarlyStoppingMode
from rekindle_trainer.core.config import ConfigError
from rekindle_trainer.core.early_stopping import (
    EarlyStopper,
    EarlyStoppingState,
    auto_direction,
    direction_at_epoch_end,
)
from tests.trainer import helpers


class _Model:
    """Keras' DummyModel: weights are the epoch they were set at."""

    metrics: ClassVar[list[Any]] = []

    def __init__(self) -> None:
        self.stop_training = False
        self.weights: Any = -1

    def get_weights(self) -> Any:
        return self.weights

    def set_weights(self, weights: Any) -> None:
        self.weights = weights


def _keras(config: EarlyStopping) -> keras.callbacks.EarlyStopping:
    callback = helpers.keras_early_stopping(config, keras.callbacks.EarlyStopping)
    callback.set_model(_Model())
    callback.on_train_begin()
    return callback


class Run:
    """Rekindle's rule and Keras' callback fed the same series, epoch by epoch."""

    def __init__(self, config: EarlyStopping, direction: str) -> None:
        self.config = config
        self.ours = EarlyStopper(config, direction)
        self.keras = _keras(config)
        self.epochs_trained = 0
        self.weights_at_best: Any = None  # what Rekindle restores: the best epoch's checkpoint

    def epoch(self, epoch: int, value: float, *, external_stop: bool = False) -> bool:
        """Feed one epoch; whether training stops (by the rule or ``external_stop``)."""
        self.epochs_trained += 1
        logs = {self.config.monitor: value}
        self.keras.model.weights = epoch  # Keras' set_weight_to_epoch
        verdict = self.ours.on_epoch_end(epoch, logs)
        self.keras.on_epoch_end(epoch, logs)
        assert verdict.stop == self.keras.model.stop_training
        if external_stop:
            self.keras.model.stop_training = True
        return bool(self.keras.model.stop_training)

    def end(self) -> None:
        """Keras' on_train_end (restores its best weights); both must agree on everything."""
        self.keras.on_train_end()
        state = self.ours.state
        assert state.best == self.keras.best or (
            state.best is not None and math.isnan(state.best) and math.isnan(self.keras.best)
        )
        assert state.wait == self.keras.wait
        assert (state.stopped_epoch or 0) == self.keras.stopped_epoch
        if self.config.restore_best_weights:
            assert state.best_epoch == self.keras.best_epoch
            assert self.keras.model.get_weights() == state.best_epoch


def _feed(run: Run, values: list[float], *, stop_at: int | None = None) -> Run:
    for epoch, value in enumerate(values):
        if run.epoch(epoch, value, external_stop=epoch == stop_at):
            break
    run.end()
    return run


# --- test_early_stopping_patience ------------------------------------------------


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_patience(patience: int) -> None:
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    run = _feed(Run(EarlyStopping(monitor="loss", patience=patience), "min"), losses)
    assert run.ours.state.stopped_epoch == max(patience, 1) + 2


# --- test_early_stopping_reuse and test_state_reset_across_fit_calls ----------------


def test_a_new_run_is_not_judged_against_the_last_runs_best() -> None:
    """Keras resets in on_train_begin; Rekindle's state is the run's, so a new run is new state.

    (Within one run Rekindle keeps the state across fit calls and restarts on purpose:
    see test_early_stopping.py's restart tests.)
    """
    config = EarlyStopping(monitor="loss", patience=3)
    first = EarlyStopper(config, "min")
    for epoch, loss in enumerate([0.1, 0.2, 0.3, 0.4, 0.5]):
        if first.on_epoch_end(epoch, {"loss": loss}).stop:
            break
    assert first.state.stopped_epoch == 3
    second = EarlyStopper(config, "min")
    assert second.state == EarlyStoppingState()
    assert second.state.best is None
    assert second.state.wait == 0
    assert second.state.stopped_epoch is None
    verdict = second.on_epoch_end(0, {"loss": 5.0})  # worse than the first run's best
    assert verdict.improved
    assert not verdict.stop


# --- test_early_stopping_final_weights_when_restoring_model_weights ----------------


def test_restoring_weights_picks_the_best_epoch() -> None:
    config = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    run = _feed(Run(config, "min"), [0.2, 0.15, 0.1, 0.11, 0.12])
    assert run.ours.state.best_epoch == 2


def test_restoring_weights_when_no_epoch_beats_the_baseline() -> None:
    config = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    run = _feed(Run(config, "min"), [0.9, 0.8, 0.7, 0.71, 0.72, 0.73])
    assert run.epochs_trained == 5
    assert run.ours.state.best_epoch == 2


def test_restoring_weights_when_another_callback_stops_training() -> None:
    config = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    run = _feed(Run(config, "min"), [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], stop_at=3)
    assert run.epochs_trained == 4
    assert run.ours.state.best_epoch == 2


# --- test_early_stopping_with_baseline / _with_start_from_epoch (series) ------------


@pytest.mark.parametrize("seed", range(5))
def test_with_baseline_trains_at_least_patience_epochs(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.uniform(0.6, 1.0) for _ in range(20)]  # never beats the baseline 0.6
    config = EarlyStopping(monitor="mse", patience=3, baseline=0.6, mode=EarlyStoppingMode.MIN)
    run = _feed(Run(config, "min"), values)
    assert run.epochs_trained >= config.patience


@pytest.mark.parametrize(("start_from_epoch", "patience"), [(2, 3), (2, 0)])
@pytest.mark.parametrize("seed", range(5))
def test_with_start_from_epoch_trains_the_warm_up_and_patience(
    seed: int, start_from_epoch: int, patience: int
) -> None:
    rng = random.Random(seed)
    values = [rng.uniform(0.0, 1.0) for _ in range(20)]
    config = EarlyStopping(
        monitor="mse",
        patience=patience,
        start_from_epoch=start_from_epoch,
        mode=EarlyStoppingMode.MIN,
    )
    run = _feed(Run(config, "min"), values)
    assert run.epochs_trained >= patience + start_from_epoch


# --- MonitorCallback: the comparison, min_delta, the auto lookup --------------------


@pytest.mark.parametrize(
    ("mode", "min_delta", "values", "stops_at"),
    [
        # 0.4999999999 + 0.5 < 1.0 in float64, == 1.0 in float32: no improvement in Keras.
        ("min", 0.5, [1.0, 0.4999999999], 1),
        ("max", 0.5, [1.0, 1.5000000001], 1),
        # An improvement of exactly min_delta (0.25 is exact in both precisions) is none.
        ("min", 0.25, [1.0, 0.75], 1),
        ("min", 0.25, [1.0, 0.7499], None),
        # Keras takes |min_delta|: -0.25 is 0.25.
        ("min", -0.25, [1.0, 0.75], 1),
        ("max", -0.25, [1.0, 1.2], 1),
    ],
)
def test_values_compare_in_float32_after_min_delta_as_keras_does(
    mode: str, min_delta: float, values: list[float], stops_at: int | None
) -> None:
    config = EarlyStopping(monitor="loss", min_delta=min_delta, mode=EarlyStoppingMode(mode))
    run = _feed(Run(config, mode), values)
    assert run.ours.state.stopped_epoch == stops_at


def test_the_baseline_compares_in_float32_too() -> None:
    config = EarlyStopping(monitor="loss", patience=1, baseline=1.0, min_delta=0.5)
    run = _feed(Run(config, "min"), [0.4999999999, 0.4999999999, 0.4999999999])
    # Beats no baseline in float32, so wait is never reset: stops after patience.
    assert run.ours.state.stopped_epoch == 1
    assert run.ours.state.best == 0.4999999999


def test_nan_counts_as_keras_counts_it() -> None:
    """A NaN compares false: never an improvement, but the first value is the best, NaN or not."""
    run = _feed(Run(EarlyStopping(monitor="loss", patience=2), "min"), [1.0, float("nan"), 0.5])
    assert run.ours.state.best == 0.5
    assert run.ours.state.stopped_epoch is None
    run = _feed(Run(EarlyStopping(monitor="loss", patience=1), "min"), [float("nan"), 0.5, 0.4])
    assert run.ours.state.best is not None
    assert math.isnan(run.ours.state.best)
    assert run.ours.state.stopped_epoch == 1


@pytest.mark.parametrize(
    ("monitor", "compiled", "expected"),
    [
        ("loss", [], "min"),
        ("val_loss", [], "min"),
        ("val_accuracy", [("accuracy", "up")], "max"),
        ("val_mse", [("mse", "down")], "min"),
        ("f1_score", [("f1_score", "up")], "max"),
        # The last compiled metric of the name wins, as in Keras' loop.
        ("val_m", [("m", "up"), ("m", "down")], "min"),
        ("val_m", [("m", "down"), ("m", "up")], "max"),
        # A compiled metric named loss overrides the name rule.
        ("loss", [("loss", "up")], "max"),
        # Any _direction other than "up" is min (Keras: `else: ops.less`).
        ("val_m", [("m", "None")], "min"),
        # Keras drops one val_ prefix only.
        ("val_val_m", [("val_m", "up")], "max"),
        ("val_val_m", [("m", "up")], None),
        # An output's loss is not a compiled metric: Keras cannot tell its direction.
        ("val_out_loss", [], None),
        ("out_loss", [("accuracy", "up")], None),
        ("val_auc", [("accuracy", "up")], None),
    ],
)
def test_auto_direction_is_keras_lookup(
    monitor: str, compiled: list[tuple[str, str]], expected: str | None
) -> None:
    assert auto_direction(monitor, compiled) == expected


LOGS = {"loss": 0.5, "mae": 0.4, "val_loss": 0.6, "val_mae": 0.45}


def test_a_monitor_that_is_not_logged_ends_the_run_listing_what_is() -> None:
    config = EarlyStopping(monitor="val_mea", mode=EarlyStoppingMode.MIN)
    with pytest.raises(ConfigError) as caught:
        direction_at_epoch_end(config, LOGS, [])
    assert caught.value.field == "earlyStopping.monitor"
    assert str(caught.value) == (
        "earlyStopping.monitor: 'val_mea' was not logged at the end of the epoch "
        "(logged: loss, mae, val_loss, val_mae); did you mean 'val_mae'?"
    )


def test_a_missing_monitor_is_an_error_in_warm_up_and_for_restoring_alone() -> None:
    config = EarlyStopping(monitor="val_auc", mode=EarlyStoppingMode.MAX, start_from_epoch=5)
    with pytest.raises(ConfigError, match="'val_auc' was not logged"):
        direction_at_epoch_end(config, LOGS, [])
    restoring = replace(config, enabled=False, restore_best_weights=True)
    with pytest.raises(ConfigError, match="'val_auc' was not logged"):
        direction_at_epoch_end(restoring, LOGS, [])


def test_a_rule_not_in_use_that_cannot_run_is_skipped() -> None:
    off = EarlyStopping(enabled=False, monitor="val_auc")
    assert direction_at_epoch_end(off, LOGS, []) is None
    assert (
        direction_at_epoch_end(replace(off, monitor="val_out_loss"), {"val_out_loss": 1}, [])
        is None
    )
    assert direction_at_epoch_end(replace(off, monitor="val_loss"), LOGS, []) == "min"


def test_auto_that_cannot_tell_asks_for_a_mode() -> None:
    config = EarlyStopping(monitor="val_out_loss")
    with pytest.raises(ConfigError) as caught:
        direction_at_epoch_end(config, {"val_out_loss": 0.3}, [("accuracy", "up")])
    assert caught.value.field == "earlyStopping.mode"
    assert "set mode to 'min' or 'max'" in str(caught.value)


def test_an_explicit_mode_is_taken_as_given() -> None:
    config = EarlyStopping(monitor="val_out_loss", mode=EarlyStoppingMode.MAX)
    assert direction_at_epoch_end(config, {"val_out_loss": 0.3}, []) == "max"
