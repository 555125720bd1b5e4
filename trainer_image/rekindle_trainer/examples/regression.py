"""A synthetic regression: y = x·w + noise, generated from the seed (no download).

Hyperparameters: ``samples`` (2048), ``features`` (16), ``noise`` (0.1),
``learningRate`` (0.01), ``dataset`` (false: arrays; true: a ``tf.data.Dataset``
of batches, to exercise that path).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rekindle_trainer.core.config import ConfigError, TrainerConfig
from rekindle_trainer.examples.hyper import whole
from rekindle_trainer.training.setup import TrainingSetup


def build(config: TrainerConfig) -> TrainingSetup:
    """Generated data split 80/20 and a two-layer regressor."""
    samples = whole(config, "samples", 2048, 16, 10_000_000)
    features = whole(config, "features", 16, 1, 10_000)
    noise = float(config.hyperparameters.get("noise", 0.1))
    learning_rate = float(config.hyperparameters.get("learningRate", 0.01))
    as_dataset = config.hyperparameters.get("dataset", False)
    if not isinstance(as_dataset, bool):
        raise ConfigError("hyperparameters.dataset", f"expected true or false, got {as_dataset!r}")
    rng = np.random.default_rng(config.seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    w = rng.normal(size=(features, 1)).astype("float32")
    y = (x @ w + noise * rng.normal(size=(samples, 1))).astype("float32")
    cut = int(samples * 0.8)
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    train: object = (x[:cut], y[:cut])
    if as_dataset:
        train = tf.data.Dataset.from_tensor_slices((x[:cut], y[:cut])).batch(config.batch_size)
    return TrainingSetup(model=model, train=train, validation=(x[cut:], y[cut:]))
