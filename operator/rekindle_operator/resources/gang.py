"""An attempt of N workers judged as one: the first abnormal end ends it for all.

Both bodies read each worker as they read a single trainer (a pod with
:func:`classify.classify_pod`, a process with :func:`classify.classify_process`)
and give the N readings to :func:`judge`, which says how the *attempt* stands,
so that the engine still decides once per attempt. One worker is the case
N = 1: its reading passes through unchanged.

The rules, in order:

1. The chief (worker 0) ended with success (``completed`` or
   ``early_stopped``): the attempt succeeded, whatever the others did; those
   still running are stopped.
2. Any worker ended any other way: the attempt is over. The others are
   stopped at once (their collectives would otherwise hang until a timeout),
   and once every worker has ended the attempt ends with the *first* cause:
   the earliest end that is not a consequence of another (a worker stopped
   because the attempt was over, one that reports ``peer_lost``, or one that
   saved on SIGTERM though the cluster signalled only a peer), ties
   going to disruptions, then to the lower index.
3. Otherwise the attempt runs once every worker runs (or has exited 0).

A worker's end, once recorded in ``status.workers``, is kept for the rest of
the attempt (``recorded``): a pod deleted after it failed still counts as
having failed, not as deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rekindle_operator.core.job_status import WorkerStatus
from rekindle_operator.core.observation import (
    AttemptEnd,
    AttemptPending,
    AttemptRunning,
    Observation,
)
from rekindle_operator.core.reasons import (
    DISRUPTION_CAUSES,
    SUCCESS_CAUSES,
    Cause,
    WorkerState,
)
from rekindle_operator.resources import classify, nodes, ownership
from rekindle_operator.resources.pods import CONTAINER_NAME
from rekindle_trainer.contract import TerminationMessage, timestamps

#: The stop annotation's value on a worker stopped because another one ended its attempt.
STOP_REASON: Final = "AttemptEnded"


@dataclass(frozen=True, kw_only=True)
class Worker:
    """One worker of the attempt, as its body read it."""

    index: int
    #: Its pod (``rekindle run``: the name a pod would have).
    pod: str
    #: How it stands: ended, running, or nothing to act on yet (pending, shutting down).
    observed: Observation
    #: When it ended, when known.
    ended_at: datetime | None = None
    #: Its end follows another's: stopped because the attempt was over, or ``peer_lost``.
    consequence: bool = False
    #: Told to stop, not ended yet.
    stopping: bool = False

    @property
    def end(self) -> AttemptEnd | None:
        """Its end, if it ended."""
        return self.observed if isinstance(self.observed, AttemptEnd) else None


@dataclass(frozen=True)
class Verdict:
    """How the attempt stands, and what each of its workers does."""

    #: What the engine is told.
    observed: Observation
    #: The attempt is over: every worker that has not ended must be stopped.
    over: bool
    #: ``status.workers``.
    workers: tuple[WorkerStatus, ...]
    #: ``status.workersReady``: ``running/total``.
    ready: str

    def to_stop(self) -> tuple[int, ...]:
        """The workers to stop now: those not ended of an attempt that is over."""
        if not self.over:
            return ()
        return tuple(w.index for w in self.workers if not w.ended)


def judge(
    attempt: int, workers: Sequence[Worker], recorded: Sequence[WorkerStatus] = ()
) -> Verdict:
    """How attempt ``attempt`` stands, given each of its workers (see the module docstring).

    Args:
        attempt: the attempt number.
        workers: every worker of the attempt, in index order (worker 0 first).
        recorded: ``status.workers`` as stored; an entry for the same pod that
            records an end is kept over a later reading.
    """
    if not workers:
        raise ValueError("an attempt has at least one worker")
    merged = [_sticky(attempt, w, recorded) for w in workers]
    chief, count = merged[0], len(merged)
    abnormal = [w for w in merged if w.end is not None and w.end.cause not in SUCCESS_CAUSES]
    observed: Observation
    if chief.end is not None and chief.end.cause in SUCCESS_CAUSES:
        observed, over = _attempt_end(attempt, chief, chief, count), True
    elif abnormal:
        first = min(abnormal, key=_first_key)
        ended = all(w.end is not None for w in merged)
        observed, over = (_attempt_end(attempt, first, chief, count) if ended else None), True
    else:
        over = False
        observed = _running(attempt, merged)
    statuses = tuple(_status(w) for w in merged)
    running = sum(1 for w in merged if isinstance(w.observed, AttemptRunning))
    return Verdict(observed=observed, over=over, workers=statuses, ready=f"{running}/{count}")


def starting(job_name: str, attempt: int, count: int) -> tuple[WorkerStatus, ...]:
    """``status.workers`` of an attempt just created: every worker Pending."""
    return tuple(
        WorkerStatus(
            index=index,
            pod=ownership.worker_pod_name(job_name, attempt, index, count),
            state=WorkerState.PENDING,
        )
        for index in range(count)
    )


def read_pod(
    pod: Mapping[str, Any],
    index: int,
    *,
    now: datetime,
    pending_timeout_seconds: float,
    gone: bool = False,
    node_exists: bool | None = None,
    node_down: str | None = None,
    attach: nodes.AttachState | None = None,
) -> Worker:
    """Worker ``index`` as its pod shows it (the pod as the API returns it)."""
    observed = classify.classify_pod(
        pod,
        now=now,
        pending_timeout_seconds=pending_timeout_seconds,
        gone=gone,
        node_exists=node_exists,
        node_down=node_down,
        attach=attach,
    )
    meta = pod.get("metadata") or {}
    stopped_by = (meta.get("annotations") or {}).get(classify.STOP_ANNOTATION)
    terminated = _terminated(pod)
    ended = isinstance(observed, AttemptEnd)
    return Worker(
        index=index,
        pod=str(meta.get("name", "")),
        observed=observed,
        ended_at=_end_time(pod, terminated, now) if ended else None,
        consequence=stopped_by == STOP_REASON
        or peer_lost(terminated.get("message"))
        or _saved_for_a_peer(pod, observed, stopped_by=stopped_by, gone=gone),
        stopping=not ended and (stopped_by is not None or gone or "deletionTimestamp" in meta),
    )


def _saved_for_a_peer(
    pod: Mapping[str, Any], observed: Observation | None, *, stopped_by: str | None, gone: bool
) -> bool:
    """A worker that saved on SIGTERM though nobody signalled it: a consequence.

    The gang agrees on SIGTERM at every step, so when one worker is preempted
    every worker saves and exits 143; one the cluster did not signal (no
    deletion, no ``DisruptionTarget``, no stop by the operator) stopped for its
    peer, which is the cause even if it exits a little later.
    """
    if not isinstance(observed, AttemptEnd) or observed.cause is not Cause.PREEMPTED:
        return False
    meta = pod.get("metadata") or {}
    signalled = gone or "deletionTimestamp" in meta or classify.disrupted(pod)
    return stopped_by is None and not signalled


def ended_by_the_cluster(pod: Mapping[str, Any]) -> bool:
    """Whether the cluster is already ending the pod (a disruption, then a deletion).

    Such a worker is not stopped by the operator when its attempt ends: the stop
    annotation would make the preempted or lost worker a mere consequence (and
    ``Stopped``), and name the peer that saved for it as the cause.
    """
    return "deletionTimestamp" in (pod.get("metadata") or {}) and classify.disrupted(pod)


def peer_lost(termination_text: str | None) -> bool:
    """Whether a termination message says its worker failed because a peer was lost."""
    if not termination_text:
        return False
    try:
        return TerminationMessage.from_json(termination_text).peer_lost
    except ValueError:
        return False


def _sticky(attempt: int, worker: Worker, recorded: Sequence[WorkerStatus]) -> Worker:
    """``worker`` with the end recorded for its pod, if one was (it wins over a later reading)."""
    record = next((r for r in recorded if r.pod == worker.pod and r.index == worker.index), None)
    if record is None or record.cause is None:
        return worker
    end = AttemptEnd(
        attempt=attempt,
        cause=record.cause,
        exit_code=record.exit_code,
        message=record.message,
        progress=worker.end.progress if worker.end is not None else None,
    )
    consequence = worker.consequence or record.state is WorkerState.STOPPED
    return Worker(
        index=worker.index,
        pod=worker.pod,
        observed=end,
        ended_at=record.end_time,
        consequence=consequence,
    )


def _first_key(worker: Worker) -> tuple[bool, bool, float, bool, int]:
    """Sort key: causes before consequences, known times first and earliest, disruptions, index."""
    at = worker.ended_at
    assert worker.end is not None
    disruption = worker.end.cause in DISRUPTION_CAUSES
    return (
        worker.consequence,
        at is None,
        at.timestamp() if at else 0.0,
        not disruption,
        worker.index,
    )


def _attempt_end(attempt: int, first: Worker, chief: Worker, count: int) -> AttemptEnd:
    """The attempt's end: ``first``'s cause, the chief's progress (it alone reports training)."""
    assert first.end is not None
    end = first.end
    if count == 1:
        return end
    return AttemptEnd(
        attempt=attempt,
        cause=end.cause,
        exit_code=end.exit_code,
        message=f"worker {first.index} (pod {first.pod}): {end.message}".rstrip(": "),
        progress=chief.end.progress if chief.end is not None else None,
        worker=first.index,
    )


