"""Early stopping on real fits: Keras' own lookup and Keras' own callback as the reference.

Ported from Keras 3.15.1's ``keras/src/callbacks/early_stopping_test.py``
(``test_early_stopping``: the ``mode="auto"`` lookup on a compiled model), plus a
side-by-side run: Keras' ``EarlyStopping`` observes the very fit Rekindle trains
and both must agree on the stop epoch, the best epoch, the best value and the
restored weights. The pure rule's ports are in ``tests/trainer/core/test_keras_suite.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers, metrics, models, ops

from rekindle_trainer import Session, session
from rekindle_trainer.contract import Outcome, ProgressKind
from rekindle_trainer.contract.training_config import EarlyStopping, EarlyStoppingMode
from rekindle_trainer.core.config import ConfigError
from rekindle_trainer.core.early_stopping import direction_at_epoch_end
from rekindle_trainer.examples import digits
from rekindle_trainer.training.callback import compiled_directions
from rekindle_trainer.training.setup import check_setup
from tests.trainer import helpers
from tests.trainer.training.test_resume import SHORT


class Seen(keras.callbacks.Callback):  # type: ignore[misc]
    """Records, at each epoch end, the logs and the compiled metrics' directions."""

    def __init__(self) -> None:
        super().__init__()
        self.at_train_begin: list[tuple[str, str]] | None = None
        self.logs: dict[str, float] = {}
        self.compiled: list[tuple[str, str]] = []

    def on_train_begin(self, logs: Any = None) -> None:
        self.at_train_begin = compiled_directions(self.model)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.logs = dict(logs or {})
        self.compiled = compiled_directions(self.model)


def _keras_test_model() -> keras.Model:
    """The model of Keras' test_early_stopping, compiled with its metrics."""
    model = models.Sequential(
        (layers.Dense(1, activation="relu"), layers.Dense(1, activation="relu"))
    )
    model.compile(
        loss="mae",
        optimizer="adam",
        metrics=["mse", "acc", "accuracy", "hinge", metrics.F1Score(name="f1_score")],
    )
    return model


