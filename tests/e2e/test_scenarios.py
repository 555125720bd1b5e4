"""End to end: the real operator and the real trainer on the digits example, with faults.

Each scenario does what a user does, with the real kubectl: ``kubectl apply -f``
a TrainingJob (validated by the server), ``kubectl wait --for=condition=…``,
``kubectl delete pod`` after marking it preempted, ``kubectl patch tj`` to
suspend, and checks what a user checks: ``kubectl get tj -o wide`` (its
printed columns), ``kubectl describe tj`` (conditions and events),
``kubectl logs`` and the files on the checkpoint volume. The bodies only use
:class:`tests.e2e.backend.E2ECluster`, so the same kubectl commands run on
the emulated cluster here and on a real one with ``REKINDLE_E2E_KUBECONFIG``.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e import manifests
from tests.e2e.backend import Description, E2ECluster, PodRecorder

#: A digits run takes 20-40 s on a busy 2-core machine; a few attempts, several times that.
RUN_TIMEOUT = 300.0
CLAIM_OF = "{job}-checkpoints"


@dataclass(frozen=True)
class Finished:
    """What one finished job left: kubectl's views and the volume."""

    name: str
    row: dict[str, Any]
    description: Description
    volume: dict[str, Any]
    pods: list[str]
    seconds: float

    @property
    def status(self) -> dict[str, Any]:
        return self.description.status

    @property
    def final(self) -> dict[str, Any]:
        """The newest checkpoint on the volume."""
        good: list[dict[str, Any]] = [c for c in self.volume["checkpoints"] if "corrupt" not in c]
        assert good, f"no valid checkpoint on the volume: {self.volume}"
        return good[-1]


def finish(e2e: E2ECluster, name: str, recorder: PodRecorder, started: float) -> Finished:
    """``kubectl wait`` for Succeeded, then read everything a user would look at."""
    e2e.wait_condition(name, "Succeeded", timeout=RUN_TIMEOUT)
    return Finished(
        name=name,
        row=e2e.get_tj_row(name),
        description=e2e.describe(name),
        volume=e2e.volume_report(CLAIM_OF.format(job=name), name),
        pods=recorder.names(),
        seconds=time.monotonic() - started,
    )


def message_of(text: str | None) -> dict[str, Any]:
    """The trainer's termination message (a JSON object) as a dict."""
    assert text, "the pod has no termination message"
    doc: dict[str, Any] = json.loads(text)
    return doc


def restart_events(description: Description) -> list[tuple[str, str]]:
    return [(t, r) for t, r in description.reasons() if r == "Restarting"]


# ---------------------------------------------------------------------------
# a. No fault: the reference run.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(e2e: E2ECluster) -> Finished:
    """The digits example run once without any fault (scenario a, and b's reference)."""
    name = "digits"
    started = time.monotonic()
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(manifests.digits(name, e2e.trainer_image))
        return finish(e2e, name, recorder, started)


def test_a_no_fault_succeeds_early_stopped(reference: Finished) -> None:
    status = reference.status
    # kubectl get tj -o wide
    row = reference.row
    assert list(row) == [
        "NAME",
        "PHASE",
        "EPOCH",
        "STEP",
        "BEST",
        "BEST-EPOCH",
        "CHECKPOINT",
        "SAVED",
        "RESTARTS",
        "WORKERS",
        "FAILURES-LEFT",
        "REASON",
        "AGE",
    ]
    assert row["FAILURES-LEFT"] == str(status["restartBudget"]["failuresLeft"])
    assert (row["NAME"], row["PHASE"], row["REASON"], row["RESTARTS"]) == (
        "digits",
        "Succeeded",
        "EarlyStopped",
        "0",
    )
    assert row["EPOCH"] == str(status["earlyStopEpoch"])
    assert float(row["BEST"]) == status["bestMetric"]["value"]
    stop = status["earlyStopEpoch"]
    assert 8 < stop < 40, "early stopping must fire well inside the budget, after the faults of b"
    # kubectl describe tj
    assert reference.description.condition("Succeeded") == ("True", "EarlyStopped")
    assert reference.description.condition("Running")[0] == "False"
    assert reference.description.reasons() == [
        ("Normal", "AttemptStarted"),
        ("Normal", "EarlyStopped"),
    ]
    assert status["attempt"] == 1
    assert status["restarts"]["total"] == 0
    assert status["bestMetric"]["name"] == "val_loss"
    assert status["bestMetric"]["epoch"] <= stop
    assert status["completionTime"]
    assert reference.pods == ["digits-1"]
    # the volume: the final checkpoint is the one the status names, saved at the stop
    final = reference.final
    assert final["name"] == status["latestCheckpoint"]
    assert (final["epoch"], final["trigger"]) == (stop, "final")
    assert reference.volume["finished"]["outcome"] == "early_stopped"
    kept = [c for c in reference.volume["checkpoints"] if "corrupt" not in c]
    assert len(kept) <= 3 + 1, "keep: 3 newest plus the best"


