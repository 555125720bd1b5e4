"""Several replicas under ``MirroredStrategy``, run on CPU split into logical devices.

The multi-GPU path (model built in the strategy's scope, distributed data,
mirrored variables and optimizer slots saved and restored, exact resume) runs
here over ``REKINDLE_CPU_REPLICAS`` logical CPU devices. Logical devices can be
set only before TensorFlow initialises, so every training run is a fresh
``rekindle-train`` process (pytest's own process has TensorFlow running already).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import CheckpointStore
from rekindle_trainer.contract import Outcome, ProgressKind, TerminationMessage
from rekindle_trainer.core.config import ConfigError, parse_runtime_env
from rekindle_trainer.training.strategy import Placement, choose
from tests.trainer import helpers

GPUS = ("/device:GPU:0", "/device:GPU:1")
CPUS = ("/device:CPU:0", "/device:CPU:1", "/device:CPU:2")


@pytest.mark.parametrize(
    ("gpus", "cpus", "cpu_replicas", "devices", "words"),
    [
        ((), CPUS[:1], 1, (), "CPU, default strategy"),
        ((), CPUS[:2], 2, CPUS[:2], "over 2 logical CPU devices"),
        ((), CPUS, 2, CPUS[:2], "over 2 logical CPU devices"),
        (GPUS[:1], CPUS[:1], 1, (), "one GPU"),
        (GPUS, CPUS[:1], 1, GPUS, "over 2 GPUs"),
        (GPUS, CPUS[:2], 2, GPUS, "REKINDLE_CPU_REPLICAS=2 ignored"),
        (GPUS[:1], CPUS[:1], 4, (), "REKINDLE_CPU_REPLICAS=4 ignored"),
    ],
)
def test_choose_mirrors_over_every_gpu_else_the_requested_cpu_replicas(
    gpus: tuple[str, ...],
    cpus: tuple[str, ...],
    cpu_replicas: int,
    devices: tuple[str, ...],
    words: str,
) -> None:
    placement = choose(gpus, cpus, cpu_replicas)
    assert placement.devices == devices
    assert placement.replicas == max(1, len(devices))
    assert words in placement.note


def test_choose_refuses_more_cpu_replicas_than_devices() -> None:
    with pytest.raises(ConfigError, match=contract.ENV_CPU_REPLICAS):
        choose((), CPUS[:1], 2)


def test_placement_of_the_default_strategy_is_one_replica() -> None:
    assert Placement((), "x").replicas == 1


@pytest.mark.parametrize("raw", ["0", "two", "65", "-1", "1.5"])
def test_cpu_replicas_variable_is_checked(tmp_path: Path, raw: str) -> None:
    env = {contract.ENV_CHECKPOINT_DIR: str(tmp_path), contract.ENV_CPU_REPLICAS: raw}
    with pytest.raises(ConfigError) as caught:
        parse_runtime_env(env)
    assert caught.value.field == contract.ENV_CPU_REPLICAS
    assert "whole number from 1 to 64" in str(caught.value)


def test_cpu_replicas_defaults_to_one(tmp_path: Path) -> None:
    base = {contract.ENV_CHECKPOINT_DIR: str(tmp_path)}
    assert parse_runtime_env(base).cpu_replicas == 1
    assert parse_runtime_env({**base, contract.ENV_CPU_REPLICAS: " 4 "}).cpu_replicas == 4


def test_the_gangs_collective_is_checked_and_defaults_to_auto(tmp_path: Path) -> None:
    base = {contract.ENV_CHECKPOINT_DIR: str(tmp_path)}
    assert parse_runtime_env(base).collective == "auto"
    assert parse_runtime_env({**base, contract.ENV_COLLECTIVE: " RING "}).collective == "ring"
    with pytest.raises(ConfigError) as caught:
        parse_runtime_env({**base, contract.ENV_COLLECTIVE: "mpi"})
    assert caught.value.field == contract.ENV_COLLECTIVE
    assert "expected one of auto, ring, nccl, got 'mpi'" in str(caught.value)


def test_a_split_after_tensorflow_started_is_refused_naming_the_variable(tmp_path: Path) -> None:
    """Logical devices are fixed once TensorFlow runs: another split must say so, not crash."""
    import tensorflow as tf

    from rekindle_trainer import session
    from rekindle_trainer.training import strategy

    tf.constant(1.0).numpy()  # this process's devices are initialised from here on
    have = len(tf.config.list_logical_devices("CPU"))
    strategy.split_cpu(have)  # the split already in force is accepted
    with pytest.raises(ConfigError, match="already runs in this process") as caught:
        strategy.split_cpu(have + 1)
    assert caught.value.field == contract.ENV_CPU_REPLICAS
    # Through the library API: the attempt ends invalid, nothing on the volume touched.
    env = {**helpers.env_for(tmp_path, SHORT), contract.ENV_CPU_REPLICAS: str(have + 1)}
    with session(env) as run:
        pass
    assert run.exit_code == contract.EXIT_INVALID
    assert contract.ENV_CPU_REPLICAS in (helpers.termination(tmp_path).error or "")
    assert not (tmp_path / "ckpt").exists()


def test_bad_cpu_replicas_ends_the_attempt_invalid(tmp_path: Path) -> None:
    code, log = helpers.run_to_end(env(tmp_path, DOC, replicas="many"), timeout=60)
    assert code == contract.EXIT_INVALID, log
    error = helpers.termination(tmp_path).error or ""
    assert contract.ENV_CPU_REPLICAS in error
    assert not (tmp_path / "ckpt").exists()


# ----------------------------------------------------------------- training runs

DOC: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 40,
    "batchSize": 128,
    "seed": 11,
    "hyperparameters": {"units": 64, "learningRate": 0.01},
    "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 3},
    "earlyStopping": {"monitor": "val_loss", "patience": 1, "minDelta": 0.005},
}
#: Three epochs of 12 steps (1437 training digits, the last batch 29 = 15 + 14).
SHORT: dict[str, Any] = {
    **DOC,
    "epochs": 3,
    "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 50},
    "earlyStopping": {"enabled": False},
}
MIXED: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.regression:build",
    "epochs": 3,
    "batchSize": 64,
    "mixedPrecision": True,
    "hyperparameters": {"samples": 1024},
    "checkpoint": {"everyEpochs": 1, "everySteps": 4, "keep": 50},
    "earlyStopping": {"enabled": False},
}


def env(folder: Path, doc: dict[str, Any], attempt: int = 1, replicas: str = "2") -> dict[str, str]:
    """An attempt's environment with ``REKINDLE_CPU_REPLICAS`` set."""
    return {**helpers.env_for(folder, doc, attempt), contract.ENV_CPU_REPLICAS: replicas}


