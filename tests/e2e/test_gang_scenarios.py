"""End to end on a gang: a two-worker TrainingJob of the real trainer, run by the real operator.

Each worker is a ``rekindle-train`` process under ``MultiWorkerMirroredStrategy``
(on the emulated cluster the process kubelet resolves the workers' names in
``TF_CONFIG`` to loopback ports: test-only cluster DNS). The uninterrupted run
is the reference; one job then takes the three faults a gang meets, one per
attempt, each right after a checkpoint its own attempt wrote (often mid-epoch):
worker 1 SIGKILLed, worker 0 (the chief) preempted (SIGTERM, the whole gang
saves the same step), and worker 1's node lost. Every fault restarts the whole
gang, counted once by its cause, and the job ends at the reference's early-stop
epoch with bitwise the same final weights. One faulted job instead of three
keeps the suite's time: each attempt is two TensorFlow processes starting.

On a real cluster the claim needs ReadWriteMany: set ``REKINDLE_E2E_RWX_STORAGE_CLASS``
(the scenarios are skipped there without it); a lost node is the taint manager's
marks through the API (:meth:`tests.e2e.real.RealCluster.lose_node`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from rekindle_trainer import contract
from tests.e2e import manifests
from tests.e2e.backend import E2ECluster, PodRecorder, wait_until
from tests.e2e.test_scenarios import CLAIM_OF, RUN_TIMEOUT, Finished, finish, message_of

RWX_ENV = "REKINDLE_E2E_RWX_STORAGE_CLASS"
WORKERS = 2
#: The chief's files next to its checkpoints (tests/trainer/training/test_multi_worker.py).
CHIEF_FILES = {"finished.json", "model.keras", "position.bin"}


def gang_job(e2e: E2ECluster, name: str) -> dict[str, Any]:
    """The scenario manifest; on a real cluster on the ReadWriteMany class of RWX_ENV."""
    if e2e.kind == "emulated":
        return manifests.gang(name, e2e.trainer_image)
    storage_class = os.environ.get(RWX_ENV)
    if not storage_class:
        pytest.skip(f"set {RWX_ENV} to a storage class with ReadWriteMany to run gangs here")
    return manifests.gang(name, e2e.trainer_image, checkpoint={"storageClassName": storage_class})


def pods_of(attempt: int, name: str) -> list[str]:
    return [f"{name}-{attempt}-w{index}" for index in range(WORKERS)]


@pytest.fixture(scope="module")
def gang_reference(e2e: E2ECluster) -> Finished:
    """The two-worker job run once without any fault."""
    name = "gang"
    job = gang_job(e2e, name)
    started = time.monotonic()
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(job)
        return finish(e2e, name, recorder, started)


def test_a_gang_without_faults_stops_early_as_one_attempt(gang_reference: Finished) -> None:
    status = gang_reference.status
    row = gang_reference.row
    assert (row["PHASE"], row["REASON"], row["RESTARTS"]) == ("Succeeded", "EarlyStopped", "0")
    assert row["WORKERS"] == "0/2", "no worker runs once the job ended"
    assert gang_reference.pods == pods_of(1, "gang")
    assert status["attempt"] == 1
    assert status["lastAttemptEnd"]["worker"] == 0
    stop = status["earlyStopEpoch"]
    assert 3 <= stop < 12, "the faulted run needs room for three attempts before the stop"
    final = gang_reference.final
    assert (final["name"], final["epoch"], final["trigger"]) == (
        status["latestCheckpoint"],
        stop,
        "final",
    )
    assert gang_reference.volume["finished"]["outcome"] == "early_stopped"
    # Only the chief publishes: checkpoints and the chief's own files, nothing of worker 1's.
    for entry in gang_reference.volume["entries"]:
        assert entry.startswith(contract.CHECKPOINT_PREFIX) or entry in CHIEF_FILES, entry
    assert gang_reference.description.reasons() == [
        ("Normal", "AttemptStarted"),
        ("Normal", "EarlyStopped"),
    ]


def wait_own_checkpoint(e2e: E2ECluster, name: str, attempt: int) -> dict[str, Any]:
    """The first checkpoint attempt ``attempt`` published (a fault lands right after it)."""

    def published() -> dict[str, Any] | None:
        report = e2e.volume_report(CLAIM_OF.format(job=name), name)
        own = [c for c in report["checkpoints"] if c.get("attempt") == attempt]
        return own[0] if own else None

    return wait_until(published, RUN_TIMEOUT, f"a checkpoint of attempt {attempt} of {name}")


def test_b_a_gang_killed_preempted_and_lost_ends_as_the_uninterrupted_run(
    e2e: E2ECluster, gang_reference: Finished
) -> None:
    name = "gang-faults"
    faults: list[tuple[int, Callable[[str], None]]] = [
        (1, e2e.crash),  # worker 1 SIGKILLed
        (0, e2e.preempt),  # the chief preempted: SIGTERM, the gang saves one step
        (1, e2e.lose_node),  # worker 1's node lost
    ]
    started = time.monotonic()
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(gang_job(e2e, name))
        for attempt, (worker, inject) in enumerate(faults, start=1):
            for pod in pods_of(attempt, name):
                e2e.wait_pod_running(pod, timeout=RUN_TIMEOUT)
            wait_own_checkpoint(e2e, name, attempt)
            inject(pods_of(attempt, name)[worker])
        done = finish(e2e, name, recorder, started)
        max_live = recorder.max_live
    status = done.status
    assert done.pods == [pod for attempt in (1, 2, 3, 4) for pod in pods_of(attempt, name)]
    assert max_live <= WORKERS, "never two gangs of one job at once"
    assert e2e.termination(f"{name}-1-w1")["exitCode"] == 137
    preempted = e2e.termination(f"{name}-2-w0")
    assert preempted["exitCode"] == 143
    assert message_of(preempted.get("message"))["outcome"] == "preempted"
    assert status["restarts"] == {
        "total": 3,
        "failures": 1,
        "disruptions": 2,
        "byCause": {"Crashed": 1, "Preempted": 1, "NodeLost": 1},
    }
    assert status["attempt"] == 4
    assert (done.row["PHASE"], done.row["REASON"], done.row["RESTARTS"]) == (
        "Succeeded",
        "EarlyStopped",
        "3",
    )
    restarts = [m for _, r, m in done.description.events if r == "Restarting"]
    hit = [(1, "Crashed"), (2, "Preempted"), (3, "NodeLost")]
    assert len(restarts) == len(hit), restarts
    for message, (attempt, cause) in zip(restarts, hit, strict=True):
        worker = faults[attempt - 1][0]
        assert f"{cause}: worker {worker} (pod {name}-{attempt}-w{worker})" in message, message
    # The same end as the reference, bitwise.
    reference = gang_reference.status
    assert status["earlyStopEpoch"] == reference["earlyStopEpoch"]
    assert status["bestMetric"] == reference["bestMetric"]
    assert done.final["name"] == gang_reference.final["name"]
    assert done.final["model_sha256"] == gang_reference.final["model_sha256"]
    assert done.final["logs"] == gang_reference.final["logs"]
    assert done.volume["finished"]["outcome"] == "early_stopped"
