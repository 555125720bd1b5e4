"""Live progress: the real operator reads a running trainer's ``/progress`` into the status.

The trainer is a :class:`~tests.support.progress_stub.ProgressStub` that the
pod's address file points at (``REKINDLE_TRAINER_ADDRESS_DIR``: every pod of
the emulated cluster shares one host). ``kubectl get tj`` must show the epoch
while the attempt runs, and a job whose attempt is not running is never read.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rekindle_operator.cluster.live import ENV_ADDRESS_DIR
from rekindle_trainer.contract.live import LiveBest, LiveCheckpoint, LiveProgress
from tests.kube.cluster import Cluster
from tests.operator_tests.cluster.test_operator import (
    NS,
    condition,
    emulated_cluster,
    end_pod,
    event_reasons,
    terminated,
    training_job,
    wait_event,
    wait_status,
)
from tests.support.kubectl import Kubectl
from tests.support.operator_process import OperatorProcess, running_operator
from tests.support.progress_stub import ProgressStub

SAVED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with emulated_cluster(tmp_path_factory.mktemp("cluster"), NS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def address_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("addresses")


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, address_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    os.environ[ENV_ADDRESS_DIR] = str(address_dir)
    try:
        with running_operator(cluster.kubeconfig, log) as process:
            yield process
    finally:
        del os.environ[ENV_ADDRESS_DIR]


def running(ip: str = "10.1.2.3") -> dict[str, Any]:
    """A pod status whose trainer runs."""
    return {
        "phase": "Running",
        "podIP": ip,
        "containerStatuses": [
            {
                "name": "trainer",
                "ready": True,
                "state": {"running": {"startedAt": "2026-12-03T12:00:00Z"}},
            }
        ],
    }


def at(epoch: int, checkpoint: str | None = None) -> LiveProgress:
    saved = LiveCheckpoint(name=checkpoint, time=SAVED) if checkpoint else None
    best = LiveBest(monitor="val_loss", value=1.0 / epoch, epoch=epoch)
    return LiveProgress(
        attempt=1,
        phase="training",
        epoch=epoch,
        step=epoch * 10,
        steps_this_attempt=epoch * 10,
        best=best,
        checkpoint=saved,
    )


@pytest.mark.slow
def test_the_status_follows_the_running_attempt_and_a_finished_job_is_not_read(
    cluster: Cluster, operator: OperatorProcess, address_dir: Path, tmp_path: Path
) -> None:
    stub = ProgressStub(at(3, "ckpt-3-30"))
    try:
        cluster.create(training_job("live", NS))
        cluster.wait_for("pods", NS, "live-1", lambda _: True, what="the first pod")
        assert stub.reads == 0  # pending: not read
        stub.publish(address_dir, NS, "live-1")
        end_pod(cluster, NS, "live-1", running())
        job = wait_status(cluster, NS, "live", {"phase": "Running", "currentEpoch": 3})
        status = job["status"]
        assert (status["currentStep"], status["latestCheckpoint"]) == (30, "ckpt-3-30")
        assert status["latestCheckpointTime"] == "2026-12-03T12:00:00Z"
        assert status["bestMetric"] == {"name": "val_loss", "value": 1 / 3, "epoch": 3}
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "kube-cache", NS)
        header, row = kubectl.run("get", "tj", "live", "-o", "wide").lines()
        shown = dict(zip(header.split(), row.split(), strict=True))
        assert (shown["EPOCH"], shown["STEP"], shown["CHECKPOINT"]) == ("3", "30", "ckpt-3-30")

        # An epoch ends: in the status within 30 s (the policy says 20).
        stub.doc = at(4, "ckpt-4-40")
        ended = time.monotonic()
        wait_status(cluster, NS, "live", {"currentEpoch": 4}, timeout=30)
        assert time.monotonic() - ended <= 30

        end_pod(cluster, NS, "live-1", terminated(0))
        wait_status(cluster, NS, "live", {"phase": "Succeeded"})
        reads = stub.reads
        time.sleep(12)  # more than a poll interval: a finished job is not read
        assert stub.reads == reads
    finally:
        stub.close()


@pytest.mark.slow
def test_a_frozen_trainer_is_stopped_as_stalled_and_restarted_after_the_backoff(
    cluster: Cluster, operator: OperatorProcess, address_dir: Path
) -> None:
    spec = {
        "restartPolicy": {
            "backoff": {"initialSeconds": 1, "maxSeconds": 1},
            "stallTimeoutSeconds": 5,
            "firstStepTimeoutSeconds": 60,
        }
    }
    cluster.create(training_job("frozen", NS, **spec))
    cluster.wait_for("pods", NS, "frozen-1", lambda _: True, what="the first pod")
    trainer = subprocess.Popen(
        [sys.executable, "-m", "tests.support.progress_stub", str(address_dir / NS / "frozen-1")]
    )
    try:
        wait_for_file(address_dir / NS / "frozen-1")
        end_pod(cluster, NS, "frozen-1", running())
        wait_status(cluster, NS, "frozen", {"phase": "Running"})
        time.sleep(12)  # read at least once while it steps
        assert cluster.get("pods", NS, "frozen-1")["metadata"].get("deletionTimestamp") is None
        os.kill(trainer.pid, signal.SIGSTOP)  # frozen entirely: it no longer answers
        # The operator marks the pod Stalled and deletes it (no kubelet here: it is gone
        # at once, and its last state is read); the next attempt follows the backoff.
        job = wait_status(cluster, NS, "frozen", {"attempt": 2}, timeout=60)
    finally:
        trainer.kill()
        trainer.wait()
    status = job["status"]
    assert status["lastAttemptEnd"]["cause"] == "Stalled"
    assert "stallTimeoutSeconds" in status["lastAttemptEnd"]["message"]
    assert status["restarts"]["failures"] == 1
    assert status["restarts"]["byCause"] == {"Stalled": 1}
    cluster.wait_for("pods", NS, "frozen-2", lambda _: True, what="the next attempt")


@pytest.mark.slow
def test_a_trainer_whose_saves_outlast_the_grace_period_gets_one_warning(
    cluster: Cluster, operator: OperatorProcess, address_dir: Path
) -> None:
    # Saves of up to 40 s need 40 * 1.5 + 10 = 70 s of grace; the job gives 30.
    slow = dataclasses.replace(at(3, "ckpt-3-30"), saves=4, save_seconds_p99=40.0)
    stub = ProgressStub(slow)
    try:
        job = cluster.create(training_job("slowsave", NS, terminationGracePeriodSeconds=30))
        cluster.wait_for("pods", NS, "slowsave-1", lambda _: True, what="the first pod")
        stub.publish(address_dir, NS, "slowsave-1")
        end_pod(cluster, NS, "slowsave-1", running())
        found = cluster.wait_for(
            "trainingjobs",
            NS,
            "slowsave",
            lambda obj: (condition(obj, "GraceTooShort") or {}).get("status") == "True",
            what="GraceTooShort True",
        )
        shown = condition(found, "GraceTooShort")
        assert shown is not None
        assert shown["reason"] == "SaveOutlastsGrace"
        assert "terminationGracePeriodSeconds (30 s)" in shown["message"]
        assert "at least 70" in shown["message"]
        wait_event(cluster, job, ("Warning", "GraceTooShort"))
        # Another save, as slow: the status moves, the warning is not posted again.
        stub.doc = dataclasses.replace(at(4, "ckpt-4-40"), saves=5, save_seconds_p99=40.0)
        wait_status(cluster, NS, "slowsave", {"currentEpoch": 4}, timeout=30)
        end_pod(cluster, NS, "slowsave-1", terminated(0))
        wait_status(cluster, NS, "slowsave", {"phase": "Succeeded"})
        assert event_reasons(cluster, job).count(("Warning", "GraceTooShort")) == 1
    finally:
        stub.close()


def wait_for_file(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written"
        time.sleep(0.05)
