"""A trainer entrypoint for the Prometheus test: the digits example, slowed down to be scraped.

``rekindle-train`` loads it as ``tests.chart.scraped_model:build``. It trains
scikit-learn's digits with the example's model and adds one callback that
pauses after each epoch (``epochPauseSeconds``) so that Prometheus, scraping
every second, sees every epoch. It does not pause after the epoch on which
early stopping fires: the trainer exits at once, as a pod on a cluster may be
gone before the next scrape, so the early-stop results must come from the
operator's series, which outlive it.
"""

from __future__ import annotations

import time
from typing import Any

import keras

from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.examples import digits
from rekindle_trainer.training.setup import TrainingSetup


class _Pause(keras.callbacks.Callback):  # type: ignore[misc]
    """Sleeps at the end of each epoch, except the one after which training stops."""

    def __init__(self, epoch_pause: float) -> None:
        super().__init__()
        self.epoch_pause = epoch_pause

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        del epoch, logs
        if not getattr(self.model, "stop_training", False):
            time.sleep(self.epoch_pause)


def build(config: TrainerConfig) -> TrainingSetup:
    """The digits example plus the pausing callback."""
    hyper = dict(config.hyperparameters)
    epoch_pause = float(hyper.pop("epochPauseSeconds", 1.0))
    setup = digits.build(config)
    setup.callbacks = (*setup.callbacks, _Pause(epoch_pause))
    return setup
