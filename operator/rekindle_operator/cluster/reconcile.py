"""One reconcile of one TrainingJob: read what the cluster holds, ask the engine, act.

Level-triggered: every pass starts from the job as the API returns it and the
pods of its current attempt, never from what an event said, so a pass after an
operator restart, a missed event or a replayed one does the same thing.
An attempt is a gang of ``spec.workers`` pods (one, usually): each is read as
a single trainer's pod is, and :func:`gang.judge` says how the attempt stands;
when it is over (a worker ended abnormally, or the chief succeeded) the
workers still running are stopped at once, and the engine is told the
attempt's end once every worker has ended, so a new gang never starts beside
the old one. The order of the writes makes every crash point safe:

1. the replacement pods are created *before* the status that counts the restart
   is written, so a crash in between replays the same decision, and the
   creates answer 409 (the pods are named ``<job>-<attempt>[-w<i>]``): no
   duplicate pod, no restart counted twice, none lost;
2. a worker whose pod is missing is only declared gone after a GET says 404
   (the watch may simply not have shown the new pod yet).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rekindle_operator.cluster import kubeapi
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.core import (
    engine,
    grace,
    job_spec,
    job_status,
    live_progress,
    observation,
)
from rekindle_operator.core.reasons import (
    Cause,
    EventReason,
    EventType,
    Phase,
    Reason,
    WorkerState,
)
from rekindle_operator.resources import (
    classify,
    events,
    gang,
    kueue,
    nodes,
    ownership,
    podgroups,
    pods,
    refusals,
    volumes,
    workers,
)
from rekindle_trainer.contract.documents import DocumentError

#: How long a pod that the API no longer has is waited for in the watch (its last state).
MISSING_GRACE_SECONDS = 2.0
#: While a pod's containers are being made on its node: seconds between looks at its
#: volume-attach Events (a Multi-Attach error is an Event; the pod itself does not change).
ATTACH_RECHECK_SECONDS = 10.0
#: Why the operator stopped a pod, written in its stop annotation (see :mod:`classify`).
STOP_REASONS = {engine.Action.STOP: "Suspended", engine.Action.FAIL: "JobFailed"}


async def reconcile(
    ctx: OperatorContext,
    *,
    namespace: str,
    name: str,
    indexed_pods: Iterable[Mapping[str, Any]],
    now: datetime,
    woken_at: float | None,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> float | None:
    """Bring job ``namespace/name`` one step closer to what its spec and its pods say.

    Returns the seconds until the job must be looked at again even if nothing
    happens (backoff, deadline, pending timeout, TTL); None: only when woken.

    Args:
        ctx: the operator's shared state.
        namespace: the job's namespace.
        name: the job's name.
        indexed_pods: the trainer pods of this job as the watch last showed them.
        now: the current time.
        woken_at: ``time.monotonic()`` of the event that asked for this pass.
        logger: kopf's logger for this job (structured: it names the object).
    """
    job = await ctx.api.get(kubeapi.TRAINING_JOBS, namespace, name)
    if job is None or job.get("metadata", {}).get("deletionTimestamp"):
        ctx.metrics.forget(namespace, name)
        return None
    try:
        spec = job_spec.parse_spec(job.get("spec"))
    except DocumentError as exc:
        await _fail_invalid_spec(ctx, job=job, error=exc, now=now, logger=logger)
        return None
    status = job_status.parse_status(job.get("status"))
    seen = await _observe(
        ctx, job=job, spec=spec, status=status, indexed_pods=indexed_pods, now=now
    )
    generation = job.get("metadata", {}).get("generation")
    observed = _with_live_progress(ctx, (namespace, name), spec, status, seen)
    decision = engine.decide(spec, seen.status(status), observed, now, generation=generation)
    if seen.missing:
        decision = dataclasses.replace(
            decision, requeue_after=_sooner(decision.requeue_after, MISSING_GRACE_SECONDS)
        )
    if any(p is not None and nodes.creating(p) for p in seen.pods):
        # An attach failure changes no pod, only Events: look again while containers are made.
        decision = dataclasses.replace(
            decision, requeue_after=_sooner(decision.requeue_after, ATTACH_RECHECK_SECONDS)
        )
    overdue = _overdue_in(seen, now)
    if overdue is not None:  # a pod being deleted: look again once its node should have ended it
        decision = dataclasses.replace(
            decision, requeue_after=_sooner(decision.requeue_after, overdue)
        )
    decision = await _act(
        ctx, job=job, spec=spec, before=status, decision=decision, seen=seen, now=now, logger=logger
    )
    stalled = ctx.live.stalled((namespace, name), status.attempt)
    if stalled is not None and decision.action is engine.Action.WAIT:
        decision = _mark_stopping(decision, await _stop_stalled(ctx, spec, seen, stalled, logger))
    if decision.action is engine.Action.RESTART and woken_at is not None:
        ctx.metrics.reaction_seconds.observe(time.monotonic() - woken_at)
    decision, warning = _with_grace(
        ctx, (namespace, name), spec, status.attempt, decision=decision, now=now
    )
    await _write_status(ctx, job, status, decision.status)
    if decision.event is not None:
        await _post_event(ctx, job, decision.event, now)
    if warning is not None:
        logger.warning("%s", warning.message)
        await _post_event(ctx, job, warning, now)
    _count(ctx, namespace, name, spec, decision)
    return decision.requeue_after


def _with_live_progress(
    ctx: OperatorContext,
    key: tuple[str, str],
    spec: job_spec.TrainingJobSpec,
    status: job_status.Status,
    seen: _Seen,
) -> observation.Observation:
    """What the engine is told, with the chief's newest ``/progress`` reading if it runs.

    Also starts or stops reading the chief: only a running attempt is read (:mod:`.live`).
    """
    observed = seen.observed
    chief = seen.pods[0] if seen.pods else None
    if not isinstance(observed, observation.AttemptRunning) or chief is None:
        ctx.live.forget(key)
        return observed
    policy = spec.restart_policy
    rule = live_progress.stall_rule(policy.stall_timeout_seconds, policy.first_step_timeout_seconds)
    ctx.live.follow(key, status.attempt, chief, time.monotonic(), rule)
    reading = ctx.live.progress(key, status.attempt)
    if reading is None:
        return observed
    return dataclasses.replace(observed, progress=reading)


def _with_grace(
    ctx: OperatorContext,
    key: tuple[str, str],
    spec: job_spec.TrainingJobSpec,
    attempt: int,
    *,
    decision: engine.Decision,
    now: datetime,
) -> tuple[engine.Decision, engine.Event | None]:
    """The decision with ``GraceTooShort`` judged on the attempt's saves, if they were read.

    Rides on the status write the reading causes anyway; the Warning event
    comes only when the condition turns True (see :mod:`rekindle_operator.core.grace`).
    """
    saves = ctx.live.saves(key, attempt)
    if saves is None:
        return decision, None
    verdict = grace.judge(spec.termination_grace_period_seconds, saves[1], saves[0])
    status, raised = grace.with_verdict(decision.status, verdict, now)
    decision = dataclasses.replace(decision, status=status)
    if not raised or verdict is None:
        return decision, None
    return decision, engine.Event(
        type=EventType.WARNING, reason=EventReason.GRACE_TOO_SHORT, message=verdict.message
    )


@dataclass(frozen=True)
class _Seen:
    """The current attempt as the cluster shows it: its workers' pods and the gang's verdict."""

    #: Each worker's pod, while the API still has it (None: gone, or not seen yet).
    pods: tuple[Mapping[str, Any] | None, ...] = ()
    verdict: gang.Verdict | None = None
    #: A worker's pod is missing and may yet show up in the watch: look again soon.
    missing: bool = False

    @property
    def observed(self) -> observation.Observation:
        """What the engine is told."""
        return self.verdict.observed if self.verdict is not None else None

    def status(self, status: job_status.Status) -> job_status.Status:
        """``status`` with the workers as seen (the engine keeps them as they are)."""
        if self.verdict is None:
            return status
        return status.but(workers=self.verdict.workers, workers_ready=self.verdict.ready)


async def _observe(
    ctx: OperatorContext,
    *,
    job: Mapping[str, Any],
    spec: job_spec.TrainingJobSpec,
    status: job_status.Status,
    indexed_pods: Iterable[Mapping[str, Any]],
    now: datetime,
) -> _Seen:
    """The pods of the current attempt's workers (those still there) and how the attempt stands."""
    if not status.attempt_live:
        return _Seen()
    meta = job["metadata"]
    count = _gang_size(meta["name"], spec, status)
    indexed = [p for p in indexed_pods if ownership.is_owned_by(p, job)]
    found: list[Mapping[str, Any] | None] = []
    readings: list[gang.Worker] = []
    missing = False
    for index in range(count):
        name = ownership.worker_pod_name(meta["name"], status.attempt, index, count)
        pod = await _find_pod(ctx, job, name, indexed)
        found.append(pod)
        reading = await _read_worker(
            ctx, job, spec=spec, status=status, pod=pod, name=name, index=index, now=now
        )
        missing = missing or reading is None
        readings.append(reading or gang.Worker(index=index, pod=name, observed=None))
    verdict = gang.judge(status.attempt, readings, status.workers)
    return _Seen(pods=tuple(found), verdict=verdict, missing=missing)


