"""The gang's parts that run in one process: decisions, data shards, the Keras workaround.

The gang itself (two ``rekindle-train`` processes under ``MultiWorkerMirroredStrategy``)
is in ``test_multi_worker``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer
from tensorflow.python.distribute.values import PerReplica

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import CheckpointStore, ReadOnlyStore, Snapshot
from rekindle_trainer.contract.gang import WorkerRole, tf_config_text
from rekindle_trainer.core.config import ConfigError, TrainerConfig, parse_runtime_env
from rekindle_trainer.core.position import Position
from rekindle_trainer.reporting.addenda import Addenda
from rekindle_trainer.reporting.metrics import Health, TrainerMetrics
from rekindle_trainer.reporting.progress import ProgressLog
from rekindle_trainer.reporting.reporter import Reporter
from rekindle_trainer.training import keras_mwms
from rekindle_trainer.training.agreement import Agreement
from rekindle_trainer.training.checkpointing import Checkpointer, RunInfo
from rekindle_trainer.training.data import ArraySource, Shard
from rekindle_trainer.training.session import _message_for_error
from rekindle_trainer.training.strategy import choose

GPUS = ("/device:GPU:0", "/device:GPU:1")


# ------------------------------------------------------------------ strategy


@pytest.mark.parametrize(
    ("gpus", "cpu_replicas", "workers", "replicas", "words"),
    [
        ((), 1, 2, 2, "MultiWorkerMirroredStrategy over 2 workers, the CPU each"),
        ((), 4, 2, 2, "REKINDLE_CPU_REPLICAS=4 ignored"),
        (GPUS, 1, 3, 6, "over 3 workers, 2 GPU(s) each"),
        (GPUS[:1], 1, 2, 2, "over 2 workers, 1 GPU(s) each"),
        ((), 1, 1, 1, "CPU, default strategy"),
    ],
)
def test_choose_takes_the_multi_worker_strategy_for_a_gang(
    gpus: tuple[str, ...], cpu_replicas: int, workers: int, replicas: int, words: str
) -> None:
    placement = choose(gpus, ("/device:CPU:0",), cpu_replicas, workers)
    assert placement.multi_worker is (workers > 1)
    assert placement.replicas == replicas
    assert words in placement.note


def test_the_role_comes_from_tf_config_and_a_bad_one_names_it(tmp_path: Path) -> None:
    base = {contract.ENV_CHECKPOINT_DIR: str(tmp_path)}
    hosts = ["127.0.0.1:1", "127.0.0.1:2"]
    env = {**base, contract.ENV_TF_CONFIG: tf_config_text(hosts, 1)}
    assert parse_runtime_env(env).role == WorkerRole(index=1, count=2)
    assert parse_runtime_env(base).role.count == 1
    with pytest.raises(ConfigError) as caught:
        parse_runtime_env({**base, contract.ENV_TF_CONFIG: json.dumps({"cluster": {}})})
    assert caught.value.field == contract.ENV_TF_CONFIG


# ---------------------------------------------------------------------- data


def _batches(source: ArraySource, first: int, last: int, skip: int) -> list[np.ndarray]:
    return [np.asarray(x) for x, _ in source.segment(first, last, skip).x]


def test_the_gang_splits_every_global_batch_exactly_and_a_resume_replays_it() -> None:
    x = np.arange(29 * 3 + 5, dtype="float32")[:, None]  # 92 rows: the last batch holds 12
    y = np.zeros(len(x), "int32")
    whole = ArraySource((x, y), 16, seed=3, steps_per_epoch=None)
    shards = [ArraySource((x, y), 16, 3, None, Shard(w, 1, 2)) for w in range(2)]
    glob = _batches(whole, 0, 2, 0)
    mine = [_batches(s, 0, 2, 0) for s in shards]
    assert len(glob) == len(mine[0]) == len(mine[1]) == 2 * whole.steps_per_epoch
    for step, batch in enumerate(glob):
        # Replica 0 takes the first half of every global batch, replica 1 the rest.
        np.testing.assert_array_equal(np.concatenate([mine[0][step], mine[1][step]]), batch)
        assert len(mine[0][step]) == len(batch) // 2
    # Resumed at step 4 of epoch 1: each worker sees exactly what it would have seen.
    for w, shard in enumerate(shards):
        rest = _batches(shard, 1, 2, 4)
        tail = mine[w][whole.steps_per_epoch + 4 :]
        assert all((a == b).all() for a, b in zip(rest, tail, strict=True))


def test_a_worker_with_several_local_replicas_yields_one_slice_each() -> None:
    shard = Shard(first=2, local=2, total=4)  # worker 1 of 2, two GPUs each
    starts, ends = shard.bounds(tf.constant(10, tf.int64))
    assert starts.numpy().tolist() == [5, 7]
    assert ends.numpy().tolist() == [7, 10]
    with pytest.raises(ValueError, match="do not fit"):
        Shard(first=3, local=2, total=4)


@pytest.mark.parametrize(
    ("rows", "batch", "steps", "words"),
    [(33, 16, None, "an epoch's last batch holds 1"), (40, 1, None, "a batch holds 1")],
)
def test_a_batch_that_leaves_a_replica_empty_is_refused(
    rows: int, batch: int, steps: int | None, words: str
) -> None:
    x, y = np.zeros((rows, 1), "float32"), np.zeros(rows, "int32")
    with pytest.raises(ConfigError, match=words) as caught:
        ArraySource((x, y), batch, 1, steps, Shard(0, 1, 2))
    assert caught.value.field == "batchSize"
    ArraySource((x, y), 16, 1, 2, Shard(0, 1, 2))  # two full batches per epoch: fine


def test_one_process_has_no_shard() -> None:
    assert Shard.of(tf.distribute.get_strategy()) is None


# -------------------------------------------------------- Keras workaround


class _FakeGangStrategy(tf.distribute.MultiWorkerMirroredStrategy):  # type: ignore[misc]
    """Passes Keras' multi-worker test; ``reduce`` fails on scalars as TensorFlow's does."""

    def __init__(self) -> None:  # no cluster: nothing of the real constructor runs
        pass

    @property
    def extended(self) -> Any:
        class Extended:
            def _in_multi_worker_mode(self) -> bool:
                return True

        return Extended()

    def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
        raise ValueError("Invalid reduction dimension 0 for input with 0 dimensions")

    def experimental_local_results(self, value: Any) -> Any:
        return value.values


def test_keras_reduces_a_gangs_scalar_logs_only_with_the_workaround() -> None:
    strategy = _FakeGangStrategy()
    logs = {"loss": PerReplica((tf.constant(0.25),)), "step": tf.constant(3)}
    with pytest.raises(ValueError, match="Invalid reduction dimension"):
        trainer.reduce_per_replica(logs, strategy, "auto")  # Keras 3.15 as it is
    with keras_mwms.installed(strategy):
        reduced = trainer.reduce_per_replica(logs, strategy, "auto")
    assert float(reduced["loss"]) == 0.25
    assert int(reduced["step"]) == 3
    with pytest.raises(ValueError, match="Invalid reduction dimension"):
        trainer.reduce_per_replica(logs, strategy, "auto")  # given back afterwards


def test_the_workaround_leaves_other_strategies_alone() -> None:
    strategy = tf.distribute.get_strategy()
    before = trainer.reduce_per_replica
    with keras_mwms.installed(strategy):
        assert trainer.reduce_per_replica is before


@pytest.mark.parametrize("version", ["3.16.0", "4.0.1", "3.14.2", "x"])
def test_a_gang_refuses_a_keras_the_workaround_was_not_checked_with(version: str) -> None:
    with pytest.raises(ConfigError, match=r"keras==3\.15") as caught:
        keras_mwms.check_version(version)
    assert caught.value.field == "workers"


def test_the_installed_keras_is_the_checked_one() -> None:
    keras_mwms.check_version(keras.__version__)


# ------------------------------------------------- agreement, chief, errors


def test_one_worker_agrees_with_itself() -> None:
    agreement = Agreement(tf.distribute.get_strategy())
    assert not agreement.gang
    assert agreement.agree((True, False)) == (True, False)
    agreement.barrier()


def test_a_read_only_store_reads_but_never_writes(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    writer = CheckpointStore(root)
    arrays = {"model": [("w", np.ones(3, "float32"))]}
    meta = {"epoch": 1, "step": 5, "step_in_epoch": 0, "trigger": "epoch"}
    writer.write(Snapshot(groups=arrays, meta=meta))
    (root / f"{contract.TEMP_PREFIX}left").mkdir()
    broken = contract.checkpoint_name(2, 9)
    (root / broken).mkdir()
    reader = CheckpointStore(root, read_only=True)
    loaded, skipped = reader.latest_valid()
    assert loaded is not None
    assert loaded.name == contract.checkpoint_name(1, 5)
    assert [name for name, _ in skipped] == [broken]
    assert (root / broken).is_dir(), "only the chief moves a corrupt checkpoint aside"
    assert reader.remove_unfinished() == []
    assert (root / f"{contract.TEMP_PREFIX}left").is_dir()
    for write in (
        lambda: reader.write(Snapshot(groups=arrays, meta={**meta, "step": 6})),
        lambda: reader.write_json("finished.json", {}),
        lambda: reader.prune(loaded.name, None),
    ):
        with pytest.raises(ReadOnlyStore, match="only the gang's chief"):
            write()


def test_a_worker_that_is_not_the_chief_saves_nothing(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros(4), verbose=0)
    store = CheckpointStore(tmp_path / "ckpt", read_only=True)
    info = RunInfo(TrainerConfig(epochs=1), 1, True, "arrays", 4, chief=False)
    reporter = Reporter(TrainerMetrics(), Health(), ProgressLog(None), Addenda())
    checkpointer = Checkpointer(store, reporter, info)
    meta = {"epoch": 1, "step": 4, "step_in_epoch": 0, "trigger": "epoch"}
    checkpointer.save(model, meta)
    checkpointer.save_final(model, meta)
    checkpointer.record(Position(epoch=1, step=4))
    checkpointer.drain()
    assert checkpointer.saved_name == contract.checkpoint_name(1, 4)
    assert not (tmp_path / "ckpt").exists()


def test_a_failed_collective_on_a_gang_reports_a_lost_peer() -> None:
    lost = tf.errors.UnavailableError(None, None, "cluster check alive failed")
    assert _message_for_error(lost, gang=True).peer_lost
    assert not _message_for_error(lost, gang=False).peer_lost
    assert not _message_for_error(RuntimeError("x"), gang=True).peer_lost