def _data(rows: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.random((rows, 5)), rng.random((rows, 1))


def test_auto_mode_resolves_as_keras_does_at_the_first_epoch_end() -> None:
    """Keras' test_early_stopping cases, against Keras' own callbacks in the same fit."""
    cases = [
        ("max", "val_mse", "max"),
        ("min", "val_loss", "min"),
        ("auto", "val_mse", "min"),
        ("auto", "loss", "min"),
        ("auto", "acc", "max"),
        ("auto", "val_accuracy", "max"),
        ("auto", "hinge", "min"),
        ("auto", "f1_score", "max"),
    ]
    model = _keras_test_model()
    x, y = _data()
    theirs = [
        keras.callbacks.EarlyStopping(patience=5, monitor=m, mode=mode) for mode, m, _ in cases
    ]
    seen = Seen()
    model.fit(
        x, y, batch_size=5, validation_data=(x, y), callbacks=[seen, *theirs], epochs=2, verbose=0
    )
    # Before the first step the compiled metrics do not exist yet (issue 14, point 3).
    assert seen.at_train_begin == []
    for (mode, monitor, expected), keras_callback in zip(cases, theirs, strict=True):
        config = EarlyStopping(monitor=monitor, mode=EarlyStoppingMode(mode))
        direction = direction_at_epoch_end(config, seen.logs, seen.compiled)
        assert direction == expected, monitor
        keras_op = ops.greater if direction == "max" else ops.less
        assert keras_callback.monitor_op == keras_op, monitor


def test_an_unknown_monitor_fails_in_keras_and_ends_the_attempt_here() -> None:
    model = _keras_test_model()
    x, y = _data()
    with pytest.raises(ValueError, match="isn't able to automatically determine"):
        model.fit(
            x,
            y,
            batch_size=5,
            validation_data=(x, y),
            callbacks=[keras.callbacks.EarlyStopping(monitor="unknown")],
            epochs=2,
            verbose=0,
        )
    seen = Seen()
    model.fit(x, y, batch_size=5, validation_data=(x, y), callbacks=[seen], epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="'unknown' was not logged"):
        direction_at_epoch_end(EarlyStopping(monitor="unknown"), seen.logs, seen.compiled)


def test_an_outputs_loss_is_as_unknown_to_auto_as_in_keras() -> None:
    """A two-output model logs ``<output>_loss``; Keras' auto mode cannot tell its direction."""
    inputs = keras.Input((5,))
    model = keras.Model(
        inputs, {"a": layers.Dense(1, name="a")(inputs), "b": layers.Dense(1, name="b")(inputs)}
    )
    model.compile(optimizer="sgd", loss={"a": "mse", "b": "mae"}, metrics={"a": ["mae"]})
    x, y = _data()
    target = {"a": y, "b": y}
    with pytest.raises(ValueError, match="isn't able to automatically determine"):
        model.fit(
            x,
            target,
            validation_data=(x, target),
            callbacks=[keras.callbacks.EarlyStopping(monitor="val_a_loss")],
            epochs=1,
            verbose=0,
        )
    seen = Seen()
    model.fit(x, target, validation_data=(x, target), callbacks=[seen], epochs=1, verbose=0)
    assert "val_a_loss" in seen.logs
    with pytest.raises(ConfigError, match="set mode to 'min' or 'max'"):
        direction_at_epoch_end(EarlyStopping(monitor="val_a_loss"), seen.logs, seen.compiled)
    explicit = EarlyStopping(monitor="val_a_loss", mode=EarlyStoppingMode.MIN)
    assert direction_at_epoch_end(explicit, seen.logs, seen.compiled) == "min"


# --------------------------------------------------------------------------------------
# Rekindle's attempts, with Keras' callback watching.
# --------------------------------------------------------------------------------------

#: Test_resume's short run, long enough for every configuration below to stop early.
BASE: dict[str, Any] = {
    **SHORT,
    "epochs": 40,
    "seed": 11,
    "hyperparameters": {"units": 16, "learningRate": 0.03},
}


class KerasObserver(keras.callbacks.EarlyStopping):  # type: ignore[misc]
    """Keras' own EarlyStopping in the same fit; it keeps its best weights instead of loading them.

    Keras would load them in ``on_train_end``; this one only keeps them, so that the
    weights the model ends with are the ones Rekindle restored from its checkpoint.
    """

    def on_train_end(self, logs: Any = None) -> None:
        self.kept_weights = self.best_weights


def _observed_attempt(folder: Path, early_stopping: dict[str, Any]) -> tuple[Session, Any, Any]:
    """One attempt with Keras' callback observing; the session, the model and the observer."""
    config = EarlyStopping(
        monitor=early_stopping.get("monitor", "val_loss"),
        min_delta=early_stopping.get("minDelta", 0.0),
        patience=early_stopping.get("patience", 0),
        mode=EarlyStoppingMode(early_stopping.get("mode", "auto")),
        baseline=early_stopping.get("baseline"),
        restore_best_weights=early_stopping.get("restoreBestWeights", False),
        start_from_epoch=early_stopping.get("startFromEpoch", 0),
    )
    observer = helpers.keras_early_stopping(config, KerasObserver)
    doc = {**BASE, "earlyStopping": early_stopping}
    with session(helpers.env_for(folder, doc)) as run:
        with run.strategy.scope():
            setup = digits.build(run.config)
        setup.callbacks = (observer,)
        run.run(check_setup(setup, "test"))
    return run, setup.model, observer


SIDE_BY_SIDE = {
    "min_delta": {"monitor": "val_loss", "patience": 1, "minDelta": 0.02},
    "patience, restore": {"monitor": "val_loss", "patience": 2, "restoreBestWeights": True},
    "auto on val_accuracy": {"monitor": "val_accuracy", "patience": 1},
    "baseline, restore": {
        "monitor": "val_loss",
        "patience": 3,
        "baseline": 0.05,
        "restoreBestWeights": True,
    },
    "start_from_epoch, negative min_delta": {
        "monitor": "loss",
        "patience": 0,
        "startFromEpoch": 3,
        "minDelta": -0.03,
    },
    "max on accuracy, min_delta, restore": {
        "monitor": "accuracy",
        "mode": "max",
        "patience": 1,
        "minDelta": 0.005,
        "restoreBestWeights": True,
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name", SIDE_BY_SIDE)
def test_keras_early_stopping_watching_the_same_fit_agrees(tmp_path: Path, name: str) -> None:
    early_stopping = SIDE_BY_SIDE[name]
    run, model, keras_es = _observed_attempt(tmp_path, early_stopping)
    message = run.message
    assert message is not None
    assert run.exit_code == 0, message.error
    # Every configuration stops before the budget, so the stop epoch is compared.
    assert keras_es.stopped_epoch > 0
    assert message.outcome is Outcome.EARLY_STOPPED
    assert message.early_stop_epoch == keras_es.stopped_epoch + 1
    assert message.epoch == keras_es.stopped_epoch + 1
    assert message.best_metric == keras_es.best
    assert message.best_epoch == keras_es.best_epoch + 1
    if early_stopping.get("restoreBestWeights"):
        ours = model.get_weights()
        for mine, theirs in zip(ours, keras_es.kept_weights, strict=True):
            assert mine.tobytes() == theirs.tobytes()


# --------------------------------------------------------------------------------------
# Issue 14, points 3 and 5, end to end.
# --------------------------------------------------------------------------------------


def _attempt(folder: Path, early_stopping: dict[str, Any], epochs: int = 3) -> Session:
    doc = {**BASE, "epochs": epochs, "earlyStopping": early_stopping}
    with session(helpers.env_for(folder, doc)) as run:
        with run.strategy.scope():
            setup = digits.build(run.config)
        run.run(check_setup(setup, "test"))
    return run


def test_val_accuracy_with_auto_mode_trains_on_one_device(tmp_path: Path) -> None:
    """Auto resolved when Keras has built its metrics (was: invalid before the first step)."""
    run = _attempt(tmp_path, {"monitor": "val_accuracy", "patience": 5}, epochs=2)
    assert run.message is not None
    assert run.exit_code == 0, run.message.error
    assert run.message.monitor == "val_accuracy"
    assert run.message.best_metric is not None
    assert 0.0 < run.message.best_metric <= 1.0


@pytest.mark.parametrize(
    ("early_stopping", "monitor"),
    [
        ({"monitor": "val_mea", "mode": "min"}, "val_mea"),
        ({"monitor": "val_auc", "mode": "max", "startFromEpoch": 1}, "val_auc"),
        ({"monitor": "val_mae", "enabled": False, "restoreBestWeights": True}, "val_mae"),
    ],
)
def test_a_monitor_never_logged_ends_the_attempt_invalid_after_one_epoch(
    tmp_path: Path, early_stopping: dict[str, Any], monitor: str
) -> None:
    run = _attempt(tmp_path, early_stopping, epochs=5)
    message = run.message
    assert message is not None
    assert run.exit_code == 2
    assert message.outcome is Outcome.INVALID
    assert message.error == (
        f"earlyStopping.monitor: {monitor!r} was not logged at the end of the epoch "
        "(logged: accuracy, loss, val_accuracy, val_loss)"
    )
    events = helpers.progress(tmp_path)
    steps = [e for e in events if e.kind is ProgressKind.STEP]
    assert steps
    assert {e.data["epoch"] for e in steps} == {1}  # the budget is not burnt
    assert not [e for e in events if e.kind is ProgressKind.EPOCH_END]
    finished = [e for e in events if e.kind is ProgressKind.FINISHED]
    assert [e.data["outcome"] for e in finished] == ["invalid"]


def test_a_rule_that_is_off_does_not_need_its_monitor(tmp_path: Path) -> None:
    run = _attempt(tmp_path, {"monitor": "val_mae", "enabled": False}, epochs=2)
    assert run.message is not None
    assert run.exit_code == 0, run.message.error
    assert run.message.outcome is Outcome.COMPLETED
    assert run.message.best_metric is None
