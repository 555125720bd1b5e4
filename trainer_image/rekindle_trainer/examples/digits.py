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

from rekindle_trainer.core.config import ConfigError, TrainerConfig
from rekindle_trainer.training.setup import TrainingSetup


def _hyper(config: TrainerConfig, name: str, default: float, low: float, high: float) -> float:
    value = config.hyperparameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(
            f"hyperparameters.{name}", f"expected a number from {low} to {high}, got {value!r}"
        )
    return float(value)


def build(config: TrainerConfig) -> TrainingSetup:
    """Digits split into train/validation by the seed; a compiled classifier."""
    learning_rate = _hyper(config, "learningRate", 1e-3, 1e-6, 1.0)
    units = int(_hyper(config, "units", 64, 1, 4096))
    dropout = _hyper(config, "dropout", 0.2, 0.0, 0.9)
    fraction = _hyper(config, "validationFraction", 0.2, 0.05, 0.5)
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(config.seed).permutation(len(x))
    cut = int(len(x) * (1 - fraction))
    train, val = order[:cut], order[cut:]
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
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
    return TrainingSetup(model=model, train=(x[train], y[train]), validation=(x[val], y[val]))