def _running(attempt: int, workers: Sequence[Worker]) -> Observation:
    """Running once the chief runs and every other worker runs or has exited 0.

    Until then the gang waits as its workers do (:func:`_waiting`).
    """
    chief = workers[0].observed
    if isinstance(chief, AttemptRunning) and all(
        isinstance(w.observed, AttemptRunning | AttemptEnd) for w in workers
    ):
        return AttemptRunning(attempt=attempt, progress=chief.progress)
    return _waiting(attempt, workers)


def _waiting(attempt: int, workers: Sequence[Worker]) -> AttemptPending | None:
    """How a gang waits: in the queue while any worker does (Kueue admits a group as one).

    With every worker on a node, the pending timeout counts from the first that got one,
    unless a worker is blocked (its volume held by another node): then none counts.
    """
    pending = [w.observed for w in workers if isinstance(w.observed, AttemptPending)]
    if not pending:
        return None
    queued = next((p for p in pending if p.queued is not None), None)
    if queued is not None:
        return AttemptPending(attempt=attempt, queued=queued.queued, message=queued.message)
    blocked = next((p for p in pending if p.blocked is not None), None)
    if blocked is not None:  # the gang cannot start before that worker: no timeout counts
        return AttemptPending(attempt=attempt, blocked=blocked.blocked, message=blocked.message)
    since = [p.since for p in pending if p.since is not None]
    return AttemptPending(attempt=attempt, since=min(since) if since else None)


