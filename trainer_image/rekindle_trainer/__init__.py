"""Rekindle's trainer: Keras training that checkpoints, resumes exactly and stops early.

Library API (TensorFlow loads on first use)::

    from rekindle_trainer import session, TrainingSetup, TrainerConfig

See :mod:`rekindle_trainer.training.session` for a complete script and
:mod:`rekindle_trainer.training.setup` for the ``module:function`` entrypoint signature.
"""

from __future__ import annotations

from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.training.session import Session, session
from rekindle_trainer.training.setup import TrainingSetup

__all__ = ["Session", "TrainerConfig", "TrainingSetup", "session"]