def test_a_logs_tell_how_the_trainer_ended(e2e: E2ECluster, reference: Finished) -> None:
    # kubectl logs digits-1: the trainer's own account of its end
    printed = e2e.logs("digits-1")
    assert "termination message:" in printed
    assert '"outcome":"early_stopped"' in printed
    assert f'"epoch":{reference.status["earlyStopEpoch"]}' in printed


def test_explain_documents_the_resource(e2e: E2ECluster) -> None:
    # kubectl explain tj.spec.earlyStopping: the CRD's own documentation, from the server
    explained = e2e.explain("tj.spec.earlyStopping")
    assert "KIND:       TrainingJob" in explained
    assert "FIELD: earlyStopping <Object>" in explained
    for field in ("monitor", "mode", "patience", "minDelta", "restoreBestWeights"):
        assert f"  {field}\t<" in explained, field


# ---------------------------------------------------------------------------
# b. Two preemptions and a crash.
# ---------------------------------------------------------------------------


def test_b_preemptions_and_a_crash_end_as_the_uninterrupted_run(
    e2e: E2ECluster, reference: Finished
) -> None:
    name = "digits-faults"
    claim = CLAIM_OF.format(job=name)
    started = time.monotonic()
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(manifests.digits(name, e2e.trainer_image))
        faults = [(2, e2e.preempt), (5, e2e.preempt), (8, e2e.crash)]
        reached = 0  # the newest epoch on the volume when the last fault landed
        for attempt, (epoch, inject) in enumerate(faults, start=1):
            pod = f"{name}-{attempt}"
            e2e.wait_pod_running(pod, timeout=RUN_TIMEOUT)
            # A checkpoint this attempt wrote: under load the last one may have run
            # past ``epoch`` before its fault, and a fault before this attempt's first
            # step would end it by another path (nothing to save, no message).
            report = e2e.wait_checkpoint(
                claim, name, epoch=max(epoch, reached + 1), timeout=RUN_TIMEOUT
            )
            reached = max(c.get("epoch") or 0 for c in report["checkpoints"])
            inject(pod)
        done = finish(e2e, name, recorder, started)
        max_live = recorder.max_live
    status = done.status
    assert done.pods == [f"{name}-{n}" for n in (1, 2, 3, 4)]
    assert max_live == 1, "never two trainer pods of one job at once"
    # how each attempt ended, as the pods reported it
    for pod in (f"{name}-1", f"{name}-2"):
        ended = e2e.termination(pod)
        assert ended["exitCode"] == 143, pod
        assert message_of(ended.get("message"))["outcome"] == "preempted"
    assert e2e.termination(f"{name}-3")["exitCode"] == 137
    # kubectl get tj -o wide
    assert (done.row["PHASE"], done.row["REASON"], done.row["RESTARTS"]) == (
        "Succeeded",
        "EarlyStopped",
        "3",
    )
    assert (done.row["EPOCH"], done.row["BEST"]) == (reference.row["EPOCH"], reference.row["BEST"])
    assert status["restarts"] == {
        "total": 3,
        "failures": 1,
        "disruptions": 2,
        "byCause": {"Preempted": 2, "Crashed": 1},
    }
    assert status["attempt"] == 4
    assert status["earlyStopEpoch"] == reference.status["earlyStopEpoch"]
    assert status["bestMetric"] == reference.status["bestMetric"]
    # kubectl describe tj
    assert done.description.condition("Succeeded") == ("True", "EarlyStopped")
    assert restart_events(done.description) == [
        ("Normal", "Restarting"),
        ("Normal", "Restarting"),
        ("Warning", "Restarting"),
    ]
    # the volume: bitwise the same final weights as the run without faults
    assert done.final["name"] == reference.final["name"]
    assert done.final["model_sha256"] == reference.final["model_sha256"]
    assert done.final["logs"] == reference.final["logs"]
    assert done.volume["finished"]["outcome"] == "early_stopped"


# ---------------------------------------------------------------------------
# c. A crash loop.
# ---------------------------------------------------------------------------


