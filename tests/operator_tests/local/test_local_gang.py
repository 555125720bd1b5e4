"""``rekindle run`` with ``workers: 2``: a gang of stand-in trainers, under the gang rules.

The stand-in (``local_fake_trainer.py``) acts as a worker when it gets
``TF_CONFIG``: only the chief saves and reports. These runs check what the
runner does with a gang: TF_CONFIG on free loopback ports, the first abnormal
end stops the others, one decision per attempt counted by the first cause,
and ``--inject …,worker=N`` aimed at one worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rekindle_operator.core.observation import AttemptEnd
from rekindle_operator.core.reasons import Cause
from rekindle_operator.local import runner
from rekindle_operator.local.attempt import Attempt, ProcessExit
from rekindle_operator.local.supervise import WorkerExit
from rekindle_operator.resources import classify, gang
from rekindle_trainer.contract import Outcome, TerminationMessage
from tests.operator_tests.local.test_local_runner import _manifest, _run, _status
from tests.support import engine_cases

WORKDIR = "wd"
EARLY_STOPPED = engine_cases.termination(Outcome.EARLY_STOPPED, early_stop_epoch=8)


def gang_manifest(tmp_path: Path, **overrides: Any) -> Path:
    return _manifest(tmp_path, "pair", workers=2, **overrides)


def test_two_workers_train_to_the_early_stop_and_only_the_chief_saves(tmp_path: Path) -> None:
    code, out, _ = _run(gang_manifest(tmp_path), tmp_path / WORKDIR)
    assert code == 0, out
    status = _status(tmp_path / WORKDIR)
    assert (status["phase"], status["reason"]) == ("Succeeded", "EarlyStopped")
    assert status["earlyStopEpoch"] == 8
    assert status["restarts"]["total"] == 0
    assert status["workersReady"] == "0/2"
    chief_status, other_status = status["workers"]
    assert (chief_status["index"], chief_status["pod"], chief_status["state"]) == (
        0,
        "pair-1-w0",
        "Succeeded",
    )
    assert chief_status["cause"] == "EarlyStopped"
    # It stopped early at the same epoch by itself, or was stopped once the chief had.
    assert (other_status["pod"], other_status["state"]) in {
        ("pair-1-w1", "Succeeded"),
        ("pair-1-w1", "Stopped"),
    }
    assert status["lastAttemptEnd"]["worker"] == 0
    attempt = tmp_path / WORKDIR / "attempts" / "0001"
    chief = TerminationMessage.from_json((attempt / "w0" / "termination-log").read_text())
    other = TerminationMessage.from_json((attempt / "w1" / "termination-log").read_text())
    assert chief.outcome is Outcome.EARLY_STOPPED
    assert chief.checkpoint is not None
    assert other.checkpoint is None  # the chief alone publishes checkpoints
    assert "attempt 1 running (pid " in out


def test_each_worker_gets_tf_config_on_free_loopback_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []

    def recording(command: Any, env: Any, files: Any, cwd: Any = None) -> Attempt:
        seen.append(dict(env))
        return Attempt(command, env, files, cwd=cwd)

    monkeypatch.setattr(runner, "Attempt", recording)
    code, out, _ = _run(gang_manifest(tmp_path), tmp_path / WORKDIR)
    assert code == 0, out
    configs = [json.loads(env["TF_CONFIG"]) for env in seen]
    assert [c["task"] for c in configs] == [
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]
    hosts = configs[0]["cluster"]["worker"]
    assert configs[1]["cluster"]["worker"] == hosts
    assert len(set(hosts)) == 2
    assert all(h.startswith("127.0.0.1:") and int(h.split(":")[1]) > 0 for h in hosts)
    assert [env["REKINDLE_METRICS_PORT"] for env in seen] == ["0", "0"]  # --metrics-port 0 here
    assert seen[0]["REKINDLE_PROGRESS_FILE"] != seen[1]["REKINDLE_PROGRESS_FILE"]


@pytest.mark.slow
def test_a_killed_worker_stops_the_other_and_the_gang_restarts_counted_once(
    tmp_path: Path,
) -> None:
    code, out, _ = _run(gang_manifest(tmp_path), tmp_path / WORKDIR, "sigkill@step=12,worker=1")
    assert code == 0, out
    status = _status(tmp_path / WORKDIR)
    assert (status["phase"], status["reason"]) == ("Succeeded", "EarlyStopped")
    assert status["earlyStopEpoch"] == 8
    assert status["attempt"] == 2
    assert status["restarts"]["byCause"] == {"NodeLost": 1}
    assert status["lastAttemptEnd"]["attempt"] == 2
    assert "injecting sigkill@step=12,worker=1" in out
    assert "worker 1 ended (exit code 137): stopping worker 0 (the attempt is over)" in out
    assert "NodeLost: worker 1 (pod pair-1-w1): injected sigkill@step=12,worker=1" in out
    assert out.count("Restarting") == 1
    assert out.count("resumed from ckpt-") == 1


@pytest.mark.slow
def test_a_preempted_chief_is_the_first_cause(tmp_path: Path) -> None:
    code, out, _ = _run(gang_manifest(tmp_path), tmp_path / WORKDIR, "sigterm@step=12")
    assert code == 0, out
    status = _status(tmp_path / WORKDIR)
    assert status["restarts"]["byCause"] == {"Preempted": 1}
    assert status["earlyStopEpoch"] == 8
    assert "Preempted: worker 0 (pod pair-1-w0): injected sigterm@step=12" in out


def test_a_fault_at_a_worker_the_job_lacks_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    code, _, err = _run(gang_manifest(tmp_path), tmp_path / WORKDIR, "sigkill@step=3,worker=2")
    assert code == 2
    assert "--inject sigkill@step=3,worker=2: worker 2 does not exist: the job has 2 workers" in err
    assert not (tmp_path / WORKDIR).exists()


def exited(code: int, message: TerminationMessage | None = None) -> ProcessExit:
    text = message.to_json() if message is not None else None
    return ProcessExit(exit_code=code, termination_message=text, output_tail="", seconds=1.0)


def test_a_worker_process_is_read_as_the_operator_reads_its_pod() -> None:
    """The local reading of a worker: the pod's name, the end time, the consequence flags."""
    stopped = WorkerExit(
        end=exited(143), known_cause=Cause.STOPPED, detail="stopped", ended_at=5.0, consequence=True
    )
    reading = runner.worker_reading("pair", 3, 0, 2, stopped)
    assert (reading.index, reading.pod, reading.consequence) == (0, "pair-3-w0", True)
    assert reading.ended_at is not None
    assert reading.ended_at.timestamp() == 5.0
    lost = TerminationMessage(outcome=Outcome.FAILED, peer_lost=True)
    assert runner.worker_reading("pair", 3, 1, 2, WorkerExit(end=exited(1, lost))).consequence
    single = runner.worker_reading("solo", 3, 0, 1, WorkerExit(end=exited(0)))
    assert single.pod == "solo-3"
    verdict = gang.judge(3, [runner.worker_reading("pair", 3, 1, 2, WorkerExit(end=exited(1)))])
    assert verdict.over


