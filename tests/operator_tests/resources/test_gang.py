"""An attempt of N workers judged as one (``gang.judge``, ``gang.read_pod``): table tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from rekindle_operator.core.job_status import WorkerStatus
from rekindle_operator.core.observation import (
    AttemptEnd,
    AttemptPending,
    AttemptRunning,
    Observation,
    Progress,
)
from rekindle_operator.core.reasons import Cause, WorkerState
from rekindle_operator.resources import classify, gang
from rekindle_trainer.contract import Outcome
from tests.support import engine_cases
from tests.support.engine_cases import NOW, POD_CASES, T0, EngineCase, termination

A = 3  # the attempt every row judges
CHIEF_SAVED = Progress(epoch=5, step=280, checkpoint="ckpt-000005-0000000280")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def running(index: int) -> gang.Worker:
    return gang.Worker(index=index, pod=f"j-3-w{index}", observed=AttemptRunning(attempt=A))


def waiting(index: int, *, stopping: bool = False) -> gang.Worker:
    return gang.Worker(index=index, pod=f"j-3-w{index}", observed=None, stopping=stopping)


def ended(
    index: int,
    cause: Cause,
    when: float | None,
    *,
    consequence: bool = False,
    exit_code: int | None = None,
    progress: Progress | None = None,
    message: str = "",
) -> gang.Worker:
    end = AttemptEnd(
        attempt=A,
        cause=cause,
        exit_code=exit_code,
        message=message or cause.value,
        progress=progress,
    )
    return gang.Worker(
        index=index,
        pod=f"j-3-w{index}",
        observed=end,
        ended_at=None if when is None else at(when),
        consequence=consequence,
    )


@dataclass(frozen=True)
class Row:
    """Workers in; how the attempt stands out, in words (see :meth:`check`)."""

    name: str
    workers: tuple[gang.Worker, ...]
    #: Space-separated: ``running``, ``over``, ``end=<Cause>@<worker>``, ``stop=<i>,<j>``,
    #: ``ready=<r>/<n>``. Without ``running`` or ``end=``, the engine is told nothing.
    expect: str
    #: Each worker's ``status.workers[].state``, space-separated.
    states: str

    def check(self, verdict: gang.Verdict) -> None:
        words = dict(w.partition("=")[::2] for w in self.expect.split())
        assert verdict.over is ("over" in words)
        stop = words.get("stop", "")
        assert verdict.to_stop() == tuple(int(i) for i in stop.split(",") if i)
        assert " ".join(w.state.value for w in verdict.workers) == self.states
        assert [w.pod for w in verdict.workers] == [w.pod for w in self.workers]
        if "ready" in words:
            assert verdict.ready == words["ready"]
        if "running" in words:
            assert verdict.observed == AttemptRunning(attempt=A)
        elif "end" not in words:
            assert verdict.observed is None
        else:
            cause, worker = words["end"].split("@")
            assert isinstance(verdict.observed, AttemptEnd)
            assert (verdict.observed.attempt, verdict.observed.cause) == (A, Cause(cause))
            assert verdict.observed.worker == int(worker)


C = Cause
ROWS = (
    Row("all running: the attempt runs", (running(0), running(1)), "running ready=2/2",
        "Running Running"),
    Row("a worker still pending: the gang does not run yet", (running(0), waiting(1)),
        "ready=1/2", "Running Pending"),
    Row("a non-chief exited 0 before the chief: still running",
        (running(0), ended(1, C.COMPLETED, 10, exit_code=0)), "running ready=1/2",
        "Running Succeeded"),
    Row("the chief early-stopped: success, the rest is stopped",
        (ended(0, C.EARLY_STOPPED, 10, exit_code=0), running(1), waiting(2)),
        "over end=EarlyStopped@0 stop=1,2", "Succeeded Running Pending"),
    Row("the chief completed after a non-chief crashed: success wins",
        (ended(0, C.COMPLETED, 20, exit_code=0), ended(1, C.CRASHED, 10, exit_code=1)),
        "over end=Completed@0", "Succeeded Failed"),
    Row("a non-chief crashed: the attempt is over, the chief is stopped, no end yet",
        (running(0), ended(1, C.CRASHED, 10, exit_code=137)), "over stop=0 ready=1/2",
        "Running Failed"),
    Row("a stopped chief still shutting down: no end yet",
        (waiting(0, stopping=True), ended(1, C.CRASHED, 10, exit_code=137)),
        "over stop=0 ready=0/2", "Stopping Failed"),
    Row("all ended: the first cause, not the consequence",
        (ended(0, C.STOPPED, 12, consequence=True), ended(1, C.CRASHED, 10, exit_code=137)),
        "over end=Crashed@1", "Stopped Failed"),
    Row("a consequence reported earlier than its cause does not win (peer_lost)",
        (ended(0, C.CRASHED, 5, consequence=True), ended(1, C.PREEMPTED, 10, exit_code=143)),
        "over end=Preempted@1", "Stopped Failed"),
    Row("two causes: the earliest",
        (ended(0, C.CRASHED, 11), ended(1, C.NODE_LOST, 10),
         ended(2, C.STOPPED, 12, consequence=True)),
        "over end=NodeLost@1", "Failed Failed Stopped"),
    Row("the same second: a disruption before a crash",
        (ended(0, C.CRASHED, 10, exit_code=1), ended(1, C.PREEMPTED, 10, exit_code=143)),
        "over end=Preempted@1", "Failed Failed"),
    Row("the same second, the same kind: the lower index",
        (ended(0, C.STOPPED, 12, consequence=True), ended(1, C.OOM_KILLED, 10),
         ended(2, C.CRASHED, 10)),
        "over end=OOMKilled@1", "Stopped Failed Failed"),
    Row("an end of unknown time comes after those whose time is known",
        (ended(0, C.CRASHED, 30, exit_code=1), ended(1, C.DELETED, None)),
        "over end=Crashed@0", "Failed Failed"),
    Row("only consequences: the earliest of them",
        (ended(0, C.CRASHED, 20, consequence=True), ended(1, C.STOPPED, 10, consequence=True)),
        "over end=Stopped@1", "Stopped Stopped"),
    Row("suspension: every worker stopped",
        (ended(0, C.STOPPED, 10, exit_code=143), ended(1, C.STOPPED, 10, exit_code=143)),
        "over end=Stopped@0", "Stopped Stopped"),
    Row("an image that cannot be pulled ends the attempt before training",
        (running(0), ended(1, C.IMAGE_PULL_ERROR, 10)), "over stop=0 ready=1/2",
        "Running Failed"),
)  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_the_gang_rule(row: Row) -> None:
    row.check(gang.judge(A, row.workers))


def test_the_end_names_the_worker_and_its_pod_and_keeps_its_exit_code() -> None:
    verdict = gang.judge(
        A,
        (
            ended(0, Cause.STOPPED, 12, consequence=True, exit_code=143),
            ended(1, Cause.CRASHED, 10, exit_code=137, message="exit code 137 (SIGKILL)"),
        ),
    )
    assert verdict.observed == AttemptEnd(
        attempt=A,
        cause=Cause.CRASHED,
        exit_code=137,
        message="worker 1 (pod j-3-w1): exit code 137 (SIGKILL)",
        worker=1,
    )


def test_the_attempts_progress_is_the_chiefs_whoever_ended_it() -> None:
    verdict = gang.judge(
        A,
        (
            ended(0, Cause.STOPPED, 12, consequence=True, progress=CHIEF_SAVED),
            ended(1, Cause.CRASHED, 10, progress=Progress(epoch=1, step=2)),
        ),
    )
    assert isinstance(verdict.observed, AttemptEnd)
    assert verdict.observed.progress == CHIEF_SAVED


def test_running_progress_is_the_chiefs() -> None:
    chief = gang.Worker(
        index=0, pod="j-3-w0", observed=AttemptRunning(attempt=A, progress=CHIEF_SAVED)
    )
    assert gang.judge(A, (chief, running(1))).observed == AttemptRunning(
        attempt=A, progress=CHIEF_SAVED
    )


def test_a_gang_waits_in_the_queue_while_any_worker_does() -> None:
    queued = AttemptPending(attempt=A, queued="WaitingForAdmission", message="Kueue: team-a")
    on_node = AttemptPending(attempt=A, since=T0)
    workers = (
        gang.Worker(index=0, pod="j-3-w0", observed=AttemptRunning(attempt=A)),
        gang.Worker(index=1, pod="j-3-w1", observed=queued),
    )
    assert gang.judge(A, workers).observed == queued
    later = AttemptPending(attempt=A, since=T0 + timedelta(seconds=30))
    both_placed = (
        gang.Worker(index=0, pod="j-3-w0", observed=later),
        gang.Worker(index=1, pod="j-3-w1", observed=on_node),
    )
    assert gang.judge(A, both_placed).observed == on_node  # counted from the first node


def test_worker_status_records_how_each_ended() -> None:
    verdict = gang.judge(
        A, (running(0), ended(1, Cause.CRASHED, 10, exit_code=137, message="exit code 137"))
    )
    assert verdict.workers[1] == WorkerStatus(
        index=1,
        pod="j-3-w1",
        state=WorkerState.FAILED,
        cause=Cause.CRASHED,
        exit_code=137,
        message="exit code 137",
        end_time=at(10),
    )
    assert verdict.workers[0] == WorkerStatus(index=0, pod="j-3-w0", state=WorkerState.RUNNING)


def test_a_recorded_end_is_kept_when_the_pod_later_reads_otherwise() -> None:
    """A worker whose image could not be pulled is deleted: it stays an image pull error."""
    first = gang.judge(A, (running(0), ended(1, Cause.IMAGE_PULL_ERROR, 10)))
    later = (
        ended(0, Cause.STOPPED, 12, consequence=True),
        ended(1, Cause.DELETED, 14),  # its deletion, read after the end was recorded
    )
    verdict = gang.judge(A, later, first.workers)
    assert isinstance(verdict.observed, AttemptEnd)
    assert (verdict.observed.cause, verdict.observed.worker) == (Cause.IMAGE_PULL_ERROR, 1)
    assert verdict.workers[1].end_time == at(10)


def test_a_recorded_stop_stays_a_consequence() -> None:
    first = gang.judge(A, (ended(0, Cause.STOPPED, 5, consequence=True), waiting(1)))
    later = (ended(0, Cause.DELETED, 5), ended(1, Cause.CRASHED, 9))
    verdict = gang.judge(A, later, first.workers)
    assert isinstance(verdict.observed, AttemptEnd)
    assert verdict.observed.cause is Cause.CRASHED


def test_records_of_another_attempts_pods_are_ignored() -> None:
    old = (WorkerStatus(index=1, pod="j-2-w1", state=WorkerState.FAILED, cause=Cause.CRASHED),)
    assert gang.judge(A, (running(0), running(1)), old).observed == AttemptRunning(attempt=A)


def test_an_attempt_has_workers() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        gang.judge(A, ())


# ---------------------------------------------------------------------------
# One worker: exactly what classify_pod says, for every pod row of the engine table.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", POD_CASES, ids=[c.name for c in POD_CASES])
def test_one_worker_is_judged_as_its_pod_is_classified(case: EngineCase) -> None:
    assert case.ending is not None
    assert case.ending.pod is not None
    form = case.ending.pod
    timeout = case.spec.restart_policy.pending_timeout_seconds
    reading = gang.read_pod(
        form.pod,
        0,
        now=case.now,
        pending_timeout_seconds=timeout,
        gone=form.gone,
        node_exists=form.node_exists,
    )
    expected: Observation = classify.classify_pod(
        form.pod,
        now=case.now,
        pending_timeout_seconds=timeout,
        gone=form.gone,
        node_exists=form.node_exists,
    )
    assert gang.judge(reading.observed.attempt if reading.observed else 1, [reading]).observed == (
        expected
    )


# ---------------------------------------------------------------------------
# Reading a worker's pod.
# ---------------------------------------------------------------------------


def worker_pod(index: int, **kwargs: Any) -> dict[str, Any]:
    pod = engine_cases.pod(A, **kwargs)
    pod["metadata"]["name"] = f"digits-3-w{index}"
    pod["metadata"]["labels"]["rekindle.dev/worker"] = str(index)
    return pod


def read(pod: dict[str, Any], **kwargs: Any) -> gang.Worker:
    return gang.read_pod(pod, 1, now=NOW, pending_timeout_seconds=600, **kwargs)


def test_a_worker_stopped_because_the_attempt_ended_is_a_consequence() -> None:
    annotations = {classify.STOP_ANNOTATION: gang.STOP_REASON}
    reading = read(worker_pod(1, phase="Failed", exit_code=143, annotations=annotations))
    assert reading.consequence
    assert isinstance(reading.observed, AttemptEnd)
    assert reading.observed.cause is Cause.STOPPED
    suspended = read(
        worker_pod(1, phase="Failed", exit_code=143, annotations={classify.STOP_ANNOTATION: "x"})
    )
    assert not suspended.consequence


def test_a_worker_that_lost_a_peer_is_a_consequence() -> None:
    text = termination(Outcome.FAILED, peer_lost=True, error="collective timed out")
    reading = read(worker_pod(1, phase="Failed", exit_code=1, message=text))
    assert reading.consequence
    assert isinstance(reading.observed, AttemptEnd)
    assert reading.observed.cause is Cause.CRASHED
    plain = read(worker_pod(1, phase="Failed", exit_code=1, message=termination(Outcome.FAILED)))
    assert not plain.consequence


def test_a_worker_that_saved_for_a_preempted_peer_is_a_consequence() -> None:
    """The gang agreed on the peer's SIGTERM: the preempted peer is named, whoever ends first."""
    saved = termination(Outcome.PREEMPTED, checkpoint="ckpt-000001-0000000030")
    for_peer = read(worker_pod(1, phase="Failed", exit_code=143, message=saved))
    assert isinstance(for_peer.observed, AttemptEnd)
    assert for_peer.observed.cause is Cause.PREEMPTED
    assert for_peer.consequence
    condition = engine_cases.disruption("PreemptionByScheduler", "preempting")
    for signalled in (
        read(worker_pod(1, phase="Failed", exit_code=143, message=saved, deleting=True)),
        read(worker_pod(1, phase="Failed", exit_code=143, message=saved, conditions=(condition,))),
        read(worker_pod(1, phase="Failed", exit_code=143, message=saved), gone=True),
    ):
        assert not signalled.consequence
    chief = gang.read_pod(
        worker_pod(0, phase="Failed", exit_code=143, message=saved, deleting=True),
        0,
        now=NOW,
        pending_timeout_seconds=600,
    )
    early = gang.Worker(
        index=1,
        pod=for_peer.pod,
        observed=for_peer.observed,
        ended_at=at(1),
        consequence=True,
    )
    late = gang.Worker(
        index=0, pod=chief.pod, observed=chief.observed, ended_at=at(2), consequence=False
    )
    judged = gang.judge(A, (late, early))
    assert isinstance(judged.observed, AttemptEnd)
    assert judged.observed.message.startswith("worker 0 (pod digits-3-w0)")


