"""Rekindle's trainer: Keras training that checkpoints, resumes exactly and stops early.

Library API (TensorFlow loads on first use)::

    from rekindle_trainer import session, TrainingSetup, TrainerConfig

See :mod:`rekindle_trainer.session` for a complete script and
:mod:`rekindle_trainer.setup` for the ``module:function`` entrypoint signature.
"""

from __future__ import annotations

from rekindle_trainer.config import TrainerConfig
from rekindle_trainer.session import Session, session
from rekindle_trainer.setup import TrainingSetup

__all__ = ["Session", "TrainerConfig", "TrainingSetup", "session"]
