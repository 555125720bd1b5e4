"""``rekindle-train`` as the operator runs it: real processes, real signals.

The reference run and the interrupted runs use the same configuration; the
interrupted one is killed with SIGKILL at random steps (one kill lands while a
checkpoint is being written) and must end bitwise identical, at the same
early-stopping epoch.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import CheckpointStore
from rekindle_trainer.contract import Outcome, ProgressKind, TerminationMessage
from tests.trainer import helpers

DOC: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 60,
    "batchSize": 32,
    "seed": 7,
    "hyperparameters": {"units": 256, "learningRate": 0.002},
    "checkpoint": {"everyEpochs": 1, "everySteps": 9, "keep": 2},
    "earlyStopping": {"monitor": "val_loss", "patience": 2, "minDelta": 0.01},
}


def valid_message(folder: Path, attempt: int = 1) -> TerminationMessage:
    """The attempt's termination message, checked against the published JSON schema."""
    text = (folder / f"termination-{attempt}.json").read_text()
    assert len(text.encode()) <= contract.TERMINATION_MESSAGE_MAX_BYTES
    jsonschema.validate(json.loads(text), contract.TERMINATION_MESSAGE_SCHEMA)
    return TerminationMessage.from_json(text)


@dataclass
class Reference:
    """The uninterrupted run."""

    folder: Path
    message: TerminationMessage


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("reference")
    code, log = helpers.run_to_end(helpers.env_for(folder, DOC))
    assert code == 0, log
    message = valid_message(folder)
    assert message.outcome is Outcome.EARLY_STOPPED, message
    return Reference(folder, message)


def events_since(folder: Path, start: int) -> list[Any]:
    return helpers.progress(folder)[start:]


def step_reached(folder: Path, start: int, target: int) -> bool:
    return any(
        e.kind in (ProgressKind.STEP, ProgressKind.EPOCH_END) and int(e.data["step"]) >= target
        for e in events_since(folder, start)
    )


@pytest.mark.slow
def test_sigkill_at_random_steps_then_resume_is_bitwise_identical(
    reference: Reference, tmp_path: Path
) -> None:
    total = reference.message.step
    rng = random.Random(20261126)
    targets = sorted(rng.sample(range(20, total - 20), 4))
    kills: list[str] = []
    attempt = 0
    mid_write = False
    while len(kills) < 5 or not mid_write:
        assert attempt < 12, f"could not land a kill during a checkpoint write: {kills}"
        attempt += 1
        start = len(helpers.progress(tmp_path))
        stale = set(helpers.temp_dirs(tmp_path))  # left by an earlier kill; removed on start
        process = helpers.spawn(helpers.env_for(tmp_path, DOC, attempt))
        if targets:
            target = targets.pop(0)
            helpers.wait_for(
                lambda t=target, s=start: step_reached(tmp_path, s, t),  # type: ignore[misc]
                180,
                f"step {target}",
                poll=0.005,
            )
            kind = f"step>={target}"
        else:
            # Once this attempt trains, kill it the moment a new checkpoint folder is written.
            helpers.wait_for(
                lambda s=start: step_reached(tmp_path, s, 1),  # type: ignore[misc]
                180,
                "training",
            )
            helpers.wait_for(
                lambda old=stale: bool(set(helpers.temp_dirs(tmp_path)) - old),  # type: ignore[misc]
                180,
                "a checkpoint write",
                poll=0.0005,
            )
            kind = "during-write"
        process.kill()
        assert process.wait(timeout=60) == -signal.SIGKILL
        if kind == "during-write":
            mid_write = bool(set(helpers.temp_dirs(tmp_path)) - stale)
            kind += " (caught)" if mid_write else " (missed, write had finished)"
        kills.append(kind)
    attempt += 1
    code, log = helpers.run_to_end(helpers.env_for(tmp_path, DOC, attempt))
    assert code == 0, log
    message = valid_message(tmp_path, attempt)
    assert message.outcome is Outcome.EARLY_STOPPED
    assert message.early_stop_epoch == reference.message.early_stop_epoch
    assert message.best_epoch == reference.message.best_epoch
    assert message.best_metric == reference.message.best_metric
    assert message.step == reference.message.step
    helpers.assert_same_arrays(helpers.final_model(tmp_path), helpers.final_model(reference.folder))
    assert not list(helpers.temp_dirs(tmp_path)), "an unfinished write was left behind"
    restored = [e for e in helpers.progress(tmp_path) if e.kind is ProgressKind.RESTORED]
    assert len(restored) >= 5, kills


