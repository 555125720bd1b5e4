"""scikit-learn's 8x8 digits with a small dense/dropout classifier.

The data ships inside scikit-learn, so nothing is downloaded. With the default
early stopping on ``val_loss`` the run stops after a dozen epochs or so, within
seconds on a CPU. Hyperparameters: ``learningRate`` (default 0.001), ``units``
(64), ``dropout`` (0.2), ``validationFraction`` (0.2).
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits

from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.examples.hyper import number
from rekindle_trainer.training.setup import TrainingSetup


def split(seed: int, fraction: float) -> tuple[np.ndarray, ...]:
    """Digits scaled to [0, 1], shuffled by ``seed``: ``x_train, y_train, x_val, y_val``."""
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - fraction))
    train, val = order[:cut], order[cut:]
    return x[train], y[train], x[val], y[val]


def classifier(features: int, units: int, dropout: float, learning_rate: float) -> keras.Model:
    """The compiled dense/dropout classifier both digits examples train."""
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build(config: TrainerConfig) -> TrainingSetup:
    """Digits split into train/validation by the seed; a compiled classifier."""
    learning_rate = number(config, "learningRate", 1e-3, 1e-6, 1.0)
    units = int(number(config, "units", 64, 1, 4096))
    dropout = number(config, "dropout", 0.2, 0.0, 0.9)
    fraction = number(config, "validationFraction", 0.2, 0.05, 0.5)
    x_train, y_train, x_val, y_val = split(config.seed, fraction)
    model = classifier(x_train.shape[1], units, dropout, learning_rate)
    return TrainingSetup(model=model, train=(x_train, y_train), validation=(x_val, y_val))
