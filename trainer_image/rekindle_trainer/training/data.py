"""Training data as fit segments that start at any (epoch, step).

A run is trained in at most two ``model.fit`` calls: the rest of an
interrupted epoch (from its step ``k``), then whole epochs. Each source turns
``(first_epoch, last_epoch, skip)`` into what ``fit`` takes. Arrays are
batched here in an order keyed on ``(seed, epoch, pass)`` (TensorFlow's
stateless shuffle, one pass over the data at a time, when the stream reaches
it), so any position can be replayed exactly and the first step never waits on
the epoch's length; datasets supplied whole are resumed by skipping batches,
which is exact only if re-iterating them repeats their order.

On a gang (``MultiWorkerMirroredStrategy``) ``batchSize`` stays the *global*
batch: every step, the global batch of indices is cut into one contiguous slice
per replica of the gang (replica ``r`` of ``R`` takes rows ``r*n//R`` to
``(r+1)*n//R`` of a batch of ``n``), and each worker reads only its own
replicas' slices (:class:`Shard`). What a worker trains on at a step is
therefore a function of ``(seed, epoch, step, worker)`` alone, and a resumed
gang replays it exactly. Datasets supplied whole are split by TensorFlow's
automatic sharding instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from rekindle_trainer.core.config import ConfigError
from rekindle_trainer.training import iterators

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """A gang's worker's replicas: ``first`` to ``first + local - 1`` of the gang's ``total``."""

    first: int
    local: int
    total: int

    def __post_init__(self) -> None:
        if not (self.first >= 0 and self.local >= 1 and self.first + self.local <= self.total):
            raise ValueError(f"replicas {self.first}+{self.local} do not fit in {self.total}")

    @classmethod
    def of(cls, strategy: Any) -> Shard | None:
        """The shard of this worker under a multi-worker strategy; ``None`` under any other."""
        resolver = getattr(strategy, "cluster_resolver", None)
        if resolver is None or not resolver.cluster_spec().as_dict():
            return None
        workers = resolver.cluster_spec().num_tasks(resolver.task_type)
        if workers <= 1:
            return None
        total = int(strategy.num_replicas_in_sync)
        local = total // workers
        return cls(first=int(resolver.task_id) * local, local=local, total=total)

    def bounds(self, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Start and end rows of this worker's slices of a global batch of ``n`` rows."""
        replicas = tf.range(self.first, self.first + self.local, dtype=tf.int64)
        return replicas * n // self.total, (replicas + 1) * n // self.total


@dataclass(frozen=True)
class Segment:
    """Arguments for one ``model.fit`` call."""

    x: Any
    steps_per_epoch: int | None


class ArraySource:
    """In-memory arrays, batched in an order keyed on ``(seed, epoch)``.

    Args:
        arrays: ``(x, y)`` or ``(x, y, sample_weight)``; ``x`` may be nested.
        batch_size: examples per step (over the whole gang).
        seed: the run's seed.
        steps_per_epoch: steps per epoch, or ``None`` for one pass over the data
            (the last batch may be short). More steps than one pass use further
            passes, each shuffled with its own key.
        shard: this worker's replicas on a gang (each step yields one slice per
            local replica), or ``None``: whole global batches.
    """

    kind = "arrays"

    def __init__(
        self,
        arrays: tuple[Any, ...],
        batch_size: int,
        seed: int,
        steps_per_epoch: int | None,
        shard: Shard | None = None,
    ) -> None:
        leaves = tf.nest.flatten(arrays)
        self.size = len(leaves[0])
        if self.size == 0:
            raise ConfigError("train", "the training arrays are empty")
        if any(len(leaf) != self.size for leaf in leaves):
            raise ConfigError("train", "the training arrays have different lengths")
        self.arrays = tf.nest.map_structure(tf.convert_to_tensor, arrays)
        self.batch_size = batch_size
        self.seed = seed
        one_pass = math.ceil(self.size / batch_size)
        self.steps_per_epoch = steps_per_epoch or one_pass
        self.passes = (
            1 if steps_per_epoch is None else math.ceil(steps_per_epoch * batch_size / self.size)
        )
        self.replayable = True
        self.shard = shard
        if shard is not None:
            _check_shard(self.size * self.passes, batch_size, self.steps_per_epoch, shard.total)

    def _epoch_batches(self, epoch: Any, skip: int = 0) -> tf.data.Dataset:
        """The batches of ``epoch`` from batch ``skip`` on, each pass shuffled when it is reached.

        An epoch is its passes' orders (pass ``p`` shuffled with the key
        ``(seed, epoch * passes + p)``) laid end to end and cut into batches, so
        that no step waits on the epoch's length: a pass is shuffled only when
        the stream reaches it, and a resumed epoch starts at the pass and offset
        of its first example instead of skipping the batches before it.
        """
        seed, size, passes = tf.constant(self.seed, tf.int64), self.size, self.passes
        epoch = tf.cast(epoch, tf.int64)
        start = skip * self.batch_size  # the first example of batch ``skip``
        first_pass = start // size

        def one_pass(p: tf.Tensor) -> tf.data.Dataset:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(size, dtype=tf.int64), seed=tf.stack([seed, epoch * passes + p])
            )
            offset = tf.where(p == first_pass, tf.constant(start % size, tf.int64), 0)
            return tf.data.Dataset.from_tensor_slices(order[offset:])

        return (
            tf.data.Dataset.range(first_pass, passes)
            .flat_map(one_pass)
            .batch(self.batch_size)
            .take(self.steps_per_epoch - skip)
        )

    def segment(self, first_epoch: int, last_epoch: int, skip: int) -> Segment:
        """Batches of epochs ``first_epoch`` … ``last_epoch - 1``, the first ``skip`` left out."""
        arrays = self.arrays

        def gather(indices: tf.Tensor) -> Any:
            return tf.nest.map_structure(lambda a: tf.gather(a, indices), arrays)

        later = tf.data.Dataset.range(first_epoch + 1, last_epoch).flat_map(self._epoch_batches)
        stream = self._epoch_batches(first_epoch, skip).concatenate(later)
        if self.shard is not None:
            stream = stream.flat_map(self._own_slices)
        stream = stream.map(gather).prefetch(tf.data.AUTOTUNE)
        steps = (
            self.steps_per_epoch - skip if last_epoch - first_epoch == 1 else self.steps_per_epoch
        )
        return Segment(stream, steps)

    def _own_slices(self, indices: tf.Tensor) -> tf.data.Dataset:
        """The worker's own slices of one global batch of indices, one per local replica."""
        assert self.shard is not None
        starts, ends = self.shard.bounds(tf.shape(indices, out_type=tf.int64)[0])
        slices = tf.data.Dataset.from_tensor_slices((starts, ends))
        return slices.map(lambda start, end: indices[start:end])


