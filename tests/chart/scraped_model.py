"""A trainer entrypoint for the Prometheus test: the digits example, slowed down to be scraped.

``rekindle-train`` loads it as ``tests.chart.scraped_model:build``. It trains
scikit-learn's digits with the example's model and adds one callback that
pauses after each epoch (``epochPauseSeconds``) so that Prometheus, scraping
every second, sees every epoch, and pauses longer after the epoch on which
early stopping fires (``finalPauseSeconds``) so that the early-stop metrics
are scraped before the process exits.
"""

from __future__ import annotations

import time
from typing import Any

import keras

from rekindle_trainer.config import TrainerConfig
from rekindle_trainer.examples import digits
from rekindle_trainer.setup import TrainingSetup

PAUSE_KEYS = ("epochPauseSeconds", "finalPauseSeconds")


class _Pause(keras.callbacks.Callback):  # type: ignore[misc]
    """Sleeps at the end of each epoch; longer once training is to stop."""

    def __init__(self, epoch_pause: float, final_pause: float) -> None:
        super().__init__()
        self.epoch_pause = epoch_pause
        self.final_pause = final_pause

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        del epoch, logs
        stopping = bool(getattr(self.model, "stop_training", False))
        time.sleep(self.final_pause if stopping else self.epoch_pause)


def build(config: TrainerConfig) -> TrainingSetup:
    """The digits example plus the pausing callback."""
    hyper = dict(config.hyperparameters)
    epoch_pause = float(hyper.pop("epochPauseSeconds", 1.0))
    final_pause = float(hyper.pop("finalPauseSeconds", 4.0))
    setup = digits.build(config)
    setup.callbacks = (*setup.callbacks, _Pause(epoch_pause, final_pause))
    return setup
