"""Smaller parts: progress throttling, background saver, entrypoint loading, data order."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from rekindle_trainer.checkpoint.saver import BackgroundSaver
from rekindle_trainer.checkpoint.store import CheckpointStore, Published, Snapshot
from rekindle_trainer.contract import ProgressKind
from rekindle_trainer.core.config import ConfigError
from rekindle_trainer.reporting.progress import ProgressLog
from rekindle_trainer.training.data import ArraySource, make_source
from rekindle_trainer.training.session import StopRequest
from rekindle_trainer.training.setup import (
    EntrypointError,
    TrainingSetup,
    check_setup,
    load_entrypoint,
)
from tests.trainer import helpers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_step_events_are_throttled_and_flushed(tmp_path: Path) -> None:
    clock = Clock()
    log = ProgressLog(tmp_path / "progress.jsonl", clock=clock)
    log.emit(ProgressKind.STARTED, epoch=0, step=0, epochs=3, steps_per_epoch=10)
    written = 0
    for step in range(1, 9):
        clock.now += 0.125  # 8 steps a second; at most 5 events a second are written
        if log.step_due():
            log.emit(ProgressKind.STEP, epoch=1, step=step, logs={})
            written += 1
    events = helpers.progress(tmp_path)  # read while the file is still open: lines are flushed
    assert [e.kind for e in events].count(ProgressKind.STEP) == written == 4
    assert events[0].data == {"epoch": 0, "step": 0, "epochs": 3, "steps_per_epoch": 10}
    log.close()


def test_no_progress_file_means_no_events() -> None:
    log = ProgressLog(None)
    assert not log.step_due()
    log.emit(ProgressKind.FINISHED, outcome="completed")


def _snapshot(step: int) -> Snapshot:
    return Snapshot({"model": [("w", np.full(3, step, "float32"))]}, {"epoch": 0, "step": step})


def test_saver_writes_in_the_background_and_reports(tmp_path: Path) -> None:
    release = threading.Event()
    seen: list[str] = []

    def follow_up(snapshot: Snapshot, published: Published) -> None:
        release.wait(10)
        seen.append(published.name)

    saver = BackgroundSaver(CheckpointStore(tmp_path), follow_up)
    saver.submit(_snapshot(1))
    assert seen == []  # the training thread got control back before the write finished
    release.set()
    saver.submit(_snapshot(2))  # queued behind the first
    saver.drain()
    assert len(seen) == 2


def test_a_failed_write_is_raised_on_the_training_thread(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    saver = BackgroundSaver(CheckpointStore(blocker), lambda s, p: None)
    saver.submit(_snapshot(1))
    with pytest.raises(RuntimeError, match="checkpoint write failed"):
        saver.drain()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("tests.trainer.absent_module:build", "cannot import module"),
        ("tests.trainer.models:absent", "has no attribute 'absent'"),
        ("tests.trainer.helpers:REPO", "is not callable"),
    ],
)
def test_entrypoints_that_cannot_load(spec: str, words: str) -> None:
    with pytest.raises(EntrypointError, match=words):
        load_entrypoint(spec)


def test_entrypoint_results_are_checked() -> None:
    with pytest.raises(EntrypointError, match=r"expected rekindle_trainer\.TrainingSetup"):
        check_setup("model", "m:f")
    with pytest.raises(EntrypointError, match=r"keras\.Model"):
        check_setup(TrainingSetup(model=object(), train=None), "m:f")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(EntrypointError, match="not compiled"):
        check_setup(TrainingSetup(model=model, train=None), "m:f")


def _batches(source: ArraySource, first: int, last: int, skip: int) -> list[list[int]]:
    segment = source.segment(first, last, skip)
    return [list(x.numpy()) for x, _ in segment.x]


def test_array_order_is_keyed_on_seed_and_epoch_and_resumes_at_any_step() -> None:
    x = np.arange(10)
    source = ArraySource((x, x), batch_size=3, seed=5, steps_per_epoch=None)
    assert source.steps_per_epoch == 4
    whole = _batches(source, 0, 3, 0)
    assert len(whole) == 12
    assert sorted(i for batch in whole[:4] for i in batch) == list(range(10))  # one pass per epoch
    assert whole[:4] != whole[4:8]  # a new order each epoch
    assert _batches(source, 1, 2, 2) == whole[6:8]  # the rest of epoch 1 from step 2
    assert _batches(source, 2, 3, 0) == whole[8:]
    other = ArraySource((x, x), batch_size=3, seed=6, steps_per_epoch=None)
    assert _batches(other, 0, 1, 0) != whole[:4]


def test_more_steps_than_one_pass_use_further_passes() -> None:
    x = np.arange(4)
    source = ArraySource((x, x), batch_size=2, seed=1, steps_per_epoch=5)
    batches = _batches(source, 0, 1, 0)
    assert len(batches) == 5
    assert sorted(i for batch in batches[:2] for i in batch) == [0, 1, 2, 3]


def _pass_order(seed: int, size: int, key: int) -> list[int]:
    """One pass's order, straight from TensorFlow's stateless shuffle: the order's definition."""
    order = tf.random.experimental.stateless_shuffle(
        tf.range(size, dtype=tf.int64), seed=tf.constant([seed, key], tf.int64)
    )
    return [int(i) for i in order.numpy()]