def test_c_crash_loop_fails_after_max_restarts_with_backoff(e2e: E2ECluster) -> None:
    name = "crashloop"
    backoff = {"initialSeconds": 2, "maxSeconds": 3, "factor": 2.0}
    max_restarts = 2
    with PodRecorder(e2e, name, interval=0.05) as recorder:
        job = manifests.crash_loop(
            name, e2e.trainer_image, max_restarts=max_restarts, backoff=backoff
        )
        e2e.apply(job)
        e2e.wait_condition(name, "Failed", timeout=120)
        time.sleep(2)  # a (wrong) further attempt would show up by now
        pods = recorder.pods()
    description = e2e.describe(name)
    status = description.status
    assert [p.name for p in pods] == [f"{name}-{n}" for n in (1, 2, 3)]
    assert [e2e.termination(p.name)["exitCode"] for p in pods] == [1, 1, 1]
    # backoff: failure n waits min(initial * factor^(n-1), max) before attempt n+1
    delays = manifests.backoff_delays(max_restarts, backoff)
    for delay, (ended, following) in zip(delays, itertools.pairwise(pods), strict=True):
        assert ended.ended is not None
        gap = following.created - ended.ended
        # the recorder sees an end up to one poll late; the operator may add a little
        assert delay - 0.3 <= gap <= delay + 10, (following.name, gap, delay)
        assert following.created - ended.created >= delay
    row = e2e.get_tj_row(name)
    assert (row["PHASE"], row["REASON"], row["RESTARTS"]) == ("Failed", "MaxRestartsExceeded", "2")
    assert status["restarts"] == {
        "total": 2,
        "failures": 2,
        "disruptions": 0,
        "byCause": {"Crashed": 2},
    }
    assert status["lastAttemptEnd"]["exitCode"] == 1
    assert "CUDA error" in status["lastAttemptEnd"]["message"]
    assert description.condition("Failed") == ("True", "MaxRestartsExceeded")
    assert restart_events(description) == [("Warning", "Restarting")] * 2
    assert description.reasons()[-1] == ("Warning", "Failed")


# ---------------------------------------------------------------------------
# d. User code that cannot import.
# ---------------------------------------------------------------------------


def test_d_user_code_that_cannot_import_fails_at_once(e2e: E2ECluster) -> None:
    name = "noimport"
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(
            manifests.digits(name, e2e.trainer_image, entrypoint="rekindle_e2e_missing.model:build")
        )
        e2e.wait_condition(name, "Failed", timeout=120)
        time.sleep(2)  # a (wrong) restart would show up by now
        pods = recorder.pods()
    description = e2e.describe(name)
    status = description.status
    assert [p.name for p in pods] == [f"{name}-1"]
    ended = e2e.termination(f"{name}-1")
    assert ended["exitCode"] == 2
    assert message_of(ended.get("message"))["outcome"] == "invalid"
    row = e2e.get_tj_row(name)
    assert (row["PHASE"], row["REASON"], row["RESTARTS"]) == ("Failed", "InvalidConfig", "0")
    assert status["attempt"] == 1
    assert status["lastAttemptEnd"]["exitCode"] == 2
    assert "rekindle_e2e_missing" in status["lastAttemptEnd"]["message"]
    assert description.condition("Failed") == ("True", "InvalidConfig")
    assert description.reasons() == [("Normal", "AttemptStarted"), ("Warning", "Failed")]
    assert e2e.volume_report(CLAIM_OF.format(job=name), name)["checkpoints"] == []


# ---------------------------------------------------------------------------
# e. The operator killed mid-job, and a preemption nobody watched.
# ---------------------------------------------------------------------------


def test_e_operator_killed_mid_job_and_restarted(e2e: E2ECluster, reference: Finished) -> None:
    name = "digits-operator"
    claim = CLAIM_OF.format(job=name)
    started = time.monotonic()
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(manifests.digits(name, e2e.trainer_image))
        e2e.wait_pod_running(f"{name}-1", timeout=RUN_TIMEOUT)
        e2e.wait_checkpoint(claim, name, epoch=2, timeout=RUN_TIMEOUT)
        e2e.kill_operator()
        try:
            # While no operator runs, the attempt is preempted: the end must be counted once.
            e2e.preempt(f"{name}-1")
            e2e.wait_gone("pods", f"{name}-1", timeout=60)
        finally:
            e2e.start_operator()
        done = finish(e2e, name, recorder, started)
        max_live = recorder.max_live
    status = done.status
    assert done.pods == [f"{name}-1", f"{name}-2"], "no duplicate pod"
    assert max_live == 1
    # The preempted pod was gone before any operator saw it end: nothing is left that says
    # "preempted", so it counts as Deleted (a disruption, like a preemption), and only once.
    assert status["restarts"] == {
        "total": 1,
        "failures": 0,
        "disruptions": 1,
        "byCause": {"Deleted": 1},
    }
    assert status["attempt"] == 2
    assert (done.row["PHASE"], done.row["RESTARTS"]) == ("Succeeded", "1")
    assert status["earlyStopEpoch"] == reference.status["earlyStopEpoch"]
    assert done.final["model_sha256"] == reference.final["model_sha256"]
    reasons = done.description.reasons()
    assert reasons.count(("Normal", "AttemptStarted")) == 1
    assert reasons.count(("Normal", "Restarting")) == 1
    assert reasons[-1] == ("Normal", "EarlyStopped")


