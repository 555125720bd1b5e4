"""Helpers for the trainer tests: run attempts in-process or as ``rekindle-train`` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import CheckpointStore
from rekindle_trainer.contract import ProgressEvent, TerminationMessage
from rekindle_trainer.contract.training_config import EarlyStopping

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / ".venv" / "bin" / "rekindle-train"


def env_for(folder: Path, doc: dict[str, Any], attempt: int = 1, port: int = 0) -> dict[str, str]:
    """The environment the operator would give an attempt whose files live in ``folder``."""
    return {
        contract.ENV_CONFIG: json.dumps(doc),
        contract.ENV_CHECKPOINT_DIR: str(folder / "ckpt"),
        contract.ENV_ATTEMPT: str(attempt),
        contract.ENV_METRICS_PORT: str(port),
        contract.ENV_TERMINATION_LOG: str(folder / f"termination-{attempt}.json"),
        contract.ENV_PROGRESS_FILE: str(folder / "progress.jsonl"),
        contract.ENV_REPORT_TIMING: "1",
    }


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def termination(folder: Path, attempt: int = 1) -> TerminationMessage:
    """The termination message an attempt wrote (validated by ``from_json``)."""
    return TerminationMessage.from_json((folder / f"termination-{attempt}.json").read_text())


def progress(folder: Path) -> list[ProgressEvent]:
    """Every progress event written so far."""
    path = folder / "progress.jsonl"
    if not path.exists():
        return []
    # The trainer may be writing a line right now: only whole lines are read.
    complete = path.read_text().split("\n")[:-1]
    return [ProgressEvent.from_json(line) for line in complete if line]


def final_model(folder: Path) -> list[tuple[str, np.ndarray]]:
    """The model arrays of the newest checkpoint."""
    store = CheckpointStore(folder / "ckpt")
    loaded, _ = store.latest_valid()
    assert loaded is not None
    return loaded.groups["model"]


def assert_same_arrays(a: list[tuple[str, np.ndarray]], b: list[tuple[str, np.ndarray]]) -> None:
    """Bitwise equality, array by array."""
    assert len(a) == len(b)
    for (name, x), (_, y) in zip(a, b, strict=True):
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), f"{name} differs by {np.abs(x.astype(float) - y).max()}"


def spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``rekindle-train`` with ``env`` on top of a quiet, CPU-only environment."""
    full = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": str(REPO),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rekindle_trainer.cli"],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )


def run_to_end(env: dict[str, str], timeout: float = 240) -> tuple[int, str]:
    """Run one attempt to its end; its exit code and log."""
    process = spawn(env)
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err.decode(errors="replace")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.01) -> None:
    """Poll until ``predicate`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def temp_dirs(folder: Path) -> Iterator[str]:
    """Names of unfinished checkpoint writes."""
    root = folder / "ckpt"
    if root.is_dir():
        for entry in os.scandir(root):
            if entry.name.startswith(contract.TEMP_PREFIX + contract.CHECKPOINT_PREFIX):
                yield entry.name


def kill(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    """Send ``sig`` and wait for the exit code."""
    process.send_signal(sig)
    return process.wait(timeout=120)


KerasCallback = TypeVar("KerasCallback")


def keras_early_stopping(
    config: EarlyStopping, kind: Callable[..., KerasCallback]
) -> KerasCallback:
    """Keras' ``EarlyStopping`` (or a subclass, ``kind``) with every parameter of ``config``."""
    return kind(
        monitor=config.monitor,
        min_delta=config.min_delta,
        patience=config.patience,
        mode=str(config.mode),
        baseline=config.baseline,
        restore_best_weights=config.restore_best_weights,
        start_from_epoch=config.start_from_epoch,
    )
