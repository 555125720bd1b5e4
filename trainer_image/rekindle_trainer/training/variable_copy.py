"""Copy TensorFlow variables into a :class:`~rekindle_trainer.checkpoint.hostcopy.HostBuffers` set.

A variable is read through DLPack as a view of its buffer, so the copy into the
pool's array is the only pass over the data (``numpy()`` would make a second,
freshly allocated copy first). This is the one part of a save that runs on the
training thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from rekindle_trainer.checkpoint.hostcopy import HostBuffers


class _Capsule:
    """Hands a DLPack capsule to ``np.from_dlpack`` (which wants an object, not a capsule)."""

    def __init__(self, capsule: Any) -> None:
        self.capsule = capsule

    def __dlpack__(self, **_: Any) -> Any:
        return self.capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # CPU; a device tensor fails in from_dlpack and takes numpy() instead


def read_view(variable: Any) -> np.ndarray:
    """The variable's current value as a host array, a view of its buffer where possible.

    The view is valid until the next training step: copy it before training goes on.
    """
    reader = getattr(getattr(variable, "value", None), "read_value", None)
    if reader is not None:
        try:
            view: np.ndarray = np.from_dlpack(_Capsule(tf.experimental.dlpack.to_dlpack(reader())))
            return view
        except Exception:  # device tensors, dtypes DLPack lacks: the plain copy below
            pass
    return np.asarray(variable.numpy())


def copy_into(values: Mapping[str, Sequence[Any]], buffers: HostBuffers) -> None:
    """Copy every variable into its host array (the one part of a save on the training thread)."""
    targets = iter(buffers.arrays)
    for variables in values.values():
        for variable in variables:
            np.copyto(next(targets), read_view(variable), casting="no")


def read_all(values: Mapping[str, Sequence[Any]]) -> None:
    """Read every variable as :func:`copy_into` does, keeping nothing.

    A gang's worker other than the chief takes part in a save this way: reading an
    on-read-synchronized variable (a Keras metric's) all-reduces it over the gang.
    """
    for variables in values.values():
        for variable in variables:
            read_view(variable)
