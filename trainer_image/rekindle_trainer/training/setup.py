"""What a user's entrypoint returns, and how ``module:function`` is loaded.

The entrypoint signature is::

    def build(config: rekindle_trainer.TrainerConfig) -> rekindle_trainer.TrainingSetup

It is called once per attempt, after the random seeds are set, inside the
distribution strategy's scope (``MirroredStrategy`` when several GPUs are
visible, or several CPU replicas are asked for; see ``strategy``) and with the
mixed-precision policy in force, so it must create and compile its model there.
It reads ``config.hyperparameters``, ``config.batch_size`` (the global batch, split
over the replicas) and ``config.seed`` as it likes. Training data may be

* arrays: ``(x, y)`` or ``(x, y, sample_weight)``, ``x`` a NumPy array or a
  dict/list of them. **Replayable**: Rekindle batches them itself in an order
  keyed on ``(seed, epoch)`` and resumes at the exact step.
* a ``tf.data.Dataset`` of batches, or a ``keras.utils.PyDataset``. **Not
  replayable** unless the entrypoint sets ``replayable=True``, promising that
  iterating it again yields the same batches in the same order (e.g. no
  ``shuffle``, or ``shuffle(seed=…, reshuffle_each_iteration=False)``; a
  ``PyDataset`` whose ``__getitem__`` depends on the index only). A
  ``tf.data.Dataset`` on one device (no distribution strategy) resumes mid-epoch from its iterator's
  state saved in the checkpoint (see ``training.iterators``); a ``PyDataset``,
  a checkpoint without that state, or a distribution strategy skip the batches already
  trained in the interrupted epoch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rekindle_trainer.core.config import ConfigError, TrainerConfig


class EntrypointError(ValueError):
    """The entrypoint cannot be imported, found, or returned the wrong thing (exit 2)."""


@dataclass
class TrainingSetup:
    """A compiled model and its data, as an entrypoint returns them.

    Attributes:
        model: a compiled ``keras.Model``.
        train: training data (arrays, ``tf.data.Dataset`` or ``keras.utils.PyDataset``).
        validation: validation data of the same kinds, or ``None``.
        callbacks: extra Keras callbacks (see the note on segments in ``loop``).
        replayable: ``None`` to decide from the data kind (arrays: yes, else no);
            ``True`` to promise that re-iterating ``train`` repeats its batches.
    """

    model: Any
    train: Any
    validation: Any = None
    callbacks: Sequence[Any] = field(default_factory=tuple)
    replayable: bool | None = None


Entrypoint = Callable[[TrainerConfig], TrainingSetup]


def load_entrypoint(spec: str) -> Entrypoint:
    """Import ``package.module:function``; raise :class:`EntrypointError` saying what failed."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError("entrypoint", f"expected 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise EntrypointError(
            f"entrypoint {spec!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, attribute, None)
    if function is None:
        raise EntrypointError(
            f"entrypoint {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        )
    if not callable(function):
        raise EntrypointError(f"entrypoint {spec!r}: {attribute!r} is not callable")
    return function  # type: ignore[no-any-return]


def check_setup(setup: Any, spec: str) -> TrainingSetup:
    """Check what an entrypoint returned; raise :class:`EntrypointError` naming the problem."""
    import keras  # noqa: PLC0415 - keeps this module importable without TensorFlow

    if not isinstance(setup, TrainingSetup):
        raise EntrypointError(
            f"entrypoint {spec!r} returned {type(setup).__name__}; expected "
            "rekindle_trainer.TrainingSetup(model, train, validation)"
        )
    if not isinstance(setup.model, keras.Model):
        raise EntrypointError(
            f"entrypoint {spec!r}: TrainingSetup.model is {type(setup.model).__name__}, "
            "expected a keras.Model"
        )
    if not setup.model.compiled:
        raise EntrypointError(
            f"entrypoint {spec!r}: the model is not compiled; call model.compile(...) in build()"
        )
    return setup