def _reference_epoch(seed: int, size: int, batch: int, steps: int, epoch: int) -> list[list[int]]:
    """An epoch as it has always been defined: every pass's order end to end, cut into batches."""
    passes = -(-steps * batch // size)
    examples = [i for p in range(passes) for i in _pass_order(seed, size, epoch * passes + p)]
    return [examples[k * batch : (k + 1) * batch] for k in range(steps)]


def test_passes_are_laid_end_to_end_and_a_resumed_epoch_starts_mid_pass() -> None:
    """The order of every (epoch, step) is unchanged by shuffling each pass only when reached."""
    x = np.arange(7)
    source = ArraySource((x, x), batch_size=3, seed=9, steps_per_epoch=6)  # 18 examples: 3 passes
    assert source.passes == 3
    reference = [b for e in range(3) for b in _reference_epoch(9, 7, 3, 6, e)]
    assert _batches(source, 0, 3, 0) == reference
    for skip in range(6):  # batches that cross a pass's end included
        assert _batches(source, 1, 3, skip) == reference[6 + skip :], skip


def test_the_first_batch_does_not_wait_on_the_epochs_length() -> None:
    """stepsPerEpoch: 1000000 over 1437 examples is 22,270 passes; none is shuffled up front."""
    x = np.arange(1437)
    source = ArraySource((x, x), batch_size=32, seed=4, steps_per_epoch=1_000_000)
    started = time.monotonic()
    first, _ = next(iter(source.segment(0, 2, 0).x))
    assert time.monotonic() - started < 5.0
    assert list(first.numpy()) == _pass_order(4, 1437, 0)[:32]
    # Resumed at the epoch's last step: its examples are at pass 22,268 from offset 852, found
    # without going through the steps before it.
    started = time.monotonic()
    last, _ = next(iter(source.segment(3, 5, 999_999).x))
    assert time.monotonic() - started < 5.0
    start = 999_999 * 32
    assert (start // 1437, start % 1437) == (22268, 852)
    expected = _pass_order(4, 1437, 3 * source.passes + 22268)[852:884]
    assert list(last.numpy()) == expected


def test_unknown_training_data_is_rejected() -> None:
    with pytest.raises(ConfigError, match="train: got str"):
        make_source("data.csv", 32, 1, None, None)


def test_watching_for_a_prompt_exit_gives_the_signals_back() -> None:
    """In-process sessions open and close one after the other: nothing of the watch may stay."""
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    threads = threading.active_count()
    stop = StopRequest()
    stop.install()
    watching = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(watching)
    assert watching not in (-1, before)  # the watcher's descriptor is set
    stop.uninstall()
    assert signal.set_wakeup_fd(before) == before
    assert threading.active_count() == threads
    stop.uninstall()  # twice is harmless