def test_a_pod_the_cluster_is_deleting_after_a_disruption_is_ended_by_the_cluster() -> None:
    condition = engine_cases.disruption("PreemptionByScheduler", "preempting")
    assert gang.ended_by_the_cluster(
        worker_pod(0, running=True, deleting=True, conditions=(condition,))
    )
    assert not gang.ended_by_the_cluster(worker_pod(0, running=True, deleting=True))
    assert not gang.ended_by_the_cluster(worker_pod(0, running=True, conditions=(condition,)))


def test_a_workers_end_time_is_its_containers_finish_time() -> None:
    pod = worker_pod(1, phase="Failed", exit_code=137)
    finished = pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    reading = read(pod)
    assert reading.ended_at is not None
    assert engine_cases.ts(reading.ended_at) == finished
    assert (reading.index, reading.pod) == (1, "digits-3-w1")


def test_a_lost_workers_end_time_is_its_disruption_and_else_when_it_was_seen() -> None:
    condition = engine_cases.disruption("DeletionByTaintManager", "node unreachable")
    reading = read(worker_pod(1, running=True, conditions=(condition,)), gone=True)
    assert reading.ended_at is not None
    assert engine_cases.ts(reading.ended_at) == condition["lastTransitionTime"]
    vanished = read(worker_pod(1, running=True), gone=True)
    assert vanished.ended_at == NOW


def test_a_worker_being_deleted_is_stopping_not_ended() -> None:
    pod = worker_pod(1, running=True, deleting=True)
    pod["metadata"]["deletionTimestamp"] = engine_cases.ts(NOW + timedelta(seconds=20))
    reading = read(pod)
    assert reading.observed is None
    assert reading.stopping
    assert gang.judge(A, (running(0), reading)).workers[1].state is WorkerState.STOPPING


def test_reading_a_pod_leaves_it_as_it_was() -> None:
    pod = worker_pod(1, phase="Failed", exit_code=143)
    before = copy.deepcopy(pod)
    read(pod)
    assert pod == before


def test_a_blocked_worker_keeps_the_gangs_pending_timeout_from_counting() -> None:
    """One worker waits for a volume a dead node holds: no worker's wait is a timeout."""
    since = NOW - timedelta(hours=2)
    blocked = AttemptPending(attempt=A, blocked="MultiAttachError", message="held by node n1")
    workers = (
        gang.Worker(index=0, pod="digits-3-w0", observed=AttemptPending(attempt=A, since=since)),
        gang.Worker(index=1, pod="digits-3-w1", observed=blocked),
    )
    assert gang.judge(A, workers).observed == blocked
