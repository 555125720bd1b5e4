"""The save path's training-thread part: one copy into reused host buffers; overlapping saves."""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from rekindle_trainer import contract, session
from rekindle_trainer.checkpoint import hostcopy, state
from rekindle_trainer.checkpoint.hostcopy import BufferPool
from rekindle_trainer.checkpoint.saver import BackgroundSaver
from rekindle_trainer.checkpoint.store import CheckpointStore, Published, Snapshot
from rekindle_trainer.training import variable_copy
from tests.trainer import helpers


@dataclass
class FakeVariable:
    """Just what the pool reads from a variable: path, shape, dtype, numpy()."""

    path: str
    value_: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value_.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.value_.dtype

    def numpy(self) -> np.ndarray:
        return self.value_


def _values(*arrays: np.ndarray, metrics: int = 0) -> dict[str, list[Any]]:
    return {
        "model": [FakeVariable(f"w{i}", a) for i, a in enumerate(arrays)],
        "optimizer": [],
        "metrics": [FakeVariable(f"m{i}", np.zeros((), "float32")) for i in range(metrics)],
    }


def test_buffers_are_reused_from_save_to_save() -> None:
    values = _values(np.arange(6, dtype="float32").reshape(2, 3), np.ones(4, "int64"))
    pool = BufferPool()
    first = pool.acquire(values)
    variable_copy.copy_into(values, first)
    assert [a.tolist() for a in first.arrays] == [[[0, 1, 2], [3, 4, 5]], [1, 1, 1, 1]]
    pool.give_back(first)
    values["model"][0].value_ += 10
    second = pool.acquire(values)
    variable_copy.copy_into(values, second)
    assert second is first
    assert pool.created == 1
    assert second.arrays[0].tolist() == [[10, 11, 12], [13, 14, 15]]
    assert second.groups["model"][1] == ("w1", second.arrays[1])


def test_a_new_variable_keeps_the_arrays_that_still_fit() -> None:
    pool = BufferPool()
    before = _values(np.zeros(3, "float32"))
    old = pool.acquire(before)
    pool.give_back(old)
    after = _values(np.zeros(3, "float32"), metrics=1)  # metric sums appear after step 1
    new = pool.acquire(after)
    assert new.arrays[0] is old.arrays[0]
    assert [key[0] for key in new.layout] == ["model", "metrics"]
    assert pool.created == 1


def test_a_save_waits_only_while_every_buffer_set_is_being_written() -> None:
    values = _values(np.zeros(3, "float32"))
    pool = BufferPool(depth=2)
    writing, queued = pool.acquire(values), pool.acquire(values)  # no wait: two sets
    assert writing is not queued
    got: list[hostcopy.HostBuffers] = []
    third = threading.Thread(target=lambda: got.append(pool.acquire(values)))
    third.start()
    third.join(0.3)
    assert third.is_alive()
    assert not got
    pool.give_back(writing)
    third.join(10)
    assert got == [writing]
    assert pool.created == 2
    pool.give_back(writing)
    pool.give_back(writing)  # a second return is ignored
    assert pool.try_acquire(values) is writing
    assert pool.try_acquire(values) is None  # `queued` is still out; `writing` came back once


def test_prepare_faults_a_set_in_ahead_of_the_first_save() -> None:
    values = _values(np.ones(1000, "float32"))
    pool = BufferPool()
    pool.prepare(values)
    pool.prepare(values)  # already there: nothing new
    assert pool.created == 1
    buffers = pool.acquire(values)
    assert buffers.ready.is_set()
    assert pool.created == 1


def test_pool_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1"):
        BufferPool(depth=0)


