"""``rekindle run`` end to end against a stand-in trainer (``local_fake_trainer.py``).

The stand-in honours the contract without TensorFlow and stops early at a
known epoch, so that these tests take a second or two each; the same runs
against the real trainer are in ``test_run_digits.py``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rekindle_operator.local import launch
from rekindle_operator.resources import validation

FAKE = Path(__file__).parents[1] / "local_fake_trainer.py"
INVALID = Path(__file__).parents[1] / "manifests" / "invalid"


def _manifest(tmp_path: Path, name: str = "fake", **overrides: Any) -> Path:
    """A TrainingJob that runs the stand-in: 20 epochs of 5 steps, best epoch 6, patience 2."""
    hyper: dict[str, Any] = {"bestEpoch": 6, "stepSeconds": 0.03}
    hyper.update(overrides.pop("hyperparameters", {}))
    spec: dict[str, Any] = {
        "image": "local/fake:1",
        "command": [sys.executable, str(FAKE)],
        "training": {"epochs": 20, "stepsPerEpoch": 5, "hyperparameters": hyper},
        "earlyStopping": {"monitor": "val_loss", "patience": 2},
        "restartPolicy": {
            "maxRestarts": 2,
            "backoff": {"initialSeconds": 1, "maxSeconds": 2, "factor": 2.0},
        },
        "terminationGracePeriodSeconds": 10,
    }
    spec.update(overrides)
    doc = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": spec,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(manifest: Path, workdir: Path, *inject: str, fresh: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = launch.run_from_args(
        manifest=manifest,
        workdir=workdir,
        fresh=fresh,
        inject=list(inject),
        metrics_port=0,
        progress=True,
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def _status(workdir: Path) -> dict[str, Any]:
    status: dict[str, Any] = json.loads((workdir / "job.json").read_text())["status"]
    return status


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_an_uninterrupted_run_stops_early_and_succeeds(tmp_path: Path) -> None:
    code, out, _ = _run(_manifest(tmp_path), tmp_path / "wd")
    assert code == 0
    status = _status(tmp_path / "wd")
    assert status["phase"] == "Succeeded"
    assert status["reason"] == "EarlyStopped"
    assert status["earlyStopEpoch"] == 8  # best epoch 6, patience 2
    assert status["restarts"]["total"] == 0
    assert status["bestMetric"] == {"name": "val_loss", "value": pytest.approx(0.1), "epoch": 6}
    # As on a cluster: when the newest checkpoint was published (the progress event's time).
    assert status["latestCheckpoint"]
    assert status["latestCheckpointTime"].endswith("Z")
    assert "epoch  8/20  [########################] 5/5" in out
    assert "early stop    epoch 8" in out
    assert "early stopping saved 12 (60%)" in out


@pytest.mark.slow
def test_sigkill_and_sigterm_are_survived_and_stop_at_the_same_epoch(tmp_path: Path) -> None:
    code, out, _ = _run(_manifest(tmp_path), tmp_path / "wd", "sigkill@epoch=3", "sigterm@step=27")
    assert code == 0, out
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["reason"]) == ("Succeeded", "EarlyStopped")
    assert status["earlyStopEpoch"] == 8
    assert status["attempt"] == 3
    assert status["restarts"]["byCause"] == {"NodeLost": 1, "Preempted": 1}
    assert status["restarts"]["failures"] == 0
    assert "injecting sigkill@epoch=3" in out
    assert "NodeLost: injected sigkill@epoch=3 (exit code 137, SIGKILL)" in out
    assert "Preempted: injected sigterm@step=27 (exit code 143, SIGTERM)" in out
    assert "restarts      2 (NodeLost 1, Preempted 1)" in out
    # Attempts 2 and 3 each resumed from the newest checkpoint.
    assert out.count("resumed from ckpt-") == 2
    assert (tmp_path / "wd" / "attempts" / "0003" / "termination-log").exists()


def test_a_crash_restarts_after_the_backoff_and_counts_as_a_failure(tmp_path: Path) -> None:
    started = time.monotonic()
    code, out, _ = _run(_manifest(tmp_path), tmp_path / "wd", "crash@epoch=2")
    assert code == 0, out
    status = _status(tmp_path / "wd")
    assert status["restarts"] == {
        "total": 1,
        "failures": 1,
        "disruptions": 0,
        "byCause": {"Crashed": 1},
    }
    assert "Crashed: exit code 134 (SIGABRT)" in out
    assert "waiting 1.0 s before the next attempt" in out
    assert time.monotonic() - started >= 1.0
    assert status["earlyStopEpoch"] == 8


def test_a_frozen_trainer_is_stopped_as_stalled_and_restarted_after_the_backoff(
    tmp_path: Path,
) -> None:
    manifest = _manifest(
        tmp_path,
        hyperparameters={"freezeAtStep": 12},
        restartPolicy={
            "maxRestarts": 2,
            "backoff": {"initialSeconds": 1, "maxSeconds": 1},
            "stallTimeoutSeconds": 1,
            "firstStepTimeoutSeconds": 30,
        },
        terminationGracePeriodSeconds=1,
    )
    code, out, _ = _run(manifest, tmp_path / "wd")
    assert code == 0, out
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["earlyStopEpoch"]) == ("Succeeded", 8)
    assert status["restarts"] == {
        "total": 1,
        "failures": 1,
        "disruptions": 0,
        "byCause": {"Stalled": 1},
    }
    assert "stalled: no training step for" in out
    assert "did not exit 1 s after SIGTERM: killing it" in out  # SIGSTOPped: only SIGKILL works
    assert "waiting 1.0 s before the next attempt" in out


def test_failures_beyond_max_restarts_fail_the_job_and_keep_the_checkpoints(
    tmp_path: Path,
) -> None:
    manifest = _manifest(
        tmp_path, restartPolicy={"maxRestarts": 0, "backoff": {"initialSeconds": 1}}
    )
    code, out, _ = _run(manifest, tmp_path / "wd", "crash@epoch=2")
    assert code == 1
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["reason"]) == ("Failed", "MaxRestartsExceeded")
    assert list((tmp_path / "wd" / "checkpoints").glob("ckpt-*"))
    assert "Failed (MaxRestartsExceeded)" in out


def test_an_invalid_configuration_fails_at_once_without_a_restart(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, hyperparameters={"invalid": True})
    code, out, _ = _run(manifest, tmp_path / "wd")
    assert code == 1
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidConfig")
    assert status["attempt"] == 1
    assert "hyperparameters.invalid: set by the test" in out


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.yaml"))[:6], ids=lambda p: p.name)
def test_an_invalid_manifest_exits_2_naming_the_field_and_writes_nothing(
    tmp_path: Path, path: Path
) -> None:
    expected = [
        line.removeprefix("# expect:").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    ]
    workdir = tmp_path / "wd"
    code, out, err = _run(path, workdir, "sigkill@epoch=1", fresh=True)
    assert code == 2
    assert out == ""
    for text in expected:
        assert text in err
    assert "nothing was run or written" in err
    assert not workdir.exists()


def test_an_invalid_manifest_with_fresh_leaves_an_earlier_run_untouched(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    assert _run(_manifest(tmp_path), workdir)[0] == 0
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    bad = _manifest(tmp_path, training={"epochs": 0})
    code, _, err = _run(bad, workdir, fresh=True)
    assert code == 2
    assert "spec.training.epochs" in err
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        ("sigkill@epoch=zero", "--inject 'sigkill@epoch=zero': epoch must be a whole number"),
        ("explode@step=3", "unknown action 'explode'"),
    ],
)
def test_a_bad_fault_exits_2_and_writes_nothing(tmp_path: Path, inject: str, message: str) -> None:
    code, _, err = _run(_manifest(tmp_path), tmp_path / "wd", inject)
    assert code == 2
    assert message in err
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow
def test_a_finished_job_is_not_run_again_unless_fresh(tmp_path: Path) -> None:
    manifest, workdir = _manifest(tmp_path), tmp_path / "wd"
    assert _run(manifest, workdir)[0] == 0
    code, out, _ = _run(manifest, workdir)
    assert code == 0
    assert "the job already Succeeded; pass --fresh" in out
    assert "attempt 2" not in out
    assert not (workdir / "attempts" / "0002").exists()
    code, out, _ = _run(manifest, workdir, fresh=True)
    assert code == 0
    assert _status(workdir)["attempt"] == 1
    assert "AttemptStarted: starting attempt 1" in out


def test_a_workdir_of_another_job_is_refused(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    assert _run(_manifest(tmp_path, name="first"), workdir)[0] == 0
    code, _, err = _run(_manifest(tmp_path, name="second"), workdir)
    assert code == 2
    assert "holds job 'first', not 'second'" in err


def test_the_deadline_stops_the_attempt_and_fails_the_job(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, activeDeadlineSeconds=1, hyperparameters={"stepSeconds": 0.2})
    code, out, _ = _run(manifest, tmp_path / "wd")
    assert code == 1
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert "stopping attempt" in out
    # The trainer was told to save and stop (SIGTERM), not killed.
    assert "stopped: failed because activeDeadlineSeconds (1s) passed" in out
    assert "(exit code 143, SIGTERM)" in out


def _rekindle(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("rekindle")), "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _crash_then_ctrl_c_in_the_backoff(manifest: Path, workdir: Path, cwd: Path) -> dict[str, Any]:
    """Run ``manifest`` with a crash in epoch 1, Ctrl-C it once it waits to restart; its status."""
    first = _rekindle(
        str(manifest), "--workdir", str(workdir), "--metrics-port", "0",
        "--inject", "crash@epoch=1", cwd=cwd,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (workdir / "job.json").exists() or _status(workdir).get("phase") != "Restarting":
        assert time.monotonic() < deadline, "never reached the backoff"
        assert first.poll() is None, first.communicate()[0]
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=30)
    assert first.returncode == 130, out
    return _status(workdir)


def _wait_for_epoch(workdir: Path, epoch: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if _status(workdir).get("currentEpoch", 0) >= epoch:
                return
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"epoch {epoch} not reached")


@pytest.mark.slow
def test_ctrl_c_is_a_preemption_and_a_second_run_resumes(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, hyperparameters={"stepSeconds": 0.05})
    workdir = tmp_path / "wd"
    first = _rekindle(str(manifest), "--workdir", str(workdir), "--metrics-port", "0", cwd=tmp_path)
    _wait_for_epoch(workdir, 2, first)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert "interrupted: sending SIGTERM so that the trainer saves" in out
    assert "run the same command again to resume" in out
    status = _status(workdir)
    assert status["phase"] not in ("Succeeded", "Failed")
    assert status["restarts"]["byCause"] == {"Preempted": 1}
    saved = status["latestCheckpoint"]
    assert saved is not None

    second = _rekindle(
        str(manifest), "--workdir", str(workdir), "--metrics-port", "0", cwd=tmp_path
    )
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert f"resumed from {saved}" in out
    status = _status(workdir)
    assert (status["phase"], status["reason"], status["earlyStopEpoch"]) == (
        "Succeeded",
        "EarlyStopped",
        8,
    )
    assert status["attempt"] == 2


@pytest.mark.slow
def test_a_trainer_left_running_by_a_killed_runner_is_stopped_and_counted(
    tmp_path: Path,
) -> None:
    manifest = _manifest(tmp_path, hyperparameters={"stepSeconds": 0.2})
    workdir = tmp_path / "wd"
    first = _rekindle(str(manifest), "--workdir", str(workdir), "--metrics-port", "0", cwd=tmp_path)
    _wait_for_epoch(workdir, 1, first)
    first.kill()  # the runner dies; its trainer (own process group) keeps running
    first.communicate(timeout=30)
    pid = int((workdir / "trainer.pid").read_text())
    assert _running(pid)

    second = _rekindle(
        str(manifest), "--workdir", str(workdir), "--metrics-port", "0", cwd=tmp_path
    )
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert f"attempt 1 (pid {pid}) from a previous run still runs: stopping it" in out
    status = _status(workdir)
    assert status["phase"] == "Succeeded"
    assert status["earlyStopEpoch"] == 8
    assert status["attempt"] == 2
    assert sum(status["restarts"]["byCause"].values()) == 1


def test_a_command_that_cannot_start_is_a_config_error_with_backoff(tmp_path: Path) -> None:
    manifest = _manifest(
        tmp_path,
        command=[str(tmp_path / "no-such-trainer")],
        restartPolicy={"maxRestarts": 1, "backoff": {"initialSeconds": 1}},
    )
    code, out, _ = _run(manifest, tmp_path / "wd")
    assert code == 1
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["reason"]) == ("Failed", "MaxRestartsExceeded")
    assert status["restarts"]["byCause"] == {"ConfigError": 1}
    assert "cannot start" in out
    assert "check spec.command" in out


def test_a_suspended_job_runs_nothing_and_says_so(tmp_path: Path) -> None:
    code, out, _ = _run(_manifest(tmp_path, suspend=True), tmp_path / "wd")
    assert code == 0
    assert _status(tmp_path / "wd")["phase"] == "Suspended"
    assert "the job is suspended (spec.suspend: true)" in out
    assert not (tmp_path / "wd" / "attempts").exists()


@pytest.mark.slow
def test_ctrl_c_during_a_backoff_keeps_the_wait_for_the_next_run(tmp_path: Path) -> None:
    manifest = _manifest(
        tmp_path, restartPolicy={"maxRestarts": 2, "backoff": {"initialSeconds": 3}}
    )
    workdir = tmp_path / "wd"
    status = _crash_then_ctrl_c_in_the_backoff(manifest, workdir, tmp_path)
    assert status["phase"] == "Restarting"
    assert status["nextAttemptTime"] is not None
    assert status["restarts"]["byCause"] == {"Crashed": 1}

    second = _rekindle(
        str(manifest), "--workdir", str(workdir), "--metrics-port", "0", cwd=tmp_path
    )
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert "backoff over; starting attempt 2" in out
    status = _status(workdir)
    assert (status["phase"], status["earlyStopEpoch"], status["attempt"]) == ("Succeeded", 8, 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("further", "code", "outcome"),
    [(1, 1, ("Failed", "MaxRestartsExceeded")), (4, 0, ("Succeeded", "EarlyStopped"))],
    ids=["too-little-progress-fails", "progress-starts-it-afresh"],
)
def test_the_failure_budget_survives_a_second_run(
    tmp_path: Path, further: int, code: int, outcome: tuple[str, str]
) -> None:
    """A second ``rekindle run`` reads the spent budget back; only progress restores it.

    maxRestarts 1: the first run's crash spends the budget and is interrupted in
    the backoff. A crash 1 epoch further in the second run fails the job (a
    budget started afresh by the re-run would have restarted it); one 4 epochs
    further (resetAfterProgressEpochs 3) starts the budget afresh, and the job
    finishes.
    """
    policy = {"maxRestarts": 1, "resetAfterProgressEpochs": 3, "backoff": {"initialSeconds": 3}}
    manifest = _manifest(tmp_path, restartPolicy=policy)
    workdir = tmp_path / "wd"
    status = _crash_then_ctrl_c_in_the_backoff(manifest, workdir, tmp_path)
    crashed_at = status["currentEpoch"]
    budget = {k: v for k, v in status["restartBudget"].items() if v is not None}
    assert budget == {
        "failuresUsed": 1,
        "failuresLeft": 0,
        "progressEpoch": crashed_at,
        "resets": 0,
    }
    assert "0 of 1 failed restarts left" in status["message"]

    second = _rekindle(
        str(manifest), "--workdir", str(workdir), "--metrics-port", "0",
        "--inject", f"crash@epoch={crashed_at + further}", cwd=tmp_path,
    )  # fmt: skip
    out, _ = second.communicate(timeout=120)
    assert second.returncode == code, out
    status = _status(workdir)
    assert (status["phase"], status["reason"]) == outcome, out
    if code:  # the failure that ends the job is no restart
        assert status["restarts"]["failures"] == 1
        assert "after 1 restart (maxRestarts 1)" in status["message"]
        assert status["restartBudget"]["resets"] == 0
    else:
        assert status["restarts"]["failures"] == 2
        assert "started the failure budget afresh; 0 of 1 failed restarts left" in out
        assert status["restartBudget"]["resets"] == 1
        assert status["restartBudget"]["failuresUsed"] == 1


@pytest.mark.slow
def test_fresh_stops_a_trainer_left_running_before_it_wipes(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, hyperparameters={"stepSeconds": 0.2})
    workdir = tmp_path / "wd"
    first = _rekindle(str(manifest), "--workdir", str(workdir), "--metrics-port", "0", cwd=tmp_path)
    _wait_for_epoch(workdir, 1, first)
    first.kill()
    first.communicate(timeout=30)
    pid = int((workdir / "trainer.pid").read_text())
    assert _running(pid)
    code, out, err = _run(manifest, workdir, fresh=True)
    assert code == 0, out
    assert f"stopping the trainer (pid {pid}) a previous run left running" in err
    assert not _running(pid)
    status = _status(workdir)
    assert (status["attempt"], status["restarts"]["total"], status["earlyStopEpoch"]) == (1, 0, 8)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (not gone, not a zombie left for its new parent to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_time_fault_fires_once_counted_from_the_first_attempt(tmp_path: Path) -> None:
    code, out, _ = _run(_manifest(tmp_path), tmp_path / "wd", "sigterm@seconds=0.8")
    assert code == 0, out
    status = _status(tmp_path / "wd")
    assert status["restarts"]["byCause"] == {"Preempted": 1}
    assert out.count("injecting sigterm@seconds=0.8") == 1
    assert status["earlyStopEpoch"] == 8


def _decided_but_not_started(workdir: Path, manifest: Path) -> None:
    """A job.json as a run of ``manifest`` leaves it when interrupted right after deciding on
    attempt 2."""
    workdir.mkdir()
    record = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "fake", "uid": "uid-1", "generation": 1},
        "spec": validation.load(manifest).document["spec"],
        "status": {
            "phase": "Pending",
            "reason": "AttemptStarted",
            "attempt": 2,
            "restarts": {"total": 1, "disruptions": 1, "byCause": {"Preempted": 1}},
            "startTime": "2026-11-26T10:00:00Z",
            "lastAttemptStartTime": "2026-11-26T10:01:00Z",
            "lastAttemptEnd": {"attempt": 1, "cause": "Preempted", "exitCode": 143},
        },
    }
    (workdir / "job.json").write_text(json.dumps(record))


def test_an_attempt_decided_but_never_started_is_started_by_the_next_run(
    tmp_path: Path,
) -> None:
    workdir, manifest = tmp_path / "wd", _manifest(tmp_path)
    _decided_but_not_started(workdir, manifest)
    code, out, _ = _run(manifest, workdir)
    assert code == 0, out
    assert "picking up: attempt 2 was decided by the previous run" in out
    assert not (workdir / "attempts" / "0001").exists()
    status = _status(workdir)
    assert (status["phase"], status["attempt"], status["restarts"]["total"]) == ("Succeeded", 2, 1)
    assert status["observedGeneration"] == 1


def test_an_attempt_decided_but_never_started_is_not_started_once_suspended(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "wd"
    _decided_but_not_started(workdir, _manifest(tmp_path))
    code, out, _ = _run(_manifest(tmp_path, suspend=True), workdir)
    assert code == 0, out
    assert not (workdir / "attempts").exists()
    status = _status(workdir)
    assert (status["phase"], status["attempt"], status["restarts"]["total"]) == ("Suspended", 2, 1)
    assert status["observedGeneration"] == 2  # the spec changed: suspend: true


def test_the_deadline_cuts_a_backoff_short(tmp_path: Path) -> None:
    manifest = _manifest(
        tmp_path,
        activeDeadlineSeconds=3,
        restartPolicy={"maxRestarts": 3, "backoff": {"initialSeconds": 60}},
    )
    started = time.monotonic()
    code, out, _ = _run(manifest, tmp_path / "wd", "crash@epoch=1")
    assert code == 1, out
    assert time.monotonic() - started < 30
    status = _status(tmp_path / "wd")
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert status["restarts"]["byCause"] == {"Crashed": 1}