def _status(worker: Worker) -> WorkerStatus:
    """``status.workers[]`` for one worker."""
    end = worker.end
    if end is None:
        if worker.stopping:
            state = WorkerState.STOPPING
        elif isinstance(worker.observed, AttemptRunning):
            state = WorkerState.RUNNING
        else:
            state = WorkerState.PENDING
        return WorkerStatus(index=worker.index, pod=worker.pod, state=state)
    if end.cause in SUCCESS_CAUSES:
        state = WorkerState.SUCCEEDED
    elif worker.consequence or end.cause is Cause.STOPPED:
        state = WorkerState.STOPPED
    else:
        state = WorkerState.FAILED
    return WorkerStatus(
        index=worker.index,
        pod=worker.pod,
        state=state,
        cause=end.cause,
        exit_code=end.exit_code,
        message=end.message,
        end_time=worker.ended_at,
    )


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The trainer container's terminated state (the first container's if none is named so)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    named = [c for c in statuses if c.get("name") == CONTAINER_NAME]
    for container in named or statuses[:1]:
        terminated: Mapping[str, Any] = (container.get("state") or {}).get("terminated") or {}
        return terminated
    return {}


def _end_time(pod: Mapping[str, Any], terminated: Mapping[str, Any], now: datetime) -> datetime:
    """When a pod's worker ended: its container's finish, its disruption, its deletion, or now."""
    candidates = [terminated.get("finishedAt")]
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            candidates.append(condition.get("lastTransitionTime"))
    candidates.append((pod.get("metadata") or {}).get("deletionTimestamp"))
    for text in candidates:
        if text:
            try:
                return timestamps.parse_time(str(text))
            except ValueError:
                continue
    return now
