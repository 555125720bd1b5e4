"""Entrypoints used by the trainer tests (imported by ``rekindle-train`` subprocesses too)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.examples import digits
from rekindle_trainer.training.setup import TrainingSetup


def digits_dataset(config: TrainerConfig) -> TrainingSetup:
    """Digits as a tf.data.Dataset of batches (not replayable)."""
    setup = digits.build(config)
    x, y = setup.train
    setup.train = tf.data.Dataset.from_tensor_slices((x, y)).batch(config.batch_size)
    return setup


class _Batches(keras.utils.PyDataset):  # type: ignore[misc]
    """Fixed batches by index (a PyDataset whose order does not change)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


def digits_pydataset(config: TrainerConfig) -> TrainingSetup:
    """Digits as a PyDataset declared replayable."""
    setup = digits.build(config)
    x, y = setup.train
    setup.train = _Batches(x, y, config.batch_size)
    setup.replayable = True
    return setup


def crashes(config: TrainerConfig) -> TrainingSetup:
    """Raises inside build (a crash, restarted with backoff, not an invalid job)."""
    del config
    raise RuntimeError("the data mount is not ready")


def _mark(config: TrainerConfig) -> None:
    """Create the file named by ``hyperparameters.marker``: the test's cue to send a signal."""
    Path(str(config.hyperparameters["marker"])).touch()


def sleeps_in_build(config: TrainerConfig) -> TrainingSetup:
    """Blocks in the entrypoint, as a slow data mount would (SIGTERM during start-up)."""
    _mark(config)
    time.sleep(600)
    raise AssertionError("the test should have stopped this process")


class _SleepsBeforeTraining(keras.callbacks.Callback):  # type: ignore[misc]
    """Blocks once training begins (after the checkpoint is restored), before the first step."""

    def __init__(self, config: TrainerConfig) -> None:
        super().__init__()
        self.config = config

    def on_train_begin(self, logs: Any = None) -> None:
        _mark(self.config)
        time.sleep(600)


def digits_sleeping_before_training(config: TrainerConfig) -> TrainingSetup:
    """Digits whose attempt blocks after the restore, before its first step."""
    setup = digits.build(config)
    setup.callbacks = (_SleepsBeforeTraining(config),)
    return setup