def _gang_size(job_name: str, spec: job_spec.TrainingJobSpec, status: job_status.Status) -> int:
    """The current attempt's number of workers: as recorded when it started, else the spec's.

    ``spec.workers`` edited while an attempt runs takes effect with the next attempt.
    """
    recorded = status.workers
    count = len(recorded)
    if count and all(
        w.pod == ownership.worker_pod_name(job_name, status.attempt, w.index, count)
        for w in recorded
    ):
        return count
    return spec.workers


async def _find_pod(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    name: str,
    indexed: list[Mapping[str, Any]],
) -> Mapping[str, Any] | None:
    """Pod ``name`` of ``job``: from the watch, else (it may lag behind our create) a GET."""
    pod = next((p for p in indexed if p.get("metadata", {}).get("name") == name), None)
    if pod is not None:
        return pod
    meta = job["metadata"]
    fetched = await ctx.api.get(kubeapi.PODS, meta["namespace"], name)
    return fetched if fetched is not None and ownership.is_owned_by(fetched, job) else None


async def _read_worker(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    *,
    spec: job_spec.TrainingJobSpec,
    status: job_status.Status,
    pod: Mapping[str, Any] | None,
    name: str,
    index: int,
    now: datetime,
) -> gang.Worker | None:
    """One worker as its pod shows it; None while its missing pod may still show up."""
    timeout = spec.restart_policy.pending_timeout_seconds
    if pod is not None:
        signs = await _node_signs(ctx, job, status, pod, index)
        return gang.read_pod(
            pod,
            index,
            now=now,
            pending_timeout_seconds=timeout,
            node_exists=signs.node_exists,
            node_down=signs.node_down,
            attach=signs.attach,
        )
    meta = job["metadata"]
    key = (meta["namespace"], meta["name"])
    last = ctx.wakeups.gone_pod(key, name)
    if last is None:
        # Gone without a DELETED event seen: either it vanished while no operator watched,
        # or the event is still on its way (and its last state says why the pod ended).
        if ctx.wakeups.first_missing(key, name) + MISSING_GRACE_SECONDS > time.monotonic():
            return None
        last = _vanished_pod(name, index, status)
    return gang.read_pod(last, index, now=now, pending_timeout_seconds=timeout, gone=True)


