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
        self._sum: Any = None

    def agree(self, flags: Sequence[bool]) -> tuple[bool, ...]:
        """Each flag, raised if any worker raised it."""
        if not self.gang:
            return tuple(bool(f) for f in flags)
        import tensorflow as tf  # noqa: PLC0415

        if self._sum is None:
            self._sum = tf.function(self._gang_sum)  # traced: a third of the eager cost
        local = self._sum(tf.constant([int(bool(f)) for f in flags], tf.int32))
        return tuple(bool(v > 0) for v in local.numpy())

    def _gang_sum(self, flags: Any) -> Any:
        """The sum of every worker's ``flags`` (each local replica holds this worker's)."""
        import tensorflow as tf  # noqa: PLC0415

        values = self.strategy.experimental_distribute_values_from_function(lambda _: flags)
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

    def barrier(self) -> None:
        """Return once every worker of the gang is here (at once for one worker)."""
        self.agree((True,))
