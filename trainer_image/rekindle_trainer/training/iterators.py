"""A ``tf.data`` pipeline resumed from its iterator's saved state instead of by skipping.

Skipping ``k`` batches of a file pipeline reads, parses and decodes every one of
them again, so a resume late in a long epoch costs time in proportion to the
position. Instead, the trainer hands ``model.fit`` the user's dataset wrapped in
a :class:`TrackedDataset`: each iterator Keras creates from it is remembered (the
newest is the one training reads from), and a save serializes that iterator's
state (``tf.data``'s own iterator checkpointing) into the same checkpoint as the
weights, so that a torn or partial save never mixes states. The state holds the
elements in the pipeline's buffers (shuffle, prefetch, parallel map), up to
:data:`MAX_STATE_BYTES`; a pipeline that sets
``options.experimental_symbolic_checkpoint = True`` saves positions only and
computes those elements again on restore. A resumed attempt restores the
iterator and trains on at once; the elements and their order are those of the
uninterrupted run.

It falls back to skipping, and says why in the log, when the checkpoint holds no
iterator state (an older release wrote it, or the save could not serialize the
pipeline), when the restore fails (the pipeline changed), or when a distribution
strategy builds its own iterators (``MirroredStrategy``, even over one device; a gang).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import tensorflow as tf
from tensorflow.python.data.ops import dataset_ops

log = logging.getLogger(__name__)

#: The checkpoint group and array name that hold the iterator state.
GROUP: Final = "data"
ARRAY: Final = "iterator"
#: Larger states (a pipeline checkpointed in full with big buffers) are not saved.
MAX_STATE_BYTES: Final = 256 << 20


def is_symbolic(dataset: tf.data.Dataset) -> bool:
    """Whether the pipeline asks for symbolic checkpointing (else it is checkpointed in full).

    Symbolic checkpointing is left to the pipeline: on TensorFlow 2.21 turning it on
    slowed a parallel-map TFRecord pipeline down by 1.8x on every step (measured:
    ``docs/benchmarks.md``), to save a state that is small anyway when the buffers are
    (records in a shuffle buffer, a few prefetched batches).
    """
    return bool(dataset.options().experimental_symbolic_checkpoint)


class TrackedDataset(dataset_ops.UnaryUnchangedStructureDataset):  # type: ignore[misc]
    """The user's dataset unchanged, whose iterators are remembered and may start restored.

    Each new iterator is restored from ``state``; without one, or when it does not
    restore (the pipeline changed), ``skip`` batches are read and dropped instead: the
    iterator stays the pipeline's own, so that a later save can still checkpoint it.
    The first iterator logs which way it went.
    """

    def __init__(
        self, inner: tf.data.Dataset, tracker: IteratorTracker, state: bytes | None, skip: int
    ) -> None:
        self._tracker, self._state, self._skip = tracker, state, skip
        self._told = state is None  # a resume by skipping was logged by the caller
        super().__init__(inner, inner._variant_tensor)

    def __iter__(self) -> Any:
        iterator = super().__iter__()
        if self._state is not None:
            try:
                iterator._restore(tf.constant(self._state))
            except (tf.errors.OpError, ValueError, TypeError) as exc:
                self._state = None  # this and any later iterator skip
                iterator = super().__iter__()
                log.warning(
                    "resuming the tf.data pipeline by skipping %d batch(es): its saved iterator "
                    "state does not restore (%s); was the pipeline changed?",
                    self._skip,
                    _first_line(exc),
                )
            else:
                self._tell_restored()
        if self._state is None:
            for _ in range(self._skip):
                next(iterator)
        self._tracker.started(iterator)
        return iterator

    def _tell_restored(self) -> None:
        if not self._told:
            self._told = True
            log.info(
                "resuming the tf.data pipeline at batch %d from its saved iterator state "
                "(%s checkpoint): no batch is read again",
                self._skip,
                "symbolic" if self._tracker.symbolic else "full",
            )


@dataclass
class SavedIterator:
    """One save's iterator state, or why there is none."""

    state: np.ndarray | None
    why_not: str | None = None


class IteratorTracker:
    """Remembers the iterator training reads from; saves and restores its state.

    Args:
        symbolic: whether the pipeline is checkpointed symbolically (for the log).
    """

    def __init__(self, symbolic: bool) -> None:
        self.symbolic = symbolic
        self._live: weakref.ref[Any] | None = None
        #: Set once a save failed: later saves do not try again.
        self.broken: str | None = None

    def started(self, iterator: Any) -> None:
        """Keras created ``iterator``: the newest one is the one it trains from."""
        self._live = weakref.ref(iterator)

    def wrap(
        self, dataset: tf.data.Dataset, state: bytes | None, *, skip: int = 0
    ) -> TrackedDataset:
        """``dataset`` for ``fit``, its iterators starting from ``state``, else batch ``skip``."""
        return TrackedDataset(dataset, self, state, skip)

    def save(self) -> SavedIterator:
        """The live iterator's state as bytes (a uint8 array), or why there is none."""
        if self.broken is not None:
            return SavedIterator(None, self.broken)
        iterator = self._live() if self._live is not None else None
        if iterator is None:
            return SavedIterator(None, "no iterator of the dataset is in use")
        try:
            raw = bytes(iterator._save().numpy())
        except (tf.errors.OpError, ValueError, TypeError) as exc:
            self.broken = _first_line(exc)
            log.warning(
                "the training dataset's iterator cannot be checkpointed (%s): a resume skips "
                "the batches already trained instead",
                self.broken,
            )
            return SavedIterator(None, self.broken)
        if len(raw) > MAX_STATE_BYTES:
            return SavedIterator(
                None,
                f"its state is {len(raw)} bytes, above the {MAX_STATE_BYTES} allowed; set "
                "options.experimental_symbolic_checkpoint = True to save positions only",
            )
        return SavedIterator(np.frombuffer(raw, dtype=np.uint8).copy())


def saved_state(groups: dict[str, list[tuple[str, np.ndarray]]]) -> bytes | None:
    """The iterator state a checkpoint holds, or ``None`` (older checkpoints hold none)."""
    for name, array in groups.get(GROUP, []):
        if name == ARRAY:
            return np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