@dataclass(frozen=True)
class _NodeSigns:
    """What the pod's node and the attach events say (read only when they can matter)."""

    node_exists: bool | None = None
    node_down: str | None = None
    attach: nodes.AttachState | None = None


async def _node_signs(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    status: job_status.Status,
    pod: Mapping[str, Any],
    index: int,
) -> _NodeSigns:
    """Read the pod's Node when the pod is not ready, and its attach events while it waits.

    A pod that is ready needs neither read: its node reports it. Nodes are read
    only where the operator may (``ctx.read_nodes``: it watches every namespace).
    """
    node = (pod.get("spec") or {}).get("nodeName")
    if not node or not nodes.may_be_stranded(pod):
        return _NodeSigns()
    exists, down = None, None
    if ctx.read_nodes:
        found = await ctx.api.get(kubeapi.NODES, "", node)
        exists, down = found is not None, nodes.node_down(found, node)
    if down is not None or exists is False or not nodes.creating(pod):
        return _NodeSigns(node_exists=exists, node_down=down)
    meta = pod["metadata"]
    selector = f"involvedObject.kind=Pod,involvedObject.name={meta['name']}"
    found_events = await ctx.api.list(kubeapi.EVENTS, meta["namespace"], field_selector=selector)
    attach = nodes.attach_state(found_events, pod)
    if attach.blocked is not None and status.attempt > 1:
        holder = await _last_node(ctx, job, status, index)
        if holder is not None and holder != node:
            attach = nodes.attach_state(found_events, pod, holder=holder)
    return _NodeSigns(node_exists=exists, attach=attach)