def finish(folder: Path, doc: dict[str, Any], attempt: int, replicas: str) -> tuple[Any, str]:
    """Run an attempt to its end; its termination message and log."""
    code, log = helpers.run_to_end(env(folder, doc, attempt, replicas))
    assert code == 0, log
    return helpers.termination(folder, attempt), log


def step_reached(folder: Path, start: int, target: int) -> bool:
    """Whether an event after the first ``start`` ones reports global step ``target``."""
    return any(
        e.kind in (ProgressKind.STEP, ProgressKind.EPOCH_END) and int(e.data["step"]) >= target
        for e in helpers.progress(folder)[start:]
    )


def stop_at(
    folder: Path, doc: dict[str, Any], attempt: int, replicas: str, step: int, sig: signal.Signals
) -> int:
    """Start an attempt, send ``sig`` once it reached ``step``; its exit code."""
    start = len(helpers.progress(folder))
    process = helpers.spawn(env(folder, doc, attempt, replicas))
    try:
        helpers.wait_for(lambda: step_reached(folder, start, step), 180, f"step {step}", 0.005)
    except AssertionError:
        process.kill()
        _, err = process.communicate(timeout=60)
        raise AssertionError(err.decode(errors="replace")) from None
    return helpers.kill(process, sig)


def restored(folder: Path) -> list[dict[str, Any]]:
    """The data of every ``restored`` progress event."""
    return [e.data for e in helpers.progress(folder) if e.kind is ProgressKind.RESTORED]