# ---------------------------------------------------------------------------
# f. Suspend, then resume.
# ---------------------------------------------------------------------------


def test_f_suspend_saves_and_resume_continues(e2e: E2ECluster, reference: Finished) -> None:
    name = "digits-suspend"
    claim = CLAIM_OF.format(job=name)
    started = time.monotonic()
    with PodRecorder(e2e, name) as recorder:
        e2e.apply(manifests.digits(name, e2e.trainer_image))
        e2e.wait_pod_running(f"{name}-1", timeout=RUN_TIMEOUT)
        e2e.wait_checkpoint(claim, name, epoch=3, timeout=RUN_TIMEOUT)
        e2e.patch_job(name, {"spec": {"suspend": True}})
        # Phase Suspended at once, reason Stopping until the trainer has saved and exited.
        suspended = e2e.wait_suspended(name, timeout=120)
        e2e.wait_gone("pods", f"{name}-1", timeout=60)
        on_suspend = e2e.describe(name)
        row = e2e.get_tj_row(name)
        volume = e2e.volume_report(claim, name)
        # the trainer saved on SIGTERM and said so
        first = e2e.termination(f"{name}-1")
        assert first["exitCode"] == 143
        message = message_of(first.get("message"))
        assert message["outcome"] == "preempted"
        saved = [c for c in volume["checkpoints"] if "corrupt" not in c][-1]
        assert saved["name"] == message["checkpoint"], "the newest checkpoint is the one it named"
        assert (saved["epoch"], saved["step"]) == (message["epoch"], message["step"])
        if saved["trigger"] != "sigterm":
            # SIGTERM right after an epoch's save: that checkpoint already holds this state.
            assert (saved["trigger"], saved["step_in_epoch"]) == ("epoch", 0), saved
        assert (row["PHASE"], row["RESTARTS"]) == ("Suspended", "0")
        assert suspended["status"]["reason"] == "Suspended"
        assert on_suspend.condition("Suspended") == ("True", "Suspended")
        assert ("Normal", "Suspended") in on_suspend.reasons()
        time.sleep(2)
        assert recorder.names() == [f"{name}-1"], "no attempt while suspended"

        e2e.patch_job(name, {"spec": {"suspend": False}})
        done = finish(e2e, name, recorder, started)
    status = done.status
    assert done.pods == [f"{name}-1", f"{name}-2"]
    assert status["attempt"] == 2
    assert status["restarts"]["total"] == 0, "a suspension is not a restart"
    epoch, step = saved["epoch"], saved["step"]
    resumed = [m for t, r, m in done.description.events if r == "Resumed"]
    assert resumed == [
        "resumed; starting attempt 2 from the newest valid checkpoint "
        f"(last reported: epoch {epoch} step {step})"
    ]
    # it continued from the saved checkpoint, and ended where the uninterrupted run did
    later = [c for c in done.volume["checkpoints"] if "corrupt" not in c and c["attempt"] == 2]
    assert later
    assert min(c["step"] for c in later) > step
    assert status["earlyStopEpoch"] == reference.status["earlyStopEpoch"]
    assert done.final["model_sha256"] == reference.final["model_sha256"]
    assert done.description.condition("Succeeded") == ("True", "EarlyStopped")


# ---------------------------------------------------------------------------
# g. The job deleted.
# ---------------------------------------------------------------------------


def test_g_deleted_job_takes_its_pods_but_not_the_users_claim(e2e: E2ECluster) -> None:
    name = "digits-deleted"
    claim = "my-checkpoints"
    e2e.apply(manifests.user_claim(claim))
    checkpoint = {"size": None, "volumeClaimName": claim}
    e2e.apply(manifests.digits(name, e2e.trainer_image, checkpoint=checkpoint))
    e2e.wait_pod_running(f"{name}-1", timeout=RUN_TIMEOUT)
    e2e.wait_checkpoint(claim, name, epoch=1, timeout=RUN_TIMEOUT)
    e2e.delete_job(name)
    e2e.wait_gone("trainingjobs", name, timeout=60)
    e2e.wait_gone("pods", f"{name}-1", timeout=90)
    assert e2e.pods(name) == []
    assert e2e.get("persistentvolumeclaims", claim) is not None, "the user's claim stays"
    assert e2e.get("persistentvolumeclaims", CLAIM_OF.format(job=name)) is None, "none created"
    kept = e2e.volume_report(claim, name)["checkpoints"]
    assert [c for c in kept if "corrupt" not in c], "the checkpoints on it stay"