async def _last_node(
    ctx: OperatorContext, job: Mapping[str, Any], status: job_status.Status, index: int
) -> str | None:
    """The node of the last attempt's pod of this worker, if that pod is still there."""
    meta = job["metadata"]
    count = max(len(status.workers), 1)
    name = ownership.worker_pod_name(meta["name"], status.attempt - 1, index, count)
    last = await ctx.api.get(kubeapi.PODS, meta["namespace"], name)
    node = ((last or {}).get("spec") or {}).get("nodeName")
    return str(node) if node else None


def _overdue_in(seen: _Seen, now: datetime) -> float | None:
    """Seconds until a pod being deleted, not yet ended, counts as abandoned by its node."""
    if seen.verdict is None:
        return None
    waits = [
        (when - now).total_seconds()
        for pod, worker in zip(seen.pods, seen.verdict.workers, strict=True)
        if pod is not None and not worker.ended
        for when in (classify.overdue_at(pod),)
        if when is not None
    ]
    return max(min(waits), 0.0) + 1.0 if waits else None


def _sooner(a: float | None, b: float) -> float:
    """The smaller of two delays, None meaning "never"."""
    return b if a is None else min(a, b)


def _vanished_pod(name: str, index: int, status: job_status.Status) -> dict[str, Any]:
    """The little known of a pod that vanished while no operator watched.

    If the operator had asked it to stop (suspension, or another worker ended
    the attempt), it says so, so that the end is not mistaken for a disruption.
    """
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {ownership.LABEL_ATTEMPT: str(status.attempt)},
    }
    stopping = any(
        w.pod == name and w.index == index and w.state is WorkerState.STOPPING
        for w in status.workers
    )
    if status.reason == Reason.STOPPING:
        metadata["annotations"] = {classify.STOP_ANNOTATION: "Suspended"}
    elif stopping:
        metadata["annotations"] = {classify.STOP_ANNOTATION: gang.STOP_REASON}
    return {"metadata": metadata, "status": {}}