@dataclass
class Reference:
    """An uninterrupted run on two CPU replicas."""

    folder: Path
    message: TerminationMessage
    log: str


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("two-replicas")
    message, log = finish(folder, DOC, 1, "2")
    assert message.outcome is Outcome.EARLY_STOPPED, message
    return Reference(folder, message, log)


@pytest.mark.slow
def test_two_replicas_save_one_verified_copy_of_each_mirrored_variable(
    reference: Reference,
) -> None:
    assert "MirroredStrategy over 2 logical CPU devices" in reference.log
    store = CheckpointStore(reference.folder / "ckpt")
    names = [n for n in store.names() if n not in store.corrupt]
    assert names, "no checkpoint was published"
    for name in names:
        loaded = store.load(name)
        assert loaded.manifest["replicas"] == 2
        # A mirrored variable is saved once (both replicas hold the same value).
        model = [array for _, array in loaded.groups["model"]]
        assert [a.shape for a in model] == [(64, 64), (64,), (2,), (64, 10), (10,)]
        slots = [n for n, _ in loaded.groups["optimizer"]]
        assert len(slots) == len(set(slots)) == 2 + 2 * 4  # iterations, rate, m and v


@pytest.mark.slow
def test_two_replicas_sigkill_then_resume_is_bitwise_identical(
    reference: Reference, tmp_path: Path
) -> None:
    total = reference.message.step
    targets = (17, total // 2 + 3)
    for attempt, target in enumerate(targets, start=1):
        assert stop_at(tmp_path, DOC, attempt, "2", target, signal.SIGKILL) == -signal.SIGKILL
    message, log = finish(tmp_path, DOC, len(targets) + 1, "2")
    assert message.outcome is Outcome.EARLY_STOPPED
    assert message.early_stop_epoch == reference.message.early_stop_epoch
    assert message.best_epoch == reference.message.best_epoch
    assert message.best_metric == reference.message.best_metric
    assert message.step == reference.message.step
    helpers.assert_same_arrays(helpers.final_model(tmp_path), helpers.final_model(reference.folder))
    resumes = restored(tmp_path)
    assert len(resumes) == len(targets)
    assert all(r["step"] > 0 for r in resumes)
    assert "written by" not in log  # same replica count throughout: no warning


@pytest.mark.slow
def test_a_batch_that_splits_unevenly_starts_a_fit(tmp_path: Path) -> None:
    """63 examples over two replicas are 32 + 31: Keras alone fails on such a first batch."""
    doc = {**SHORT, "batchSize": 63, "epochs": 1}
    message, _ = finish(tmp_path, doc, 1, "2")
    assert message.outcome is Outcome.COMPLETED
    assert message.step == 23  # ceil(1437 / 63)


@pytest.mark.slow
@pytest.mark.parametrize(("written", "resumed"), [("2", "1"), ("1", "2")])
def test_a_checkpoint_resumes_under_another_replica_count(
    tmp_path: Path, written: str, resumed: str
) -> None:
    """A pod rescheduled onto fewer (or more) devices goes on from the same step.

    Data order and global batch do not depend on the replicas, so the run continues
    where it stopped and ends at the same step. Without dropout it ends with nearly the
    same weights: only the rounding of the summed gradients differs (the log says so).
    With dropout the masks differ too (each replica draws one for its slice of the
    batch), so the runs part ways like runs with another seed.
    """
    doc = {**SHORT, "hyperparameters": {**SHORT["hyperparameters"], "dropout": 0.0}}
    uninterrupted, _ = finish(tmp_path / "ref", doc, 1, written)
    folder = tmp_path / "moved"
    assert stop_at(folder, doc, 1, written, 15, signal.SIGTERM) == contract.EXIT_PREEMPTED
    first = helpers.termination(folder, 1)
    assert first.outcome is Outcome.PREEMPTED
    message, log = finish(folder, doc, 2, resumed)
    assert f"written by {written} replica(s), this attempt has {resumed}" in log
    [resume] = restored(folder)
    assert (resume["step"], resume["lost_steps"]) == (first.step, 0)
    assert (message.epoch, message.step) == (uninterrupted.epoch, uninterrupted.step)
    last, _ = CheckpointStore(folder / "ckpt").latest_valid()
    assert last is not None
    assert last.manifest["replicas"] == int(resumed)
    # Measured here: without interruption, 1 and 2 replicas end 0.1-0.6 % apart (relative
    # L2); a run moved at step ~15 ends within 0.06 % of the run it left, whose weights
    # moved 45-80 % since its first save. A resume that lost the state would be far off.
    ref_store = CheckpointStore(tmp_path / "ref" / "ckpt")
    early = ref_store.load(ref_store.names()[0]).groups["model"]
    for (name, moved), (_, ref), (_, start) in zip(
        helpers.final_model(folder), helpers.final_model(tmp_path / "ref"), early, strict=True
    ):
        if moved.dtype.kind == "f":
            apart = float(np.linalg.norm(moved - ref))
            travelled = float(np.linalg.norm(ref - start))
            assert apart <= 0.02 * travelled, f"{name}: {apart} apart, moved {travelled}"


@pytest.mark.slow
def test_mixed_precision_under_two_replicas_resumes_exactly(tmp_path: Path) -> None:
    reference, log = finish(tmp_path / "ref", MIXED, 1, "2")
    assert "MirroredStrategy over 2 logical CPU devices" in log
    folder = tmp_path / "killed"
    assert stop_at(folder, MIXED, 1, "2", 20, signal.SIGKILL) == -signal.SIGKILL
    message, _ = finish(folder, MIXED, 2, "2")
    assert message.step == reference.step
    [resume] = restored(folder)
    assert 0 < resume["step"] < reference.step
    loaded, _ = CheckpointStore(folder / "ckpt").latest_valid()
    assert loaded is not None
    optimizer = dict(loaded.groups["optimizer"])
    assert any("dynamic_scale" in name for name in optimizer), sorted(optimizer)
    # mixed_float16 keeps float32 variables and computes in float16.
    assert {a.dtype for _, a in loaded.groups["model"]} == {np.dtype("float32")}
    assert json.loads((folder / "termination-2.json").read_text())["outcome"] == "completed"
    helpers.assert_same_arrays(helpers.final_model(folder), helpers.final_model(tmp_path / "ref"))


@pytest.mark.slow
def test_gpu_check_script_falls_back_to_logical_cpus(tmp_path: Path) -> None:
    """``scripts/gpu_check.py`` without a GPU: two logical CPUs, both precisions, exact resume."""
    result = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            str(helpers.REPO / "scripts" / "gpu_check.py"),
            str(result),
            "--epochs",
            "2",
            "--batch-size",
            "128",
            "--work",
            str(tmp_path / "work"),
            "--no-gang",  # the gang's exact resume is tested in test_multi_worker.py
        ],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(helpers.REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(result.read_text())
    assert report["ok"] is True
    assert report["physical_gpus"] == []
    assert report["gang"] is None
    runs = {run["precision"]: run for run in report["runs"]}
    assert set(runs) == {"float32", "mixed_float16"}
    for precision, run in runs.items():
        info = run["info"]
        assert run["placement"] == "2-logical-cpus"
        assert (info["strategy"], info["replicas"]) == ("MirroredStrategy", 2)
        assert [d.rsplit("/", 1)[-1] for d in info["devices"]] == ["device:CPU:0", "device:CPU:1"]
        assert info["dtype_policy"] == precision
        assert info["variable_dtype"] == "float32"
        assert run["steps"] == 24  # two epochs of ceil(1437 / 128) steps
        assert run["steps_per_second"] > 0
        assert 0 < run["killed_at_step"] < run["steps"]
        assert run["resumed_from_step"] is not None
        assert run["resumed_weights_match"]
        assert run["resumed_step_matches"]
    assert runs["mixed_float16"]["info"]["compute_dtype"] == "float16"
    assert runs["mixed_float16"]["info"]["optimizer"] == "LossScaleOptimizer"
    assert "2-logical-cpus" in done.stdout  # the printed table
