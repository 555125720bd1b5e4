"""Work around Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` (Keras 3.15 only).

Keras 3 cannot ``fit`` under TensorFlow's multi-worker strategy out of the box
(keras-team/keras#20585, tensorflow/tensorflow#72388). Measured with Keras
3.15.1 and TensorFlow 2.21 on two loopback workers, it fails twice:

1. ``_maybe_symbolic_build`` averages the first distributed batch with
   ``strategy.reduce`` to learn its shapes ("Attempt to convert a value
   (PerReplica…) to a Tensor"). :func:`~rekindle_trainer.training.strategy.uneven_first_batch`
   already gives it the local replica's slice instead (it does so for every
   strategy of several replicas).
2. After every step, ``reduce_per_replica`` with reduction ``"auto"`` calls
   ``strategy.reduce("MEAN", v, axis=0)`` on the scalar logs ("Invalid
   reduction dimension 0 for input with 0 dimensions"). :func:`installed`
   replaces it, for a multi-worker strategy and the ``"auto"``/``"mean"``
   reductions only, with the local replica's value: the logs are results of
   Keras metrics whose variables every replica all-reduces on update, so they
   are the same on every replica of every worker already.

Both are private Keras functions, so the patch is pinned to the Keras minor it
was checked with (:data:`CHECKED_MINOR`): with another one, a gang refuses to
start (:func:`check_version`) rather than train on a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from rekindle_trainer.core.config import ConfigError

#: The Keras minor version the workaround was checked with.
CHECKED_MINOR: Final = (3, 15)


def check_version(version: str) -> None:
    """Refuse a Keras whose minor is not :data:`CHECKED_MINOR` (for a gang only).

    Raises:
        ConfigError: naming ``workers`` and the Keras version to install.
    """
    parts = version.split(".")
    try:
        minor = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        minor = None
    if minor != CHECKED_MINOR:
        wanted = ".".join(map(str, CHECKED_MINOR))
        raise ConfigError(
            "workers",
            f"several workers need Keras {wanted}.x (its MultiWorkerMirroredStrategy "
            f"workaround is checked only there, see keras-team/keras#20585), this image "
            f"has Keras {version}; install keras=={wanted}.* or train with workers: 1",
        )


def local_reduction(original: Callable[..., Any]) -> Callable[..., Any]:
    """``reduce_per_replica`` that takes the local replica's value under a gang's strategy.

    Every other strategy and reduction goes to ``original``.
    """
    import tensorflow as tf  # noqa: PLC0415
    from keras.src.backend.tensorflow import trainer  # noqa: PLC0415

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        multi_worker = trainer._collective_all_reduce_multi_worker(strategy)
        if not multi_worker or reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)

        def local(value: Any) -> Any:
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        return tf.nest.map_structure(local, values)

    return reduce_per_replica


@contextmanager
def installed(strategy: Any) -> Iterator[None]:
    """While active, Keras reduces a gang's logs with :func:`local_reduction`.

    Nothing changes unless ``strategy`` is a multi-worker strategy; then the Keras
    version is checked first (:func:`check_version`).
    """
    from keras.src.backend.tensorflow import trainer  # noqa: PLC0415

    if not trainer._collective_all_reduce_multi_worker(strategy):
        yield
        return
    import keras  # noqa: PLC0415

    check_version(keras.__version__)
    original = trainer.reduce_per_replica
    trainer.reduce_per_replica = local_reduction(original)
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
