"""End to end with a queue: the real operator and trainer, Kueue's plain-Pod integration emulated.

The emulated cluster gates every pod that names a queue (Kueue's webhook);
the test admits a pod when a ClusterQueue with quota would, and preempts it
as Kueue does (``TerminationTarget``, then a graceful delete). A job queued
far longer than its pending timeout must wait without failing, and a
preempted job must save, wait in the queue again, and resume from its
checkpoint. Emulated only: a real cluster would need Kueue installed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rekindle_trainer.contract.timestamps import parse_time
from tests.e2e import manifests
from tests.e2e.emulated import EmulatedCluster
from tests.kube import kueue

#: Two attempts of a short digits run on a busy 2-core machine.
RUN_TIMEOUT = 300.0
NAME = "queued-digits"
CLAIM = f"{NAME}-checkpoints"
PENDING_TIMEOUT = 2
EPOCHS = 6


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedCluster]:
    emulated = EmulatedCluster(tmp_path_factory.mktemp("e2e-kueue")).start()
    try:
        with kueue.installed(emulated.cluster):
            yield emulated
    finally:
        emulated.stop()
        print(f"--- operator log (tail) ---\n{emulated.operator_log_text()[-30000:]}")


def wait_queued(e2e: EmulatedCluster, pod: str) -> None:
    """Wait until ``pod`` exists, gated by Kueue, and the job says it is queued."""
    e2e.wait_job(
        NAME,
        lambda job: (job.get("status") or {}).get("reason") == "Queued",
        timeout=RUN_TIMEOUT,
        what=f"reason Queued for {pod}",
    )
    assert kueue.is_gated(e2e.get("pods", pod))


@pytest.mark.slow
def test_a_queued_then_preempted_job_waits_saves_and_resumes_to_the_end(
    e2e: EmulatedCluster,
) -> None:
    e2e.apply(
        manifests.digits(
            NAME,
            e2e.trainer_image,
            queueName="team-a",
            training={"epochs": EPOCHS},
            earlyStopping=None,
            restartPolicy={"pendingTimeoutSeconds": PENDING_TIMEOUT, "maxRestarts": 0},
        )
    )
    wait_queued(e2e, f"{NAME}-1")
    time.sleep(3 * PENDING_TIMEOUT)  # queued well past the pending timeout: no failure
    status = e2e.job(NAME)["status"]
    assert (status["phase"], status["attempt"], status["restarts"]["total"]) == ("Pending", 1, 0)
    assert e2e.describe(NAME).condition("Queued") == ("True", "WaitingForAdmission")

    kueue.admit(e2e.cluster, e2e.namespace, f"{NAME}-1")
    e2e.wait_pod_running(f"{NAME}-1", timeout=RUN_TIMEOUT)
    e2e.wait_checkpoint(CLAIM, NAME, epoch=2, timeout=RUN_TIMEOUT)
    kueue.preempt(e2e.cluster, e2e.namespace, f"{NAME}-1")

    wait_queued(e2e, f"{NAME}-2")  # the replacement waits for the queue again
    kueue.admit(e2e.cluster, e2e.namespace, f"{NAME}-2")
    e2e.wait_phase(NAME, "Succeeded", timeout=RUN_TIMEOUT)

    described = e2e.describe(NAME)
    status = described.status
    assert (status["reason"], status["currentEpoch"]) == ("Completed", EPOCHS)
    assert status["restarts"] == {
        "total": 1,
        "failures": 0,
        "disruptions": 1,
        "byCause": {"Preempted": 1},
    }
    ended = e2e.termination(f"{NAME}-1")
    assert ended["exitCode"] == 143, "saved on SIGTERM"
    restarting = [m for _, reason, m in described.events if reason == "Restarting"]
    assert len(restarting) == 1
    assert (
        "because of Preempted: preempted by Kueue (WorkloadEvictedDueToPreempted)"
        in (restarting[0])
    )
    assert restarting[0].startswith("restarting from the newest valid checkpoint (last reported: ")
    assert "(last reported: epoch 0 " not in restarting[0]
    assert described.condition("Queued")[0] == "False"
    # Both waits in the queue are goodput's "queued", never a failure; the account is whole.
    goodput = status["goodput"]
    assert goodput["badputSeconds"]["queued"] >= 3 * PENDING_TIMEOUT
    wall = (parse_time(status["completionTime"]) - parse_time(goodput["since"])).total_seconds()
    assert goodput["productiveSeconds"] + sum(goodput["badputSeconds"].values()) == pytest.approx(
        wall, abs=1e-3
    )
    groups = {
        p["metadata"]["labels"][kueue.GROUP_LABEL]
        for p in (e2e.pod_history(f"{NAME}-1")[-1], e2e.pod_history(f"{NAME}-2")[-1])
    }
    assert len(groups) == 1, "the replacement joins the same Workload"