def _check_shard(available: int, batch_size: int, steps_per_epoch: int, replicas: int) -> None:
    """Every replica of the gang gets at least one example at every step, else a ConfigError.

    ``available`` is the examples an epoch's stream holds (its passes over the data).
    """
    last = min(batch_size, available - (steps_per_epoch - 1) * batch_size)
    if last < replicas:
        which = "a batch" if last == batch_size else "an epoch's last batch"
        raise ConfigError(
            "batchSize",
            f"the global batch is split over the gang's {replicas} replicas, but {which} "
            f"holds {last} example(s); choose a batchSize (or stepsPerEpoch) that leaves "
            "at least one example per replica",
        )


class DatasetSource:
    """A ``tf.data.Dataset`` of batches supplied by the user.

    Unless ``iterator_checkpoints`` says why not (a distribution strategy builds its
    own iterators), the iterator Keras creates is tracked (see
    :mod:`~rekindle_trainer.training.iterators`): every mid-epoch save holds the
    iterator's state, and an epoch resumed from such a checkpoint restores it instead
    of skipping the batches already trained.
    """

    kind = "tf.data"

    def __init__(
        self,
        dataset: tf.data.Dataset,
        steps_per_epoch: int | None,
        replayable: bool,
        *,
        iterator_checkpoints: str | None = None,
    ) -> None:
        cardinality = int(dataset.cardinality())
        if steps_per_epoch is None and cardinality < 0:
            raise ConfigError(
                "stepsPerEpoch",
                "required (a whole number >= 1) when the training dataset is infinite or of "
                "unknown length",
            )
        self.dataset = dataset
        self.configured_steps = steps_per_epoch
        self.steps_per_epoch = steps_per_epoch or cardinality
        self.replayable = replayable
        #: Why the iterator is not tracked (``None``: it is).
        self.untracked_because = iterator_checkpoints
        self.tracker: iterators.IteratorTracker | None = None
        if iterator_checkpoints is None:
            self.tracker = iterators.IteratorTracker(iterators.is_symbolic(dataset))
        #: The iterator state of the checkpoint this attempt resumed from, if it holds one.
        self.restored_state: bytes | None = None

    def segment(self, first_epoch: int, last_epoch: int, skip: int) -> Segment:
        """The dataset as it is, or the rest of one epoch when ``skip`` batches are done.

        The rest of an epoch starts from the restored iterator when the checkpoint
        holds its state and it restores; else the first ``skip`` batches are read and
        dropped. The log says which, and why.
        """
        del first_epoch, last_epoch
        state, self.restored_state = self.restored_state, None
        if self.tracker is None:
            if skip:
                log.info(
                    "resuming the tf.data pipeline by skipping %d batch(es): %s",
                    skip,
                    self.untracked_because,
                )
                rest = self.steps_per_epoch - skip
                return Segment(self.dataset.skip(skip).take(rest), rest)
            return Segment(self.dataset, self.configured_steps)
        if not skip:
            return Segment(self.tracker.wrap(self.dataset, None), self.configured_steps)
        rest = self.steps_per_epoch - skip
        if state is None:
            log.warning(
                "resuming the tf.data pipeline by skipping %d batch(es): the checkpoint holds no "
                "iterator state (written by an older release, or the save could not serialize "
                "the pipeline)",
                skip,
            )
        # Restored when training starts; the log then says how, or why it skipped after all.
        return Segment(self.tracker.wrap(self.dataset, state, skip=skip), rest)