def gang_pod(index: int, **kwargs: Any) -> dict[str, Any]:
    pod = engine_cases.pod(2, **kwargs)
    pod["metadata"]["name"] = f"pair-2-w{index}"
    return pod


STOPPED_FOR_GANG = {classify.STOP_ANNOTATION: gang.STOP_REASON}
PREEMPTION = engine_cases.disruption("PreemptionByScheduler", "preempted")
#: The same ends of a two-worker attempt, as the cluster shows them and as processes end.
BOTH_BODIES = {
    "worker 1 crashed, the chief stopped": (
        [
            gang_pod(0, phase="Failed", exit_code=143, annotations=STOPPED_FOR_GANG),
            gang_pod(1, phase="Failed", exit_code=137),
        ],
        [
            WorkerExit(end=exited(143), known_cause=Cause.STOPPED, ended_at=2.0, consequence=True),
            WorkerExit(end=exited(137), ended_at=1.0),
        ],
    ),
    "worker 1 preempted, the chief stopped": (
        [
            gang_pod(0, phase="Failed", exit_code=143, annotations=STOPPED_FOR_GANG),
            gang_pod(1, phase="Failed", exit_code=143, conditions=(PREEMPTION,)),
        ],
        [
            WorkerExit(end=exited(143), known_cause=Cause.STOPPED, ended_at=2.0, consequence=True),
            WorkerExit(end=exited(143), known_cause=Cause.PREEMPTED, ended_at=1.0),
        ],
    ),
    "the chief early-stopped, worker 1 stopped": (
        [
            gang_pod(0, phase="Succeeded", exit_code=0, message=EARLY_STOPPED),
            gang_pod(1, phase="Failed", exit_code=143, annotations=STOPPED_FOR_GANG),
        ],
        [
            WorkerExit(end=exited(0, TerminationMessage.from_json(EARLY_STOPPED)), ended_at=1.0),
            WorkerExit(end=exited(143), known_cause=Cause.STOPPED, ended_at=2.0, consequence=True),
        ],
    ),
}


@pytest.mark.parametrize("name", list(BOTH_BODIES))
def test_both_bodies_judge_the_same_gang_end_alike(name: str) -> None:
    pods, processes = BOTH_BODIES[name]
    timeout = 600.0
    from_pods = gang.judge(
        2,
        [
            gang.read_pod(pod, i, now=engine_cases.NOW, pending_timeout_seconds=timeout)
            for i, pod in enumerate(pods)
        ],
    ).observed
    from_processes = gang.judge(
        2, [runner.worker_reading("pair", 2, i, 2, p) for i, p in enumerate(processes)]
    ).observed
    assert isinstance(from_pods, AttemptEnd)
    assert isinstance(from_processes, AttemptEnd)
    assert (from_pods.cause, from_pods.worker) == (from_processes.cause, from_processes.worker)
    assert from_pods.progress == from_processes.progress