def test_copy_of_a_keras_model_is_exact_and_detached() -> None:
    """DLPack views of TensorFlow variables: same bits and dtypes as numpy(), copied out."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(3)]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    values = state.variables(model)
    buffers = BufferPool().acquire(values)
    variable_copy.copy_into(values, buffers)
    expected = state.snapshot(model)
    for group, arrays in buffers.groups.items():
        helpers.assert_same_arrays(arrays, expected[group])
    assert any(v.name == state.SEED_STATE_NAME for v in values["model"])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    kernel = buffers.groups["model"][0][1]
    assert kernel.tobytes() == expected["model"][0][1].tobytes()  # not a view of the variable
    assert kernel.tobytes() != model.variables[0].numpy().tobytes()


def _snapshot(step: int) -> Snapshot:
    return Snapshot({"model": [("w", np.full(3, step, "float32"))]}, {"epoch": 0, "step": step})


def test_overlapping_saves_queue_in_order_without_waiting(tmp_path: Path) -> None:
    release = threading.Event()
    published: list[str] = []
    released: list[int] = []

    def follow_up(snapshot: Snapshot, done: Published) -> None:
        release.wait(10)
        published.append(done.name)

    saver = BackgroundSaver(CheckpointStore(tmp_path), follow_up)
    for step in (1, 2, 3):
        saver.submit(_snapshot(step), release=functools.partial(released.append, step))
    assert published == []  # all three queued behind a write that cannot finish yet
    assert released == []
    release.set()
    saver.drain()
    assert published == [
        "ckpt-000000-0000000001",
        "ckpt-000000-0000000002",
        "ckpt-000000-0000000003",
    ]
    assert released == [1, 2, 3]


def test_a_waited_save_returns_after_it_and_those_before_it_are_published(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=10)
    saver = BackgroundSaver(store, lambda s, p: None)
    saver.submit(_snapshot(1))
    saver.submit(_snapshot(2), wait=True)
    assert store.names() == ["ckpt-000000-0000000001", "ckpt-000000-0000000002"]


def test_buffers_come_back_after_a_failed_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    released = threading.Event()
    saver = BackgroundSaver(CheckpointStore(blocker), lambda s, p: None)
    saver.submit(_snapshot(1), release=released.set)
    with pytest.raises(RuntimeError, match="checkpoint write failed"):
        saver.drain()
    assert released.is_set()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are Linux-only")
def test_the_writer_runs_at_a_lower_priority_than_training(tmp_path: Path) -> None:
    seen: list[int] = []

    def follow_up(snapshot: Snapshot, done: Published) -> None:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    saver = BackgroundSaver(CheckpointStore(tmp_path), follow_up, nice=5)
    saver.submit(_snapshot(1), wait=True)
    assert seen == [min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + 5)]


def test_training_thread_only_copies_into_reused_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Periodic saves are written off the training thread, from at most two buffer sets."""
    writes: list[tuple[str, str, np.ndarray]] = []  # arrays kept alive: no address reuse
    original = CheckpointStore.write

    def recording(store: CheckpointStore, snapshot: Snapshot) -> Published:
        kernel = snapshot.groups["model"][0][1]
        writes.append((str(snapshot.meta["trigger"]), threading.current_thread().name, kernel))
        return original(store, snapshot)

    monkeypatch.setattr(CheckpointStore, "write", recording)
    doc = {
        "epochs": 2,
        "batchSize": 32,
        "checkpoint": {"everyEpochs": 1, "everySteps": 2, "keep": 2},
        "earlyStopping": {"enabled": False, "monitor": "loss"},
    }
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    with session(helpers.env_for(tmp_path, doc)) as run:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        run.fit(model, (x, x.sum(axis=1, keepdims=True)))
    assert run.exit_code == 0
    background = [w for w in writes if w[0] in ("steps", "epoch")]
    # Six step saves and both epoch-end saves. The writer runs at nice +5, so on a loaded
    # machine most step saves are superseded while queued (by design); at least one is written.
    assert [w[0] for w in background].count("epoch") == 2
    assert 1 <= [w[0] for w in background].count("steps") <= 6
    assert {w[1] for w in background} == {"rekindle-checkpoint"}
    assert len({id(w[2]) for w in background}) <= 2  # the pool's buffers, not fresh arrays
    assert threading.current_thread().name not in {w[1] for w in background}


def test_a_queued_periodic_save_is_superseded_not_waited_for(tmp_path: Path) -> None:
    release = threading.Event()
    published: list[str] = []

    def follow_up(snapshot: Snapshot, done: Published) -> None:
        release.wait(10)
        published.append(done.name)

    def periodic(snapshot: Snapshot) -> bool:
        return bool(snapshot.meta["trigger"] == "steps")

    saver = BackgroundSaver(CheckpointStore(tmp_path), follow_up)
    released: list[int] = []
    first, second = _snapshot(1), _snapshot(2)
    first.meta["trigger"] = second.meta["trigger"] = "steps"
    saver.submit(first, release=functools.partial(released.append, 1))
    assert saver.withdraw_queued(periodic) is None  # the one being written stays
    saver.submit(second, release=functools.partial(released.append, 2))
    assert saver.withdraw_queued(periodic) is second
    assert released == [2]  # its buffers are free for the newer save
    epoch = _snapshot(3)
    epoch.meta["trigger"] = "epoch"
    saver.submit(epoch)
    assert saver.withdraw_queued(periodic) is None  # an epoch-end save is never dropped
    release.set()
    saver.drain()
    assert published == ["ckpt-000000-0000000001", "ckpt-000000-0000000003"]


def test_superseded_periodic_saves_are_exported_as_a_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer slower than the save interval: every dropped save is counted, by trigger."""
    caplog.set_level(logging.INFO, logger="rekindle_trainer.checkpoint.saver")
    original = CheckpointStore.write

    def slow(store: CheckpointStore, snapshot: Snapshot) -> Published:
        time.sleep(0.5)  # a volume far slower than one save per step
        return original(store, snapshot)

    monkeypatch.setattr(CheckpointStore, "write", slow)
    doc = {
        "epochs": 1,
        "batchSize": 32,
        "checkpoint": {"everyEpochs": 1, "everySteps": 1, "keep": 10},
        "earlyStopping": {"enabled": False, "monitor": "loss"},
    }
    x = np.linspace(-1, 1, 256, dtype="float32").reshape(-1, 1)
    with session(helpers.env_for(tmp_path, doc)) as run:
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        run.fit(model, (x, 2 * x))
    logged = [r for r in caplog.records if re.search(r"ckpt-\S+ superseded", r.getMessage())]
    registry = run.metrics.registry
    value = registry.get_sample_value(
        contract.METRIC_CHECKPOINTS_SUPERSEDED, {contract.LABEL_TRIGGER: "steps"}
    )
    assert logged  # 8 saves, one per step, cannot all be written by a 0.5 s writer
    assert value == len(logged)
    assert (
        registry.get_sample_value(
            contract.METRIC_CHECKPOINTS_SUPERSEDED, {contract.LABEL_TRIGGER: "seconds"}
        )
        == 0
    )


def test_acquire_without_blocking_says_when_every_set_is_in_use() -> None:
    values = _values(np.zeros(3, "float32"))
    pool = BufferPool(depth=1)
    held = pool.try_acquire(values)
    assert held is not None
    assert pool.try_acquire(values) is None
    pool.give_back(held)
    assert pool.try_acquire(values) is held
