"""``rekindle-train`` before and at its first step: a huge epoch starts at once, SIGTERM is obeyed.

Issue 14, point 10: ``stepsPerEpoch: 1000000`` used to shuffle every pass of
the epoch before the first batch (minutes), and a SIGTERM before the first step
waited for it, past the pod's grace period. Now each pass is shuffled when the
stream reaches it, and a SIGTERM before the first step ends the process with
143 at once (nothing new to save); from the first step on, the step in flight
is saved first, as always.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import CheckpointStore
from rekindle_trainer.contract import Outcome, ProgressKind
from rekindle_trainer.reporting.addenda import NOTHING_TO_SAVE
from tests.trainer import helpers

HUGE_EPOCH: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 2,
    "batchSize": 32,
    "stepsPerEpoch": 1_000_000,
    "hyperparameters": {"units": 8},
    "checkpoint": {"everyEpochs": 1, "keep": 2},
}

#: Seconds a stopped process may take to end (it only writes a small file first).
PROMPT = 10.0


def _first(folder: Path, kind: ProgressKind, since: int = 0) -> Any:
    events = [e for e in helpers.progress(folder)[since:] if e.kind is kind]
    return events[0] if events else None


def _stop_quickly(process: Any) -> tuple[int, float]:
    """SIGTERM; the exit code and how long the process took to end."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=120)
    return code, time.monotonic() - sent


def _block_then_stop(folder: Path, entrypoint: str, attempt: int) -> None:
    """Run ``entrypoint`` (one that blocks after creating its marker), SIGTERM it, check 143."""
    marker = folder / f"blocked-{attempt}"
    doc = {
        **HUGE_EPOCH,
        "entrypoint": entrypoint,
        "hyperparameters": {"units": 8, "marker": str(marker)},
    }
    process = helpers.spawn(helpers.env_for(folder, doc, attempt))
    try:
        helpers.wait_for(marker.exists, 120, f"{entrypoint} to block")
        code, took = _stop_quickly(process)
    finally:
        process.kill()
    assert code == contract.EXIT_PREEMPTED
    assert took < PROMPT


@pytest.mark.slow
def test_a_million_step_epoch_starts_at_once_and_sigterm_before_a_step_exits_143(
    tmp_path: Path,
) -> None:
    # Attempt 1: the first step comes soon after training starts; SIGTERM then saves it.
    process = helpers.spawn(helpers.env_for(tmp_path, HUGE_EPOCH, 1))
    try:
        helpers.wait_for(lambda: _first(tmp_path, ProgressKind.STARTED) is not None, 120, "start")
        began = time.monotonic()
        helpers.wait_for(lambda: _first(tmp_path, ProgressKind.STEP) is not None, 120, "a step")
        assert time.monotonic() - began < 60, "the first step waited on the epoch's length"
        code, took = _stop_quickly(process)
    finally:
        process.kill()
    assert code == contract.EXIT_PREEMPTED
    assert took < 60
    first = helpers.termination(tmp_path, 1)
    assert first.outcome is Outcome.PREEMPTED
    assert first.step >= 1
    assert first.checkpoint == contract.checkpoint_name(0, first.step)
    assert CheckpointStore(tmp_path / "ckpt").verify(first.checkpoint)["trigger"] == "sigterm"

    # Attempt 2 resumes mid-epoch and blocks before its first step: SIGTERM exits at once,
    # reporting where the attempt started.
    since = len(helpers.progress(tmp_path))
    _block_then_stop(tmp_path, "tests.trainer.models:digits_sleeping_before_training", 2)
    restored = _first(tmp_path, ProgressKind.RESTORED, since)
    assert restored.data["step"] == first.step
    second = helpers.termination(tmp_path, 2)
    assert second.outcome is Outcome.PREEMPTED
    assert (second.epoch, second.step, second.checkpoint) == (0, first.step, first.checkpoint)
    assert second.note == NOTHING_TO_SAVE
    assert CheckpointStore(tmp_path / "ckpt").names() == [first.checkpoint]


@pytest.mark.slow
def test_sigterm_while_the_entrypoint_blocks_exits_143_at_once(tmp_path: Path) -> None:
    _block_then_stop(tmp_path, "tests.trainer.models:sleeps_in_build", 1)
    # Where the attempt would start is not known yet: no message (the exit code says it all).
    assert not (tmp_path / "termination-1.json").exists()
    assert not (tmp_path / "ckpt").exists()