@pytest.mark.slow
def test_sigterm_exits_143_preempted_and_resume_loses_no_step(
    reference: Reference, tmp_path: Path
) -> None:
    process = helpers.spawn(helpers.env_for(tmp_path, DOC, 1))
    helpers.wait_for(lambda: step_reached(tmp_path, 0, 100), 180, "step 100")
    assert helpers.kill(process, signal.SIGTERM) == contract.EXIT_PREEMPTED
    first = valid_message(tmp_path, 1)
    assert first.outcome is Outcome.PREEMPTED
    assert first.checkpoint == contract.checkpoint_name(first.epoch, first.step)
    saved = CheckpointStore(tmp_path / "ckpt").verify(first.checkpoint)
    assert saved["trigger"] in ("sigterm", "epoch")
    code, log = helpers.run_to_end(helpers.env_for(tmp_path, DOC, 2))
    assert code == 0, log
    restored = [e for e in helpers.progress(tmp_path) if e.kind is ProgressKind.RESTORED]
    assert restored[0].data["step"] == first.step
    assert restored[0].data["lost_steps"] == 0
    second = valid_message(tmp_path, 2)
    assert second.lost_steps == 0
    assert second.early_stop_epoch == reference.message.early_stop_epoch
    helpers.assert_same_arrays(helpers.final_model(tmp_path), helpers.final_model(reference.folder))


@pytest.mark.parametrize(
    ("doc", "field", "accepted"),
    [
        ({**DOC, "epochs": "ten"}, "epochs", "expected an integer, got 'ten'"),
        ({**DOC, "epoch": 3}, "epoch", "unknown field; did you mean 'epochs'?"),
        ({**DOC, "earlyStopping": {"mode": "down"}}, "earlyStopping.mode", "auto, min, max"),
        ({**DOC, "checkpoint": {"keep": 0}}, "checkpoint.keep", "must be >= 1, got 0"),
        ({**DOC, "entrypoint": "no colon"}, "entrypoint", "module:function, e.g."),
        ({k: v for k, v in DOC.items() if k != "entrypoint"}, "entrypoint", "required"),
    ],
)
def test_invalid_configuration_exits_2_and_touches_nothing(
    tmp_path: Path, doc: dict[str, Any], field: str, accepted: str
) -> None:
    code, log = helpers.run_to_end(helpers.env_for(tmp_path, doc), timeout=60)
    assert code == contract.EXIT_INVALID, log
    message = valid_message(tmp_path)
    assert message.outcome is Outcome.INVALID
    assert message.error is not None
    assert f"{field}:" in message.error
    assert accepted in message.error
    assert not (tmp_path / "ckpt").exists()


def test_a_checkpoint_folder_that_is_a_file_is_invalid_not_a_crash(tmp_path: Path) -> None:
    """Exit 2 (never restarted), naming the variable and the spec field (issue 14, point 11)."""
    (tmp_path / "ckpt").write_text("a file where the job's folder should be")
    code, log = helpers.run_to_end(helpers.env_for(tmp_path, DOC), timeout=60)
    assert code == contract.EXIT_INVALID, log
    error = valid_message(tmp_path).error or ""
    assert error.startswith(f"invalid configuration: {contract.ENV_CHECKPOINT_DIR}: ")
    assert "is not a folder" in error
    assert "spec.checkpoint" in error


def test_bad_environment_variable_is_invalid(tmp_path: Path) -> None:
    env = {**helpers.env_for(tmp_path, DOC), contract.ENV_METRICS_PORT: "http"}
    code, _ = helpers.run_to_end(env, timeout=60)
    assert code == contract.EXIT_INVALID
    assert contract.ENV_METRICS_PORT in (valid_message(tmp_path).error or "")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entrypoint", "code", "words"),
    [
        ("tests.trainer.no_such_module:build", 2, "cannot import module"),
        ("tests.trainer.models:crashes", 1, "the data mount is not ready"),
    ],
)
def test_user_code_that_cannot_load(tmp_path: Path, entrypoint: str, code: int, words: str) -> None:
    exit_code, log = helpers.run_to_end(
        helpers.env_for(tmp_path, {**DOC, "entrypoint": entrypoint})
    )
    assert exit_code == code, log
    message = valid_message(tmp_path)
    assert message.outcome is contract.outcome_for_exit_code(code)
    assert words in (message.error or "")
    assert not (tmp_path / "ckpt").exists()


def test_help_needs_no_configuration() -> None:
    done = subprocess.run(
        [str(helpers.TRAIN), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert contract.ENV_CHECKPOINT_DIR in done.stdout