async def _act(
    ctx: OperatorContext,
    *,
    job: Mapping[str, Any],
    spec: job_spec.TrainingJobSpec,
    before: job_status.Status,
    decision: engine.Decision,
    seen: _Seen,
    now: datetime,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> engine.Decision:
    """Carry out ``decision``; the decision to record (another one if the start failed)."""
    action = decision.action
    meta = job["metadata"]
    if decision.status.finished:
        # No attempt follows: let Kueue finish the pods' group and free its quota.
        for held in seen.pods:
            if held is not None:
                await _annotate(ctx, held, kueue.finishing_annotations(held))
    stopping = await _end_gang(ctx, spec, seen, logger)
    if action in (engine.Action.START, engine.Action.RESTART):
        decision = await _start(ctx, job, spec, before, decision, now=now, logger=logger)
    elif action in (engine.Action.STOP, engine.Action.FAIL):
        # Suspended, or failed while it ran (deadline): every worker still running saves and stops.
        why = STOP_REASONS[action]
        for pod, worker in _live_pods(seen):
            if await _stop_pod(ctx, pod, spec, why):
                logger.info("Stopping pod %s (%s)", pod["metadata"]["name"], why)
            stopping.add(worker.index)
    elif action is engine.Action.DELETE:
        logger.info("Deleting the job: ttlSecondsAfterFinished has passed")
        await ctx.api.delete(
            kubeapi.TRAINING_JOBS, meta["namespace"], meta["name"], propagation="Background"
        )
    if decision.status.phase in (Phase.SUCCEEDED, Phase.FAILED):
        ctx.wakeups.forget_gone((meta["namespace"], meta["name"]))
    return _mark_stopping(decision, stopping)


def _live_pods(
    seen: _Seen,
) -> list[tuple[Mapping[str, Any], job_status.WorkerStatus]]:
    """The pods of the attempt's workers that have not ended, with their worker status."""
    if seen.verdict is None:
        return []
    return [
        (pod, worker)
        for pod, worker in zip(seen.pods, seen.verdict.workers, strict=True)
        if pod is not None and not worker.ended
    ]


async def _end_gang(
    ctx: OperatorContext,
    spec: job_spec.TrainingJobSpec,
    seen: _Seen,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> set[int]:
    """An attempt that is over keeps nothing running; the workers it stopped.

    Workers still running are stopped at once (stop annotation, SIGTERM): their
    collectives would otherwise hang until a timeout. A worker that ended yet
    still holds its node (image pull or config error, pending timeout) is
    deleted: it would keep its GPUs reserved, so it goes before any replacement.
    """
    verdict = seen.verdict
    if verdict is None or not verdict.over:
        return set()
    stopped: set[int] = set()
    for pod, worker in _live_pods(seen):
        if gang.ended_by_the_cluster(pod):  # its end is the cluster's, and the cause
            stopped.add(worker.index)
            continue
        if await _stop_pod(ctx, pod, spec, gang.STOP_REASON):
            logger.info("Stopping pod %s: its attempt is over", pod["metadata"]["name"])
        stopped.add(worker.index)
    for held, worker in zip(seen.pods, verdict.workers, strict=True):
        if held is not None and worker.ended and _holds_node(held):
            await _delete_pod(ctx, held, spec)
            logger.info(
                "Deleted pod %s: attempt ended (%s)", held["metadata"]["name"], worker.cause
            )
    return stopped


async def _stop_stalled(
    ctx: OperatorContext,
    spec: job_spec.TrainingJobSpec,
    seen: _Seen,
    why: str,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> set[int]:
    """Stop every worker of a stalled attempt; their ends read as ``Stalled`` (a failure).

    The stop annotation says so before the delete, so the end is read the same
    after an operator restart. A frozen trainer ignores SIGTERM: the kubelet
    kills it when the grace period ends.
    """
    stopped: set[int] = set()
    for pod, worker in _live_pods(seen):
        if await _stop_pod(ctx, pod, spec, classify.STALLED_STOP):
            logger.warning("Stopping pod %s: stalled, %s", pod["metadata"]["name"], why)
        stopped.add(worker.index)
    return stopped


def _mark_stopping(decision: engine.Decision, stopping: set[int]) -> engine.Decision:
    """The decision with the workers just told to stop shown as Stopping."""
    if not stopping:
        return decision
    entries = tuple(
        dataclasses.replace(w, state=WorkerState.STOPPING)
        if w.index in stopping and not w.ended
        else w
        for w in decision.status.workers
    )
    running = sum(1 for w in entries if w.state is WorkerState.RUNNING)
    ready = f"{running}/{len(entries)}"
    return dataclasses.replace(
        decision, status=decision.status.but(workers=entries, workers_ready=ready)
    )


async def _start(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    spec: job_spec.TrainingJobSpec,
    before: job_status.Status,
    decision: engine.Decision,
    *,
    now: datetime,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> engine.Decision:
    """Create the attempt's claim, Service and pods; the decision to record.

    A create the API server refuses is read (:mod:`~rekindle_operator.resources.refusals`)
    and decided again from ``before``, the status this pass started from.
    """
    group = kueue.pod_group(job, spec, decision.status.start_time, size=spec.workers)
    try:
        problem, existed = await _start_attempt(ctx, job, spec, decision.attempt, group)
    except kubeapi.ApiError as exc:
        refused = refusals.read_refusal(exc.status, exc.message)
        logger.warning("Cannot create attempt %d (%s): %s", decision.attempt, refused.reason, exc)
        return engine.decide_create_refused(spec, before, decision, refused, now)
    if problem is not None:
        logger.error("Cannot start attempt %d: %s", decision.attempt, problem)
        end = observation.AttemptEnd(attempt=decision.attempt, cause=Cause.INVALID, message=problem)
        return engine.decide(spec, decision.status, end, now)
    starting = gang.starting(job["metadata"]["name"], decision.attempt, spec.workers)
    names = ", ".join(w.pod for w in starting)
    if existed:
        # Made by an operator that stopped before writing the status: it may have
        # run (and ended) since, so look at it again right after this pass.
        logger.info("Pods %s already exist", names)
        decision = dataclasses.replace(decision, requeue_after=0.0)
    else:
        logger.info("Created pod%s %s", "s" if len(starting) > 1 else "", names)
    status = decision.status.but(workers=starting, workers_ready=f"0/{len(starting)}")
    return dataclasses.replace(decision, status=status)


async def _start_attempt(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    spec: job_spec.TrainingJobSpec,
    attempt: int,
    group: kueue.PodGroup | None,
) -> tuple[str | None, bool]:
    """Ensure the claim (and a gang's Service), create the pods: (a problem, any existed).

    The problem is one that no retry fixes; the attempt then ends as invalid. A
    refusal of the API server (:class:`kubeapi.ApiError`) is the caller's to read
    (:mod:`~rekindle_operator.resources.refusals`). ``group``: the Kueue pod group the
    pods join (labels and annotation), if the job is queued.
    """
    meta = job["metadata"]
    namespace = meta["namespace"]
    config = job_spec.trainer_document(spec)
    try:
        built = [
            kueue.with_pod_group(pods.build_pod(job, spec, attempt, config, worker=index), group)
            for index in range(spec.workers)
        ]
    except (pods.PodSpecError, ValueError) as exc:
        return str(exc), False
    # The claim is made with the first attempt and outlives every attempt; a restart
    # need not ask for it again (its create would only answer 409).
    claim = volumes.build_claim(job, spec) if attempt == 1 else None
    problem = await _check_claim(ctx, namespace, spec)
    if problem is None and claim is not None:
        await ctx.api.create(kubeapi.PERSISTENT_VOLUME_CLAIMS, namespace, claim)
    if problem is None and spec.workers > 1:
        problem = await _point_service(ctx, job, attempt)
    if problem is None and spec.gang_scheduling is not None:
        problem = await _ensure_pod_group(ctx, job, spec, attempt)
    if problem is not None:
        return problem, False
    return await _create_pods(ctx, job, built)


async def _create_pods(
    ctx: OperatorContext, job: Mapping[str, Any], built: list[dict[str, Any]]
) -> tuple[str | None, bool]:
    """Create the attempt's pods: (a problem no retry fixes, whether any existed already).

    A gang is started whole or not at all: when a worker's pod cannot be made,
    those this call made are deleted again (the job then fails; nothing of it runs on).
    """
    namespace = job["metadata"]["namespace"]
    existed = False
    created: list[str] = []
    try:
        for pod in built:
            name = pod["metadata"]["name"]
            if await ctx.api.create(kubeapi.PODS, namespace, pod):
                created.append(name)
                continue
            existed = True
            existing = await ctx.api.get(kubeapi.PODS, namespace, name)
            if existing is not None and not ownership.is_owned_by(existing, job):
                await _delete_created(ctx, namespace, created)
                return (
                    f"pod {namespace}/{name} already exists and is not owned by this "
                    "TrainingJob; delete that pod or rename the job"
                ), True
    except kubeapi.ApiError as exc:
        if exc.status in (400, 422):
            await _delete_created(ctx, namespace, created)
        raise
    return None, existed


async def _delete_created(ctx: OperatorContext, namespace: str, names: list[str]) -> None:
    """Delete pods just created for an attempt that cannot start (nothing in them to save)."""
    for name in names:
        await ctx.api.delete(kubeapi.PODS, namespace, name, grace_period_seconds=0)


async def _check_claim(
    ctx: OperatorContext, namespace: str, spec: job_spec.TrainingJobSpec
) -> str | None:
    """Why the user's named claim cannot serve a gang (see :func:`volumes.claim_problem`)."""
    name = spec.checkpoint.volume_claim_name
    if spec.workers == 1 or name is None:
        return None
    claim = await ctx.api.get(kubeapi.PERSISTENT_VOLUME_CLAIMS, namespace, name)
    return volumes.claim_problem(spec, claim)


async def _point_service(ctx: OperatorContext, job: Mapping[str, Any], attempt: int) -> str | None:
    """Create the gang's headless Service, or move it to ``attempt``; a problem, if any."""
    meta = job["metadata"]
    namespace, name = meta["namespace"], ownership.service_name(meta["name"])
    service = workers.build_service(job, attempt)
    if await ctx.api.create(kubeapi.SERVICES, namespace, service):
        return None
    existing = await ctx.api.get(kubeapi.SERVICES, namespace, name)
    if existing is None:
        return None  # deleted in between: the next attempt's start makes it again
    if not ownership.is_owned_by(existing, job):
        return (
            f"service {namespace}/{name} already exists and is not owned by this TrainingJob "
            "(a gang's workers find each other under it); delete that service or rename the job"
        )
    patch = workers.selector_patch(existing, meta["name"], attempt)
    if patch is not None:
        await ctx.api.merge_patch(kubeapi.SERVICES, namespace, name, patch)
    return None


async def _ensure_pod_group(
    ctx: OperatorContext, job: Mapping[str, Any], spec: job_spec.TrainingJobSpec, attempt: int
) -> str | None:
    """Create the attempt's PodGroup (before its pods) and drop the last attempt's; a problem.

    409 is fine (a replayed start) if the group is the job's own. A PodGroup API the
    cluster does not serve is a problem no retry fixes; a missing permission is the
    caller's refusal to read.
    """
    problem = podgroups.conflict(job, spec)
    group = podgroups.build_pod_group(job, spec, attempt)
    if problem is not None or group is None or spec.gang_scheduling is None:
        return problem
    api = podgroups.api_of(spec.gang_scheduling)
    resource = kubeapi.Resource(api.group, api.version, api.plural)
    namespace, name = job["metadata"]["namespace"], group["metadata"]["name"]
    try:
        if not await ctx.api.create(resource, namespace, group):
            existing = await ctx.api.get(resource, namespace, name)
            if existing is not None and not ownership.is_owned_by(existing, job):
                return (
                    f"podgroup {namespace}/{name} ({api.group}) already exists and is not "
                    "owned by this TrainingJob; delete that PodGroup or rename the job"
                )
        if attempt > 1:
            last = podgroups.group_name(job["metadata"]["name"], attempt - 1)
            await ctx.api.delete(resource, namespace, last)
    except kubeapi.ApiError as exc:
        if exc.status != 404:
            raise
        return (
            f"spec.gangScheduling.scheduler: this cluster serves no {api.plural}.{api.group} "
            f"({api.api_version}); install {spec.gang_scheduling.scheduler.value} or remove "
            "spec.gangScheduling"
        )
    return None


def _holds_node(pod: Mapping[str, Any]) -> bool:
    """Whether a pod still runs or waits (not terminal, not already being deleted)."""
    phase = (pod.get("status") or {}).get("phase")
    deleting = pod.get("metadata", {}).get("deletionTimestamp")
    return phase not in ("Succeeded", "Failed") and not deleting


async def _delete_pod(
    ctx: OperatorContext, pod: Mapping[str, Any], spec: job_spec.TrainingJobSpec
) -> None:
    """Delete a pod gracefully (its trainer gets SIGTERM and the spec's grace period)."""
    meta = pod["metadata"]
    await ctx.api.delete(
        kubeapi.PODS,
        meta["namespace"],
        meta["name"],
        grace_period_seconds=spec.termination_grace_period_seconds,
    )


async def _stop_pod(
    ctx: OperatorContext, pod: Mapping[str, Any], spec: job_spec.TrainingJobSpec, why: str
) -> bool:
    """Mark the pod as stopped on purpose, then delete it gracefully (SIGTERM: it saves).

    Returns whether anything was done (False: it was already being stopped so).
    """
    meta = pod["metadata"]
    acted = await _annotate(
        ctx, pod, {classify.STOP_ANNOTATION: why, **kueue.finishing_annotations(pod)}
    )
    if not meta.get("deletionTimestamp"):
        await _delete_pod(ctx, pod, spec)
        acted = True
    return acted


async def _annotate(ctx: OperatorContext, pod: Mapping[str, Any], wanted: dict[str, str]) -> bool:
    """Merge ``wanted`` into the pod's annotations, unless it carries them already; if it did."""
    meta = pod["metadata"]
    annotations = meta.get("annotations") or {}
    if all(annotations.get(key) == value for key, value in wanted.items()):
        return False
    patch = {"metadata": {"annotations": wanted}}
    await ctx.api.merge_patch(kubeapi.PODS, meta["namespace"], meta["name"], patch)
    return True


async def _write_status(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    old: job_status.Status,
    new: job_status.Status,
) -> None:
    """Patch the status subresource, only if anything changed."""
    meta = job["metadata"]
    document = job_status.to_document(new)
    if document == job_status.to_document(old):
        return
    await ctx.api.merge_patch(
        kubeapi.TRAINING_JOBS,
        meta["namespace"],
        meta["name"],
        {"status": document},
        subresource="status",
    )


async def _post_event(
    ctx: OperatorContext, job: Mapping[str, Any], event: engine.Event, now: datetime
) -> None:
    """Post the decision's event; an event that cannot be posted is logged, never fatal."""
    body = events.build_event(
        job,
        type_=event.type.value,
        reason=event.reason.value,
        message=event.message,
        now=now,
        suffix=uuid.uuid4().hex[:16],
        instance=ctx.instance,
    )
    try:
        await ctx.api.create(kubeapi.EVENTS, job["metadata"]["namespace"], body)
    except kubeapi.ApiError as exc:
        logging.getLogger(__name__).warning("Could not post event %s: %s", event.reason, exc)


def _count(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    spec: job_spec.TrainingJobSpec,
    decision: engine.Decision,
) -> None:
    """Update the operator metrics after a decision was carried out and its status written."""
    metrics = ctx.metrics
    if decision.action is engine.Action.DELETE:
        metrics.forget(namespace, name)  # its TTL passed: the job is on its way out
    else:
        metrics.record_job(namespace, name, decision.status, epochs=spec.training.epochs)
    cause = decision.cause
    if decision.action in (engine.Action.RESTART, engine.Action.RESTART_AFTER) and cause:
        metrics.restarts.labels(namespace, cause.value).inc()
    elif decision.action is engine.Action.SUCCEED and cause is Cause.EARLY_STOPPED:
        metrics.early_stops.labels(namespace).inc()
    elif decision.action is engine.Action.FAIL:
        metrics.failures.labels(namespace, decision.status.reason).inc()


async def _fail_invalid_spec(
    ctx: OperatorContext,
    *,
    job: Mapping[str, Any],
    error: DocumentError,
    now: datetime,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> None:
    """Carry out the engine's answer to a spec that cannot be parsed (it names every bad field)."""
    try:
        old = job_status.parse_status(job.get("status"))
    except DocumentError:
        old = job_status.Status()
    generation = job.get("metadata", {}).get("generation")
    decision = engine.decide_invalid_spec(old, error.problems, now, generation=generation)
    if decision.event is not None:
        logger.error("%s", decision.event.message)
    await _write_status(ctx, job, old, decision.status)
    if decision.event is not None:
        await _post_event(ctx, job, decision.event, now)
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    ctx.metrics.record_job(namespace, name, decision.status, epochs=None)
    if decision.action is engine.Action.FAIL:
        ctx.metrics.failures.labels(namespace, decision.status.reason).inc()
