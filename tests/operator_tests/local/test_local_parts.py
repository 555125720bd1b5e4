"""The local runner's parts: the attempt's environment, exit codes, the work folder, the summary."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from rekindle_operator.local import launch
from rekindle_operator.local.attempt import (
    Attempt,
    AttemptFiles,
    process_env,
)
from rekindle_operator.local.summary import RunStats, summary_lines
from rekindle_operator.local.workdir import Workdir, WorkdirError
from rekindle_operator.resources import trainer_env, validation
from rekindle_trainer import contract

REPO = Path(__file__).resolve().parents[3]


def test_an_attempt_gets_the_contract_environment(tmp_path: Path) -> None:
    files = AttemptFiles.under(tmp_path / "attempts", 3)
    env = process_env(
        {"PATH": "/bin", contract.ENV_CONFIG_FILE: "/stale.yaml", contract.ENV_ATTEMPT: "9"},
        config={"epochs": 5, "entrypoint": "m:f"},
        checkpoint_dir=tmp_path / "checkpoints",
        attempt=3,
        job=trainer_env.JobIdentity("digits", "local", "uid-1"),
        metrics_port=9102,
        files=files,
        extra={"USER_VAR": "x", contract.ENV_CHECKPOINT_DIR: "/elsewhere"},
    )
    assert env["PATH"] == "/bin"
    assert env["USER_VAR"] == "x"
    assert contract.ENV_CONFIG_FILE not in env
    assert json.loads(env[contract.ENV_CONFIG]) == {"epochs": 5, "entrypoint": "m:f"}
    assert env[contract.ENV_CHECKPOINT_DIR] == str(tmp_path / "checkpoints")
    assert env[contract.ENV_ATTEMPT] == "3"
    assert env[contract.ENV_JOB_NAME] == "digits"
    assert env[contract.ENV_JOB_NAMESPACE] == "local"
    assert env[contract.ENV_JOB_UID] == "uid-1"
    assert env[contract.ENV_METRICS_PORT] == "9102"
    assert env[contract.ENV_TERMINATION_LOG] == str(tmp_path / "attempts/0003/termination-log")
    assert env[contract.ENV_PROGRESS_FILE] == str(tmp_path / "attempts/0003/progress.jsonl")


def test_an_attempt_runs_in_its_own_process_group_and_reports_its_end(tmp_path: Path) -> None:
    files = AttemptFiles.under(tmp_path, 1)
    files.folder.mkdir(parents=True)
    script = (
        "import os, sys\n"
        "assert os.getpgid(0) == os.getpid(), 'not its own process group'\n"
        "open(os.environ['REKINDLE_TERMINATION_LOG'], 'w').write('{\"outcome\": \"failed\"}')\n"
        "print('last words'); sys.exit(3)\n"
    )
    env = {"REKINDLE_TERMINATION_LOG": str(files.termination_log)}
    attempt = Attempt([sys.executable, "-c", script], env, files)
    end = attempt.wait(30)
    assert end is not None
    assert end.exit_code == 3
    assert end.termination_message == '{"outcome": "failed"}'
    assert end.output_tail.endswith("last words")


def test_a_signalled_attempt_ends_with_128_plus_the_signal(tmp_path: Path) -> None:
    files = AttemptFiles.under(tmp_path, 1)
    files.folder.mkdir(parents=True)
    files.termination_log.write_text('{"outcome": "completed", "epoch": 1, "step": 1}')
    attempt = Attempt([sys.executable, "-c", "import time; time.sleep(60)"], {}, files)
    assert attempt.wait(0.2) is None
    attempt.send(signal.SIGKILL)
    end = attempt.wait(30)
    assert end is not None
    assert end.exit_code == 137
    # The message an earlier try left behind is never taken for this one's.
    assert end.termination_message is None


def test_the_work_folder_round_trips_and_fresh_keeps_foreign_files(tmp_path: Path) -> None:
    folder = Workdir(tmp_path / "wd")
    assert folder.load() is None
    folder.prepare()
    (folder.checkpoint_dir / "ckpt-000001-0000000010").mkdir()
    (folder.root / "notes.txt").write_text("mine")
    folder.save({"metadata": {"name": "x"}, "status": {"phase": "Running"}})
    folder.append_event("one")
    assert folder.load() == {"metadata": {"name": "x"}, "status": {"phase": "Running"}}
    assert not list(folder.root.glob(".job.json.tmp"))
    folder.wipe()
    assert folder.load() is None
    assert not folder.checkpoint_dir.exists()
    assert not folder.events_log.exists()
    assert (folder.root / "notes.txt").read_text() == "mine"


def test_a_corrupt_record_asks_for_fresh(tmp_path: Path) -> None:
    folder = Workdir(tmp_path)
    folder.job_file.write_text("{not json")
    with pytest.raises(WorkdirError, match="run with --fresh"):
        folder.load()


def test_a_changed_spec_bumps_the_generation_and_keeps_uid_and_status(tmp_path: Path) -> None:
    folder = Workdir(tmp_path / "wd")
    loaded = validation.load(REPO / "examples" / "digits.yaml")
    first = launch.local_job(loaded, folder)
    assert (first.generation, first.namespace) == (1, "local")
    first.status = first.status.but(attempt=2, current_epoch=5)
    folder.save(first.record())
    same = launch.local_job(loaded, folder)
    assert (same.generation, same.uid, same.status.current_epoch) == (1, first.uid, 5)
    changed_doc = json.loads(json.dumps(loaded.document))
    changed_doc["spec"]["training"]["epochs"] = 61
    changed = launch.local_job(validation.check(changed_doc), folder)
    assert (changed.generation, changed.uid, changed.status.attempt) == (2, first.uid, 2)


def test_an_unreadable_stored_status_asks_for_fresh(tmp_path: Path) -> None:
    folder = Workdir(tmp_path / "wd")
    loaded = validation.load(REPO / "examples" / "digits.yaml")
    folder.save({"metadata": {"name": "digits"}, "status": {"attempt": "many"}})
    with pytest.raises(launch.UsageError, match="run with --fresh"):
        launch.local_job(loaded, folder)


@pytest.mark.parametrize("port", [-1, 65_536])
def test_a_metrics_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(launch.UsageError, match="--metrics-port"):
        launch.pick_metrics_port(port)


def test_the_default_metrics_port_moves_when_taken() -> None:
    with socket.socket() as holder:
        with contextlib.suppress(OSError):  # already taken by someone else: as good
            holder.bind(("", contract.DEFAULT_METRICS_PORT))
            holder.listen()
        port = launch.pick_metrics_port(None)
        assert port > 0
        assert port != contract.DEFAULT_METRICS_PORT
        assert launch.pick_metrics_port(contract.DEFAULT_METRICS_PORT) == 9102  # as asked
        assert launch.pick_metrics_port(0) == 0


def _status(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "phase": "Succeeded",
        "reason": "EarlyStopped",
        "message": "early stopped at epoch 12",
        "currentEpoch": 12,
        "restarts": {"total": 2, "byCause": {"Preempted": 1, "NodeLost": 1, "Crashed": 0}},
        "lostSteps": 45,
        "earlyStopEpoch": 12,
        "bestMetric": {"name": "val_loss", "value": 0.08312, "epoch": 9},
        "attempt": 3,
        "latestCheckpoint": "ckpt-000012-0000000540",
    }
    base.update(fields)
    return base


def test_the_summary_reports_what_the_faults_cost_and_early_stopping_saved() -> None:
    stats = RunStats(
        attempts=3, epochs_trained=13, saves=14, faults=["sigkill@epoch=3"], seconds=61.04
    )
    assert summary_lines(100, _status(), stats) == [
        "summary",
        "  phase         Succeeded (EarlyStopped)",
        "  epochs run    12 of 100 (13 trained in this run, 1 again after a resume)",
        "  restarts      2 (NodeLost 1, Preempted 1)",
        "  steps lost    45",
        "  early stop    epoch 12",
        "  best          val_loss 0.08312 at epoch 9",
        "  epoch budget  100 epochs; early stopping saved 88 (88%)",
        "  this run      3 attempts (last attempt #3), 14 checkpoints saved in 61.0 s, "
        "injected sigkill@epoch=3",
        "  checkpoint    ckpt-000012-0000000540",
    ]


def test_the_summary_of_a_failure_says_why() -> None:
    status = _status(
        phase="Failed",
        reason="MaxRestartsExceeded",
        message="failed because of Crashed after 3 restarts",
        earlyStopEpoch=None,
        bestMetric=None,
        latestCheckpoint=None,
        restarts={},
    )
    lines = summary_lines(20, status, RunStats(attempts=1, saves=1))
    assert lines[1] == (
        "  phase         Failed (MaxRestartsExceeded): failed because of Crashed after 3 restarts"
    )
    assert "  restarts      0" in lines
    assert "  early stop    did not fire" in lines
    assert "  best          none yet" in lines
    assert "  epoch budget  20 epochs" in lines
    assert "  this run      1 attempt (last attempt #3), 1 checkpoint saved in 0.0 s" in lines
    assert not any(line.startswith("  checkpoint") for line in lines)