class _SkippedPyDataset(keras.utils.PyDataset):  # type: ignore[misc]
    """The batches of a ``PyDataset`` from index ``skip`` on."""

    def __init__(self, inner: keras.utils.PyDataset, skip: int, count: int) -> None:
        super().__init__(
            workers=inner.workers,
            use_multiprocessing=inner.use_multiprocessing,
            max_queue_size=inner.max_queue_size,
        )
        self.inner, self.skip, self.count = inner, skip, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Any:
        return self.inner[index + self.skip]

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


class PyDatasetSource:
    """A ``keras.utils.PyDataset`` supplied by the user."""

    kind = "PyDataset"

    def __init__(
        self, dataset: keras.utils.PyDataset, steps_per_epoch: int | None, replayable: bool
    ) -> None:
        batches = dataset.num_batches
        if steps_per_epoch is None and batches is None:
            raise ConfigError(
                "stepsPerEpoch", "required (a whole number >= 1) when the PyDataset has no length"
            )
        self.dataset = dataset
        self.configured_steps = steps_per_epoch
        self.steps_per_epoch = int(steps_per_epoch or batches)
        self.replayable = replayable

    def segment(self, first_epoch: int, last_epoch: int, skip: int) -> Segment:
        """The dataset as it is, or its batches from index ``skip`` on."""
        del first_epoch, last_epoch
        if skip:
            rest = self.steps_per_epoch - skip
            return Segment(_SkippedPyDataset(self.dataset, skip, rest), rest)
        return Segment(self.dataset, self.configured_steps)


Source = ArraySource | DatasetSource | PyDatasetSource


def _is_arrays(value: Any) -> bool:
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        return False
    leaves = tf.nest.flatten(value)
    return bool(leaves) and all(isinstance(leaf, np.ndarray | tf.Tensor) for leaf in leaves)


def make_source(
    train: Any,
    batch_size: int,
    seed: int,
    steps_per_epoch: int | None,
    replayable: bool | None,
    *,
    shard: Shard | None = None,
    iterator_checkpoints: str | None = None,
) -> Source:
    """The source for ``TrainingSetup.train``; raise :class:`ConfigError` for anything else.

    ``shard`` (a gang's worker) applies to arrays; datasets are sharded by TensorFlow.
    ``iterator_checkpoints``: why a dataset's iterator cannot be checkpointed (``None``: it
    can), see :class:`DatasetSource`.
    """
    if isinstance(train, tf.data.Dataset):
        return DatasetSource(
            train, steps_per_epoch, bool(replayable), iterator_checkpoints=iterator_checkpoints
        )
    if isinstance(train, keras.utils.PyDataset):
        return PyDatasetSource(train, steps_per_epoch, bool(replayable))
    if _is_arrays(train):
        if replayable is False:
            raise ConfigError("replayable", "arrays are always replayable; leave it as None")
        return ArraySource(tuple(train), batch_size, seed, steps_per_epoch, shard)
    raise ConfigError(
        "train",
        f"got {type(train).__name__}; expected (x, y) or (x, y, sample_weight) arrays, "
        "a tf.data.Dataset or a keras.utils.PyDataset",
    )


def validation_arguments(validation: Any, batch_size: int) -> dict[str, Any]:
    """``fit`` keyword arguments for ``TrainingSetup.validation``."""
    if validation is None:
        return {}
    if isinstance(validation, tf.data.Dataset | keras.utils.PyDataset):
        return {"validation_data": validation}
    if _is_arrays(validation):
        return {"validation_data": tuple(validation), "validation_batch_size": batch_size}
    raise ConfigError(
        "validation",
        f"got {type(validation).__name__}; expected arrays, a tf.data.Dataset or a PyDataset",
    )
