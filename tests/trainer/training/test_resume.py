"""In-process attempts with injected faults: exact resume, fallback, SIGTERM, metrics.

Each attempt runs through the library API (``rekindle_trainer.training.session``), the
same path ``rekindle-train`` takes, with a Keras callback that raises at a
given step (Keras' own way of testing fault tolerance).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from rekindle_trainer import Session, contract, session
from rekindle_trainer.checkpoint.store import STATE_FILE, CheckpointStore
from rekindle_trainer.contract import Outcome, ProgressKind
from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.examples import digits
from rekindle_trainer.training.setup import TrainingSetup, check_setup
from tests.trainer import helpers, models

Build = Callable[[TrainerConfig], TrainingSetup]

SHORT = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 3,
    "batchSize": 64,
    "hyperparameters": {"units": 32},
    "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 50},
    "earlyStopping": {"enabled": False},
}


class CrashAt(keras.callbacks.Callback):  # type: ignore[misc]
    """Raises after ``steps`` batches of this attempt (a process crash, in-process)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen += 1
        if self.seen == self.steps:
            raise RuntimeError(f"injected crash after {self.steps} steps")


class SlowFirstStep(keras.callbacks.Callback):  # type: ignore[misc]
    """Makes the first batch of this attempt last ``seconds`` longer (a slow step)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.done = seconds, False

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if not self.done:
            self.done = True
            time.sleep(self.seconds)


class SigtermAt(keras.callbacks.Callback):  # type: ignore[misc]
    """Sends this process SIGTERM after ``steps`` batches."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.seen += 1
        if self.seen == self.steps:
            os.kill(os.getpid(), signal.SIGTERM)


def attempt(
    folder: Path,
    doc: dict[str, Any],
    *,
    number: int = 1,
    build: Build = digits.build,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
    port: int = 0,
) -> Session:
    """One attempt in this process; returns the closed session."""
    with session(helpers.env_for(folder, doc, number, port)) as run:
        with run.strategy.scope():
            setup = build(run.config)
        setup.callbacks = callbacks
        run.run(check_setup(setup, "test"))
    return run


@pytest.mark.slow
def test_resume_mid_epoch_after_crashes_is_bitwise_identical(tmp_path: Path) -> None:
    reference = attempt(tmp_path / "ref", SHORT)
    assert reference.exit_code == 0
    faulty = tmp_path / "faulty"
    # 23 steps/epoch: crashes land mid-epoch 1, mid-epoch 2 and at the end of epoch 3.
    for number, steps in enumerate((17, 31, 21), start=1):
        run = attempt(faulty, SHORT, number=number, callbacks=(CrashAt(steps),))
        assert run.exit_code == 1
        assert run.message is not None
        assert run.message.outcome is Outcome.FAILED
        assert "injected crash" in (run.message.error or "")
    last = attempt(faulty, SHORT, number=4)
    assert last.exit_code == 0
    assert last.message is not None
    assert reference.message is not None
    assert (last.message.epoch, last.message.step) == (
        reference.message.epoch,
        reference.message.step,
    )
    helpers.assert_same_arrays(helpers.final_model(faulty), helpers.final_model(tmp_path / "ref"))
    restored = [e for e in helpers.progress(faulty) if e.kind is ProgressKind.RESTORED]
    assert [e.data["step"] for e in restored] == [15, 45, 65]
    # Killed after steps 17, 46 and 66: exactly the steps since the last save were lost.
    assert [e.data["lost_steps"] for e in restored] == [2, 1, 1]
    assert any(e.data["step"] % 23 for e in restored), "no resume landed inside an epoch"


@pytest.mark.slow
def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    doc = {**SHORT, "checkpoint": {"everyEpochs": 1, "everySteps": 0, "keep": 5}}
    attempt(tmp_path / "ref", doc)
    folder = tmp_path / "faulty"
    attempt(folder, doc, callbacks=(CrashAt(50),))  # saves after epochs 1 and 2 (steps 23, 46)
    store = CheckpointStore(folder / "ckpt")
    names = store.names()
    assert names == [contract.checkpoint_name(1, 23), contract.checkpoint_name(2, 46)]
    state = folder / "ckpt" / names[-1] / STATE_FILE
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))

    run = attempt(folder, doc, number=2)
    assert run.exit_code == 0
    restored = [e for e in helpers.progress(folder) if e.kind is ProgressKind.RESTORED]
    assert restored[-1].data["checkpoint"] == names[0]
    assert run.metrics.corrupt._value.get() == 1
    helpers.assert_same_arrays(helpers.final_model(folder), helpers.final_model(tmp_path / "ref"))


