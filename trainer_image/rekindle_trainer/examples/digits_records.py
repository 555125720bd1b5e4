"""scikit-learn's digits read from TFRecord files through a ``tf.data`` pipeline.

The example writes its own records (no download): the training part of the
digits, repeated with a little noise keyed on each record's index up to
``records`` records, in ``shards`` files under ``recordsDir`` (default: a
folder in the system's temporary directory named after the settings; written
once, by a rename, and reused). The pipeline is the usual one of file-based
training: records → ``shuffle`` (seeded, the same order each epoch) → a parse
and augment ``map`` (parallel, deterministic order) → ``batch`` → ``prefetch``.
``mapCost`` repeats a deterministic transform inside the map to make it as
costly as decoding an image would be. Every element depends on the seed and
its record alone, so the pipeline is replayable; a resumed epoch restores its
iterator from the checkpoint instead of reading the batches before it again.

Hyperparameters: ``records`` (default 1437, the training split), ``shards`` (4),
``shuffleBuffer`` (1024), ``mapCost`` (0), ``recordsDir``, ``learningRate``
(0.001), ``units`` (64), ``dropout`` (0.2).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import numpy as np
import tensorflow as tf

from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.examples.digits import classifier, split
from rekindle_trainer.examples.hyper import number, whole
from rekindle_trainer.training.setup import TrainingSetup

FEATURES = 64
_SPEC = {
    "x": tf.io.FixedLenFeature([FEATURES], tf.float32),
    "y": tf.io.FixedLenFeature([], tf.int64),
    "index": tf.io.FixedLenFeature([], tf.int64),
}


def _split(seed: int) -> tuple[np.ndarray, ...]:
    """The digits example's 80/20 split, labels as int64 (what a TFRecord holds)."""
    x_train, y_train, x_val, y_val = split(seed, 0.2)
    return x_train, y_train.astype("int64"), x_val, y_val.astype("int64")


def _example(x: np.ndarray, y: int, index: int) -> bytes:
    feature = {
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=x)),
        "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[y])),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return bytes(example.SerializeToString())


def write_records(
    folder: Path, x: np.ndarray, y: np.ndarray, records: int, shards: int
) -> list[str]:
    """The shard files holding ``records`` records; written once (by a rename), then reused.

    Record ``i`` is training example ``i % len(x)`` with noise keyed on ``i`` (after the
    first pass), so that a large set is not the same few digits again and again.
    """
    names = [str(folder / f"digits-{s:03d}-of-{shards:03d}.tfrecord") for s in range(shards)]
    if folder.is_dir():
        return names
    temp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir(parents=True)
    writers = [tf.io.TFRecordWriter(str(temp / Path(n).name)) for n in names]
    for index in range(records):
        row = x[index % len(x)]
        if index >= len(x):
            noise = np.random.default_rng(index).normal(0.0, 0.05, FEATURES)
            row = np.clip(row + noise, 0.0, 1.0).astype("float32")
        writers[index % shards].write(_example(row, int(y[index % len(x)]), index))
    for writer in writers:
        writer.close()
    try:
        os.rename(temp, folder)
    except OSError:  # another process wrote it first: theirs is the same
        for path in temp.iterdir():
            path.unlink()
        temp.rmdir()
    return names


def parse_and_augment(seed: int, cost: int) -> tf.types.experimental.GenericFunction:
    """The map: parse one record, add noise keyed on (seed, record), ``cost`` extra transforms."""
    mixing = tf.constant(
        np.random.default_rng(seed).normal(0, 0.125, (FEATURES, FEATURES)), "float32"
    )

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        example = tf.io.parse_single_example(record, _SPEC)
        x = example["x"]
        key = tf.stack([tf.constant(seed, tf.int64), example["index"]])
        x = x + tf.random.stateless_normal([FEATURES], seed=key, stddev=0.02)
        for _ in range(cost):  # a stand-in for decoding and augmenting an image
            x = 0.5 * x + 0.5 * tf.tanh(tf.linalg.matvec(mixing, x))
        return x, example["y"]

    return parse


def pipeline(
    files: list[str], records: int, config: TrainerConfig, shuffle_buffer: int, cost: int
) -> tf.data.Dataset:
    """TFRecord files → shuffle → parse/augment map → batch → prefetch.

    The record count is asserted so that the epoch's length is known (``fit`` needs no
    ``stepsPerEpoch``).
    """
    dataset = tf.data.TFRecordDataset(files).apply(tf.data.experimental.assert_cardinality(records))
    if shuffle_buffer > 1:
        dataset = dataset.shuffle(shuffle_buffer, seed=config.seed, reshuffle_each_iteration=False)
    dataset = dataset.map(
        parse_and_augment(config.seed, cost),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,  # the order of the records, whatever finishes first
    )
    return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


def build(config: TrainerConfig) -> TrainingSetup:
    """Write (or reuse) the records; the pipeline over them and a compiled classifier."""
    records = whole(config, "records", 1437, 1, 10_000_000)
    shards = whole(config, "shards", 4, 1, 1024)
    shuffle_buffer = whole(config, "shuffleBuffer", 1024, 0, 1_000_000)
    cost = whole(config, "mapCost", 0, 0, 10_000)
    units = whole(config, "units", 64, 1, 4096)
    dropout = number(config, "dropout", 0.2, 0.0, 0.9)
    learning_rate = number(config, "learningRate", 1e-3, 1e-6, 1.0)
    x_train, y_train, x_val, y_val = _split(config.seed)
    default_dir = Path(tempfile.gettempdir()) / f"rekindle-digits-{config.seed}-{records}-{shards}"
    folder = Path(str(config.hyperparameters.get("recordsDir", default_dir)))
    files = write_records(folder, x_train, y_train, records, shards)
    model = classifier(FEATURES, units, dropout, learning_rate)
    return TrainingSetup(
        model=model,
        train=pipeline(files, records, config, shuffle_buffer, cost),
        validation=(x_val, y_val),
        replayable=True,
    )
