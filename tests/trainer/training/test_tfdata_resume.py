"""A file-based ``tf.data`` pipeline resumed from its iterator state, or by skipping.

The pipeline is the digits-from-TFRecord example (records written by the test,
a few hundred of them): an epoch resumed from a checkpoint that holds the
iterator's state restores it and reads no batch again; one resumed from a
checkpoint without it (an older release's) skips; both end bitwise identical to
the uninterrupted run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from rekindle_trainer.checkpoint.store import CheckpointStore, Snapshot
from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.examples import digits_records
from rekindle_trainer.training import iterators, loop
from rekindle_trainer.training.setup import TrainingSetup
from tests.trainer import helpers
from tests.trainer.training.test_resume import CrashAt, attempt

RECORDS = 240  # 15 steps of 16 per epoch


def _doc(records_dir: Path) -> dict[str, Any]:
    return {
        "entrypoint": "rekindle_trainer.examples.digits_records:build",
        "epochs": 2,
        "batchSize": 16,
        "seed": 5,
        "hyperparameters": {
            "records": RECORDS,
            "shards": 3,
            "shuffleBuffer": 64,
            "mapCost": 2,
            "units": 16,
            "recordsDir": str(records_dir),
        },
        "checkpoint": {"everyEpochs": 1, "everySteps": 4, "keep": 50},
        "earlyStopping": {"enabled": False},
    }


def _build(config: TrainerConfig) -> TrainingSetup:
    return digits_records.build(config)


def _strip_iterator_state(folder: Path) -> str:
    """Rewrite the newest checkpoint without its iterator state, as an older release wrote it."""
    store = CheckpointStore(folder / "ckpt")
    loaded, _ = store.latest_valid()
    assert loaded is not None
    assert iterators.GROUP in loaded.groups
    groups = {g: a for g, a in loaded.groups.items() if g != iterators.GROUP}
    meta = {
        k: v
        for k, v in loaded.manifest.items()
        if k not in ("format_version", "name", "created", "arrays", "files", "manifest_crc32")
    }
    meta["data"] = {k: v for k, v in meta["data"].items() if not k.startswith("iterator")}
    store.write(Snapshot(groups=groups, meta=meta))  # same position, other state: replaced
    return loaded.name


@pytest.mark.slow
def test_file_pipeline_resumes_from_its_iterator_bitwise_identical(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = _doc(tmp_path / "records")
    reference = attempt(tmp_path / "ref", doc, build=_build)
    assert reference.exit_code == 0
    faulty = tmp_path / "faulty"
    attempt(faulty, doc, build=_build, callbacks=(CrashAt(10),))  # saved at step 8
    loaded, _ = CheckpointStore(faulty / "ckpt").latest_valid()
    assert loaded is not None
    assert loaded.manifest["step_in_epoch"] == 8
    assert loaded.manifest["data"]["iterator"] == "full"
    with caplog.at_level(logging.INFO, logger="rekindle_trainer.training"):
        resumed = attempt(faulty, doc, number=2, build=_build)
    assert resumed.exit_code == 0
    assert "at batch 8 from its saved iterator state (full checkpoint)" in caplog.text
    assert "by skipping" not in caplog.text
    helpers.assert_same_arrays(helpers.final_model(faulty), helpers.final_model(tmp_path / "ref"))


@pytest.mark.slow
def test_checkpoint_without_iterator_state_resumes_by_skipping_bitwise_identical(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = _doc(tmp_path / "records")
    reference = attempt(tmp_path / "ref", doc, build=_build)
    faulty = tmp_path / "faulty"
    attempt(faulty, doc, build=_build, callbacks=(CrashAt(22),))  # saved at step 20 (5 of 15)
    _strip_iterator_state(faulty)
    with caplog.at_level(logging.INFO, logger="rekindle_trainer.training.data"):
        resumed = attempt(faulty, doc, number=2, build=_build)
    assert resumed.exit_code == 0
    assert "by skipping 5 batch(es): the checkpoint holds no iterator state" in caplog.text
    helpers.assert_same_arrays(helpers.final_model(faulty), helpers.final_model(tmp_path / "ref"))
    assert reference.exit_code == 0


def _pipeline(*, symbolic: bool = False) -> tf.data.Dataset:
    def slow(x: tf.Tensor) -> tf.Tensor:
        return x * 2

    dataset = tf.data.Dataset.range(100).shuffle(10, seed=1, reshuffle_each_iteration=False)
    dataset = dataset.map(slow, num_parallel_calls=4, deterministic=True).batch(7).prefetch(2)
    if symbolic:
        options = tf.data.Options()
        options.experimental_symbolic_checkpoint = True
        dataset = dataset.with_options(options)
    return dataset


@pytest.mark.parametrize("symbolic", [False, True])
def test_tracked_iterator_state_restores_the_same_following_batches(symbolic: bool) -> None:
    tracker = iterators.IteratorTracker(symbolic=symbolic)
    live = iter(tracker.wrap(_pipeline(symbolic=symbolic), None))
    for _ in range(4):
        next(live)
    saved = tracker.save()
    assert saved.state is not None
    assert saved.state.dtype == np.uint8
    expected = [b.numpy().tolist() for b in live]
    state = iterators.saved_state({iterators.GROUP: [(iterators.ARRAY, saved.state)]})
    assert state is not None
    fresh = _pipeline(symbolic=symbolic)
    restored = iter(iterators.IteratorTracker(symbolic=symbolic).wrap(fresh, state))
    assert [b.numpy().tolist() for b in restored] == expected
    skipped = iter(iterators.IteratorTracker(symbolic=symbolic).wrap(fresh, None, skip=4))
    assert [b.numpy().tolist() for b in skipped] == expected


def other_pipeline() -> tf.data.Dataset:
    return tf.data.Dataset.range(6).batch(2)


def test_a_state_from_another_pipeline_skips_instead_and_older_checkpoints_hold_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = iterators.IteratorTracker(symbolic=True)
    live = iter(tracker.wrap(_pipeline(), None))
    next(live)
    saved = tracker.save()
    assert saved.state is not None
    skipping = iterators.IteratorTracker(symbolic=True).wrap(
        other_pipeline(), saved.state.tobytes(), skip=2
    )
    assert [b.numpy().tolist() for b in skipping] == [[4, 5]]
    assert "its saved iterator state does not restore" in caplog.text
    assert iterators.saved_state({"model": []}) is None
    assert iterators.IteratorTracker(symbolic=True).save().why_not == (
        "no iterator of the dataset is in use"
    )


def test_symbolic_checkpointing_is_the_pipelines_choice() -> None:
    assert iterators.is_symbolic(_pipeline(symbolic=True)) is True
    assert iterators.is_symbolic(_pipeline()) is False


def test_a_distribution_strategy_keeps_resuming_by_skipping_and_says_why() -> None:
    def model() -> keras.Model:
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    assert loop._untracked_because(model()) is None
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = model()
    assert loop._untracked_because(mirrored) == (
        "MirroredStrategy with 1 replica(s) builds its own iterators from the dataset, "
        "which are not checkpointed"
    )