@pytest.mark.slow
def test_sigterm_saves_the_step_and_resume_loses_nothing(tmp_path: Path) -> None:
    reference = attempt(tmp_path / "ref", SHORT)
    folder = tmp_path / "faulty"
    doc = {**SHORT, "checkpoint": {"everyEpochs": 1, "everySteps": 0}}
    first = attempt(folder, doc, callbacks=(SigtermAt(30),))
    assert first.exit_code == contract.EXIT_PREEMPTED
    assert first.message is not None
    assert first.message.outcome is Outcome.PREEMPTED
    # The signal arrives during step 30; that step finishes and the next one too, then it saves.
    assert first.message.step == 31
    assert first.message.checkpoint == contract.checkpoint_name(1, 31)
    assert first.metrics.preemptions._value.get() == 1
    second = attempt(folder, doc, number=2)
    assert second.message is not None
    assert second.message.lost_steps == 0
    helpers.assert_same_arrays(helpers.final_model(folder), helpers.final_model(tmp_path / "ref"))
    assert reference.message is not None
    assert second.message.step == reference.message.step


class Scrape(keras.callbacks.Callback):  # type: ignore[misc]
    """Reads /metrics and /healthz over HTTP at the end of the first epoch."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.metrics = ""
        self.health: dict[str, Any] = {}

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == 1:
            base = f"http://127.0.0.1:{self.port}"
            with urllib.request.urlopen(base + contract.METRICS_PATH, timeout=10) as reply:
                self.metrics = reply.read().decode()
            with urllib.request.urlopen(base + contract.HEALTH_PATH, timeout=10) as reply:
                self.health = json.loads(reply.read())


@pytest.mark.slow
def test_metrics_and_health_are_served_during_the_run(tmp_path: Path) -> None:
    port = helpers.free_port()
    scrape = Scrape(port)
    run = attempt(tmp_path, SHORT, callbacks=(scrape,), port=port)
    assert run.exit_code == 0
    assert scrape.health["phase"] == "training"
    text = scrape.metrics
    for name in contract.TRAINER_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert f"{contract.METRIC_EPOCH} 2.0" in text
    assert f'{contract.METRIC_LOG_VALUE}{{metric="val_accuracy"}}' in text
    assert f'{contract.METRIC_CHECKPOINTS_SAVED}{{trigger="steps"}}' in text
    assert f"{contract.METRIC_STEP} 46.0" in text  # epoch 2's end: 2 x 23 steps


@pytest.mark.slow
def test_restore_best_weights_loads_the_best_epoch_from_the_volume(tmp_path: Path) -> None:
    doc = {
        **SHORT,
        "epochs": 30,
        "checkpoint": {"everyEpochs": 0, "keep": 1, "keepBest": True},
        "earlyStopping": {"patience": 1, "restoreBestWeights": True, "minDelta": 0.03},
    }
    run = attempt(tmp_path, doc)
    message = run.message
    assert message is not None
    assert message.outcome is Outcome.EARLY_STOPPED
    assert message.best_epoch is not None
    assert message.early_stop_epoch is not None
    assert message.best_epoch < message.early_stop_epoch
    store = CheckpointStore(tmp_path / "ckpt")
    best = store.find_epoch_end(message.best_epoch - 1)
    assert best is not None, f"best checkpoint pruned: {store.names()}"
    exported = keras.saving.load_model(tmp_path / "ckpt" / "model.keras")
    saved = store.load(best).groups["model"]
    for variable, (_, array) in zip(exported.variables, saved, strict=True):
        if variable.name != "seed_generator_state":  # not part of a .keras file
            assert variable.numpy().tobytes() == array.tobytes(), variable.path


def test_finished_job_reports_again_without_training(tmp_path: Path) -> None:
    first = attempt(tmp_path, SHORT)
    names = CheckpointStore(tmp_path / "ckpt").names()
    again = attempt(tmp_path, SHORT, number=2)
    assert again.message is not None
    assert first.message is not None
    # The same report; only the attempt's own timing differs (it trained nothing).
    assert replace(again.message, timing=None) == replace(first.message, timing=None)
    timing, nothing = first.message.timing, again.message.timing
    assert timing is not None
    assert nothing is not None
    assert timing.steps == first.message.step - 1  # counted from the first step's end
    assert timing.startup > 0
    assert timing.training > 0
    assert 0 < timing.checkpoint_stall < timing.training  # saves every 5 steps, and the final
    assert timing.restore == 0  # nothing to resume from
    assert (nothing.steps, nothing.training) == (0, 0)
    assert CheckpointStore(tmp_path / "ckpt").names() == names
    kinds = [e.kind for e in helpers.progress(tmp_path)]
    assert kinds[-2:] == [ProgressKind.FINISHED, ProgressKind.FINISHED]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("build", "replayable"),
    [(models.digits_dataset, False), (models.digits_pydataset, True)],
)
def test_datasets_resume_at_the_step_and_report_replayability(
    tmp_path: Path, build: Build, replayable: bool
) -> None:
    reference = attempt(tmp_path / "ref", SHORT, build=build)
    folder = tmp_path / "faulty"
    attempt(folder, SHORT, build=build, callbacks=(CrashAt(33),))
    run = attempt(folder, SHORT, number=2, build=build)
    assert run.message is not None
    assert reference.message is not None
    assert run.message.replayable is replayable
    assert run.message.step == reference.message.step
    if replayable:
        helpers.assert_same_arrays(
            helpers.final_model(folder), helpers.final_model(tmp_path / "ref")
        )


def test_invalid_configuration_touches_nothing(tmp_path: Path) -> None:
    run = attempt(tmp_path, {**SHORT, "batchSize": 0})
    assert run.exit_code == contract.EXIT_INVALID
    assert run.message is not None
    assert "batchSize" in (run.message.error or "")
    assert not (tmp_path / "ckpt").exists()
    assert helpers.termination(tmp_path).outcome is Outcome.INVALID


def test_library_api_trains_a_users_own_model(tmp_path: Path) -> None:
    """A user script: its own model and arrays, one `fit`, the exit code to return."""
    doc = {
        "epochs": 2,
        "batchSize": 64,
        "checkpoint": {"everyEpochs": 0, "everySeconds": 1},
        "earlyStopping": {"monitor": "loss", "patience": 5},
    }
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    with session(helpers.env_for(tmp_path, doc)) as run:
        with run.strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile(optimizer="sgd", loss="mse")
        message = run.fit(model, (x, y), callbacks=(SlowFirstStep(1.1),))
    assert run.exit_code == 0
    assert message.outcome is Outcome.COMPLETED
    assert (message.epoch, message.step) == (2, 8)
    triggers = [
        e.data["trigger"] for e in helpers.progress(tmp_path) if e.kind is ProgressKind.CHECKPOINT
    ]
    assert "seconds" in triggers
    written = helpers.termination(tmp_path)
    assert written.timing is not None  # added as the session closes: the attempt is over
    assert replace(written, timing=None) == message


@pytest.mark.slow
def test_mixed_precision_resumes_with_its_loss_scale(tmp_path: Path) -> None:
    from rekindle_trainer.examples import regression

    doc = {
        "entrypoint": "rekindle_trainer.examples.regression:build",
        "epochs": 2,
        "mixedPrecision": True,
        "hyperparameters": {"samples": 512},
        "checkpoint": {"everyEpochs": 1, "everySteps": 4},
        "earlyStopping": {"enabled": False},
    }
    attempt(tmp_path / "ref", doc, build=regression.build)
    folder = tmp_path / "faulty"
    attempt(folder, doc, build=regression.build, callbacks=(CrashAt(15),))
    run = attempt(folder, doc, number=2, build=regression.build)
    assert run.exit_code == 0
    optimizer = CheckpointStore(folder / "ckpt").latest_valid()[0]
    assert optimizer is not None
    assert any("dynamic_scale" in name for name, _ in optimizer.groups["optimizer"])
    helpers.assert_same_arrays(helpers.final_model(folder), helpers.final_model(tmp_path / "ref"))


def test_steps_are_counted_with_several_steps_per_execution(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rekindle_trainer.checkpoint.saver")
    doc = {
        "epochs": 2,
        "batchSize": 32,
        "checkpoint": {"everyEpochs": 1, "everySteps": 4, "keep": 10},
        "earlyStopping": {"monitor": "loss", "patience": 5},
    }
    x = np.linspace(-1, 1, 320, dtype="float32").reshape(-1, 1)
    with session(helpers.env_for(tmp_path, doc)) as run:
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
        message = run.fit(model, (x, 2 * x))
    assert (message.epoch, message.step) == (2, 20)
    published = [
        int(e.data["step"]) for e in helpers.progress(tmp_path) if e.kind is ProgressKind.CHECKPOINT
    ]
    # Under load the background writer may fall behind; a queued periodic save is then
    # superseded by the next one (logged), never an epoch-end one. Every save requested
    # at the right step is either published or superseded.
    superseded = [
        int(match.group(1))
        for record in caplog.records
        if (match := re.search(r"ckpt-\d{6}-(\d{10}) superseded", record.getMessage()))
    ]
    assert {10, 20} <= set(published)
    assert sorted(published + superseded) == [4, 8, 10, 12, 16, 20]
