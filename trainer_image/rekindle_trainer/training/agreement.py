"""The gang's workers agree on a step's flags, so that they all save and stop together.

A save reads every variable, and reading a Keras metric's variable (an
on-read-synchronized one) under ``MultiWorkerMirroredStrategy`` is a collective:
every worker must save at the same step or the gang hangs. Epoch and step
triggers fall on the same step everywhere by themselves; a SIGTERM to one worker
and the ``everySeconds`` timer do not. After every step each worker therefore
contributes its flags (SIGTERM seen, timer due) to one all-reduce (a sum): the
gang acts on a flag when any worker raised it, at the same step, as
TensorFlow's ``PreemptionCheckpointHandler`` does. One worker agrees with itself
without any collective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Agreement:
    """All-reduces a few boolean flags over the gang after each step.

    Args:
        strategy: the attempt's strategy; anything but a multi-worker one makes
            :meth:`agree` return the flags unchanged.
    """

    def __init__(self, strategy: Any) -> None:
        from keras.src.backend.tensorflow import trainer  # noqa: PLC0415

        self.strategy = strategy
        self.gang = bool(trainer._collective_all_reduce_multi_worker(strategy))

    def agree(self, flags: Sequence[bool]) -> tuple[bool, ...]:
        """Each flag, raised if any worker raised it."""
        if not self.gang:
            return tuple(bool(f) for f in flags)
        import tensorflow as tf  # noqa: PLC0415

        ints = [int(bool(f)) for f in flags]
        # Each local replica holds this worker's flags; the sum runs over the gang.
        values = self.strategy.experimental_distribute_values_from_function(
            lambda _: tf.constant(ints, tf.int32)
        )
        local = self.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)
        return tuple(bool(v > 0) for v in local.numpy())

    def barrier(self) -> None:
        """Return once every worker of the gang is here (at once for one worker)."""
        self.agree((True,))
