"""A gang of two ``rekindle-train`` processes on loopback under ``MultiWorkerMirroredStrategy``.

Each worker gets ``TF_CONFIG`` with free ports on 127.0.0.1, as ``rekindle run``
gives it. An uninterrupted gang is the reference; a gang whose worker 1 is
SIGKILLed mid-epoch (the chief then notices the lost peer by itself) and is
restarted as a whole must end with bitwise the same weights, at the same
early-stop epoch; and a SIGTERM to worker 1 alone makes the whole gang save the
same step and exit 143, with no step lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.contract import Outcome, ProgressEvent, ProgressKind, TerminationMessage
from rekindle_trainer.contract.gang import tf_config_text
from tests.trainer import helpers

#: 1437 training digits in global batches of 64: 23 steps per epoch, the last of 29 rows.
DOC: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 8,
    "batchSize": 64,
    "seed": 5,
    "hyperparameters": {"units": 16, "learningRate": 0.01},
    "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 50},
    "earlyStopping": {"monitor": "val_loss", "patience": 1, "minDelta": 0.03},
}
WORKERS = 2
#: What may appear in the job's folder: the chief's checkpoints and files, nothing else.
CHIEF_FILES = {"finished.json", "model.keras", "position.bin"}


class Gang:
    """Two worker processes of one attempt, with a progress file and message each."""

    def __init__(self, folder: Path, doc: dict[str, Any], attempt: int) -> None:
        self.folder, self.attempt = folder, attempt
        hosts = [f"127.0.0.1:{helpers.free_port()}" for _ in range(WORKERS)]
        self.processes = [self._start(doc, hosts, index) for index in range(WORKERS)]

    def _start(self, doc: dict[str, Any], hosts: list[str], index: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": os.pathsep.join([str(helpers.REPO / "trainer_image"), str(helpers.REPO)]),
            contract.ENV_CONFIG: json.dumps(doc),
            contract.ENV_CHECKPOINT_DIR: str(self.folder / "ckpt"),
            contract.ENV_ATTEMPT: str(self.attempt),
            contract.ENV_METRICS_PORT: "0",
            contract.ENV_TERMINATION_LOG: str(self._message_path(index)),
            contract.ENV_PROGRESS_FILE: str(self.folder / f"progress-{index}.jsonl"),
            contract.ENV_TF_CONFIG: tf_config_text(hosts, index),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / f"log-{self.attempt}-{index}.txt").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "rekindle_trainer.cli"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=helpers.REPO,
        )

    def _message_path(self, index: int) -> Path:
        return self.folder / f"termination-{self.attempt}-{index}.json"

    def message(self, index: int) -> TerminationMessage:
        return TerminationMessage.from_json(self._message_path(index).read_text())

    def progress(self, index: int) -> list[ProgressEvent]:
        path = self.folder / f"progress-{index}.jsonl"
        lines = path.read_text().split("\n")[:-1] if path.exists() else []
        return [ProgressEvent.from_json(line) for line in lines if line]

    def log(self, index: int) -> str:
        return (self.folder / f"log-{self.attempt}-{index}.txt").read_text(errors="replace")

    def wait(self, timeout: float = 300) -> list[int]:
        try:
            return [p.wait(timeout=timeout) for p in self.processes]
        finally:
            for process in self.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def _run(folder: Path, doc: dict[str, Any], attempt: int = 1) -> Gang:
    """One attempt of the gang to its end; both workers exit 0."""
    folder.mkdir(parents=True, exist_ok=True)
    gang = Gang(folder, doc, attempt)
    codes = gang.wait()
    assert codes == [0, 0], gang.log(0)[-3000:] + gang.log(1)[-3000:]
    return gang


def _saved_at(gang: Gang, least: int) -> bool:
    """Whether the chief published a checkpoint at a step >= ``least`` inside an epoch."""
    return any(
        e.kind is ProgressKind.CHECKPOINT and e.data["step"] >= least and e.data["step"] % 23
        for e in gang.progress(0)
    )


def _only_the_chiefs_files(folder: Path) -> None:
    for entry in os.listdir(folder / "ckpt"):
        assert entry in CHIEF_FILES or entry.startswith(contract.CHECKPOINT_PREFIX), entry


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Gang]:
    """The uninterrupted gang both fault tests compare with (one run for the module)."""
    folder = tmp_path_factory.mktemp("reference")
    gang = _run(folder, DOC)
    chief = gang.message(0)
    assert chief.outcome is Outcome.EARLY_STOPPED, gang.log(0)[-2000:]
    return folder, gang


def _same_end(resumed: TerminationMessage, chief: TerminationMessage) -> None:
    """The same early stop, best epoch, best value and last step as the reference."""
    assert (resumed.early_stop_epoch, resumed.best_epoch, resumed.best_metric, resumed.step) == (
        chief.early_stop_epoch,
        chief.best_epoch,
        chief.best_metric,
        chief.step,
    )


@pytest.mark.slow
def test_every_worker_stops_early_at_the_same_epoch(reference: tuple[Path, Gang]) -> None:
    folder, gang = reference
    chief, other = gang.message(0), gang.message(1)
    # Epoch logs are all-reduced: every worker decides the same early stop.
    assert other.outcome is Outcome.EARLY_STOPPED
    assert (other.early_stop_epoch, other.best_epoch, other.best_metric) == (
        chief.early_stop_epoch,
        chief.best_epoch,
        chief.best_metric,
    )
    assert "MultiWorkerMirroredStrategy over 2 workers" in gang.log(1)
    _only_the_chiefs_files(folder)


@pytest.mark.slow
def test_a_gang_killed_mid_epoch_resumes_bitwise_identical(
    tmp_path: Path, reference: tuple[Path, Gang]
) -> None:
    ref_folder, ref = reference
    chief = ref.message(0)
    folder = tmp_path / "faulty"
    first = Gang(folder, DOC, attempt=1)
    helpers.wait_for(lambda: _saved_at(first, 30), 240, "a checkpoint inside epoch 2", poll=0.05)
    os.kill(first.processes[1].pid, signal.SIGKILL)
    started = time.monotonic()
    chief_code = first.processes[0].wait(timeout=60)  # the chief notices the lost peer itself
    noticed = time.monotonic() - started
    first.wait()
    assert chief_code != 0
    assert first.message(0).peer_lost, first.log(0)[-2000:]
    assert noticed < 30, f"the lost peer was noticed after {noticed:.0f} s"

    second = _run(folder, DOC, attempt=2)
    restored = [e for e in second.progress(0) if e.kind is ProgressKind.RESTORED]
    assert restored
    assert restored[-1].data["step"] % 23, "the gang did not resume mid-epoch"
    assert [e for e in second.progress(1) if e.kind is ProgressKind.RESTORED][-1].data == (
        restored[-1].data
    ), "the workers restored different checkpoints"
    _same_end(second.message(0), chief)
    helpers.assert_same_arrays(helpers.final_model(folder), helpers.final_model(ref_folder))
    _only_the_chiefs_files(folder)


@pytest.mark.slow
def test_sigterm_to_one_worker_saves_the_same_step_on_the_whole_gang(
    tmp_path: Path, reference: tuple[Path, Gang]
) -> None:
    ref_folder, ref = reference
    first = Gang(tmp_path, DOC, attempt=1)
    helpers.wait_for(
        lambda: any(e.kind is ProgressKind.EPOCH_END for e in first.progress(1)), 240, "epoch 1"
    )
    os.kill(first.processes[1].pid, signal.SIGTERM)
    codes = first.wait()
    assert codes == [contract.EXIT_PREEMPTED] * 2, first.log(0)[-2000:] + first.log(1)[-2000:]
    stopped = [first.message(i) for i in range(WORKERS)]
    assert all(m.outcome is Outcome.PREEMPTED for m in stopped)
    assert stopped[0].step == stopped[1].step
    assert stopped[0].checkpoint == contract.checkpoint_name(stopped[0].epoch, stopped[0].step)
    assert stopped[1].checkpoint == stopped[0].checkpoint
    second = _run(tmp_path, DOC, attempt=2)
    assert second.message(0).lost_steps == 0
    _same_end(second.message(0), ref.message(0))
    helpers.assert_same_arrays(helpers.final_model(tmp_path), helpers.final_model(ref_folder))
    _only_the_chiefs_files(tmp_path)
