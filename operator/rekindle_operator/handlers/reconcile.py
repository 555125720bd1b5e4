"""One reconcile of one TrainingJob: read what the cluster holds, ask the engine, act.

Level-triggered: every pass starts from the job as the API returns it and the
pod of its current attempt, never from what an event said, so a pass after an
operator restart, a missed event or a replayed one does the same thing.
The order of the writes makes every crash point safe:

1. the replacement pod is created *before* the status that counts the restart
   is written, so a crash in between replays the same decision, and the
   create answers 409 (the pod is named ``<job>-<attempt>``): no duplicate pod,
   no restart counted twice, none lost;
2. an attempt whose pod is missing is only declared gone after a GET says 404
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

from rekindle_operator import (
    classify,
    conditions,
    engine,
    events,
    kubeapi,
    ownership,
    pods,
    trainer_config,
    volumes,
)
from rekindle_operator import spec as specs
from rekindle_operator import status as statuses
from rekindle_operator.handlers.context import OperatorContext
from rekindle_operator.parsing import DocumentError
from rekindle_operator.reasons import Cause, EventReason, EventType, Phase, Reason

#: How long a pod that the API no longer has is waited for in the watch (its last state).
MISSING_GRACE_SECONDS = 2.0
#: Why the operator stopped a pod, written in its stop annotation (see :mod:`classify`).
STOP_REASONS = {engine.Action.STOP: "Suspended", engine.Action.FAIL: "JobFailed"}


@dataclass(frozen=True)
class Outcome:
    """What one pass did (for logs and tests)."""

    action: engine.Action | None
    #: Seconds until the job must be looked at again even if nothing happens; None: never.
    requeue_after: float | None


async def reconcile(
    ctx: OperatorContext,
    *,
    namespace: str,
    name: str,
    indexed_pods: Iterable[Mapping[str, Any]],
    now: datetime,
    woken_at: float | None,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> Outcome:
    """Bring job ``namespace/name`` one step closer to what its spec and its pods say.

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
        return Outcome(None, None)
    try:
        spec = specs.parse_spec(job.get("spec"))
    except DocumentError as exc:
        await _fail_invalid_spec(ctx, job=job, error=exc, now=now, logger=logger)
        return Outcome(engine.Action.FAIL, None)
    status = statuses.parse_status(job.get("status"))
    pod, observed = await _observe(
        ctx, job=job, spec=spec, status=status, indexed_pods=indexed_pods, now=now
    )
    generation = job.get("metadata", {}).get("generation")
    decision = engine.decide(spec, status, observed, now, generation=generation)
    if pod is None and observed is None and status.attempt_live:
        decision = dataclasses.replace(
            decision, requeue_after=_sooner(decision.requeue_after, MISSING_GRACE_SECONDS)
        )
    decision = await _act(
        ctx,
        job=job,
        spec=spec,
        decision=decision,
        pod=pod,
        observed=observed,
        now=now,
        woken_at=woken_at,
        logger=logger,
    )
    await _write_status(ctx, job, status, decision.status)
    if decision.event is not None:
        await _post_event(ctx, job, decision.event, now)
    _count(ctx, namespace, name, spec, decision)
    return Outcome(decision.action, decision.requeue_after)


async def _observe(
    ctx: OperatorContext,
    *,
    job: Mapping[str, Any],
    spec: specs.TrainingJobSpec,
    status: statuses.Status,
    indexed_pods: Iterable[Mapping[str, Any]],
    now: datetime,
) -> tuple[Mapping[str, Any] | None, classify.Observation]:
    """The pod of the current attempt (if it still exists) and how that attempt stands."""
    if not status.attempt_live:
        return None, None
    meta = job["metadata"]
    key = (meta["namespace"], meta["name"])
    wanted = ownership.pod_name(meta["name"], status.attempt)
    pod = next(
        (
            p
            for p in indexed_pods
            if p.get("metadata", {}).get("name") == wanted and ownership.is_owned_by(p, job)
        ),
        None,
    )
    if pod is None:
        # The watch may lag behind our own create: only a 404 proves the pod is gone.
        fetched = await ctx.api.get(kubeapi.PODS, meta["namespace"], wanted)
        if fetched is not None and ownership.is_owned_by(fetched, job):
            pod = fetched
    timeout = spec.restart_policy.pending_timeout_seconds
    if pod is not None:
        return pod, classify.classify_pod(pod, now=now, pending_timeout_seconds=timeout)
    last = ctx.wakeups.gone_pod(key, wanted)
    if last is None:
        # Gone without a DELETED event seen: either it vanished while no operator watched,
        # or the event is still on its way (and its last state says why the pod ended).
        if ctx.wakeups.first_missing(key, wanted) + MISSING_GRACE_SECONDS > time.monotonic():
            return None, None
        last = _vanished_pod(wanted, status)
    return None, classify.classify_pod(last, now=now, pending_timeout_seconds=timeout, gone=True)


def _sooner(a: float | None, b: float) -> float:
    """The smaller of two delays, None meaning "never"."""
    return b if a is None else min(a, b)


def _vanished_pod(name: str, status: statuses.Status) -> dict[str, Any]:
    """The little known of a pod that vanished while no operator watched.

    If the operator had asked it to stop (suspension), it says so, so that the
    end is not mistaken for a disruption.
    """
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {ownership.LABEL_ATTEMPT: str(status.attempt)},
    }
    if status.reason == Reason.STOPPING:
        metadata["annotations"] = {classify.STOP_ANNOTATION: "Suspended"}
    return {"metadata": metadata, "status": {}}


async def _act(
    ctx: OperatorContext,
    *,
    job: Mapping[str, Any],
    spec: specs.TrainingJobSpec,
    decision: engine.Decision,
    pod: Mapping[str, Any] | None,
    observed: classify.Observation,
    now: datetime,
    woken_at: float | None,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> engine.Decision:
    """Carry out ``decision``; the decision to record (another one if the start failed)."""
    action = decision.action
    meta = job["metadata"]
    if isinstance(observed, classify.AttemptEnd) and pod is not None and _holds_node(pod):
        # Over, yet still on its node (image pull or config error, pending timeout): the
        # pod would keep its GPUs reserved, so it goes before any replacement comes.
        await _delete_pod(ctx, pod, spec)
        logger.info("Deleted pod %s: attempt ended (%s)", pod["metadata"]["name"], observed.cause)
    if action in (engine.Action.START, engine.Action.RESTART):
        problem, existed = await _start_attempt(ctx, job, spec, decision.attempt)
        if problem is not None:
            logger.error("Cannot start attempt %d: %s", decision.attempt, problem)
            end = classify.AttemptEnd(
                attempt=decision.attempt, cause=Cause.INVALID, message=problem
            )
            return engine.decide(spec, decision.status, end, now)
        name = ownership.pod_name(meta["name"], decision.attempt)
        if existed:
            # Made by an operator that stopped before writing the status: it may have
            # run (and ended) since, so look at it again right after this pass.
            logger.info("Pod %s already exists", name)
            decision = dataclasses.replace(decision, requeue_after=0.0)
        else:
            logger.info("Created pod %s", name)
        if action is engine.Action.RESTART and woken_at is not None:
            ctx.metrics.reaction_seconds.observe(time.monotonic() - woken_at)
    elif action is engine.Action.STOP or (
        action is engine.Action.FAIL
        and pod is not None
        and not isinstance(observed, classify.AttemptEnd)
    ):
        if pod is not None:
            await _stop_pod(ctx, pod, spec, STOP_REASONS[action])
            logger.info("Stopping pod %s (%s)", pod["metadata"]["name"], STOP_REASONS[action])
    elif action is engine.Action.DELETE:
        logger.info("Deleting the job: ttlSecondsAfterFinished has passed")
        await ctx.api.delete(
            kubeapi.TRAINING_JOBS, meta["namespace"], meta["name"], propagation="Background"
        )
    if decision.status.phase in (Phase.SUCCEEDED, Phase.FAILED):
        ctx.wakeups.forget_gone((meta["namespace"], meta["name"]))
    return decision


async def _start_attempt(
    ctx: OperatorContext, job: Mapping[str, Any], spec: specs.TrainingJobSpec, attempt: int
) -> tuple[str | None, bool]:
    """Ensure the claim and create the attempt's pod: (a problem no retry fixes, pod existed)."""
    meta = job["metadata"]
    namespace = meta["namespace"]
    try:
        pod = pods.build_pod(job, spec, attempt, trainer_config.project(spec))
    except (pods.PodSpecError, ValueError) as exc:
        return str(exc), False
    # The claim is made with the first attempt and outlives every attempt; a restart
    # need not ask for it again (its create would only answer 409).
    claim = volumes.build_claim(job, spec) if attempt == 1 else None
    try:
        if claim is not None:
            await ctx.api.create(kubeapi.PERSISTENT_VOLUME_CLAIMS, namespace, claim)
        created = await ctx.api.create(kubeapi.PODS, namespace, pod)
    except kubeapi.ApiError as exc:
        if exc.status in (400, 422):  # the API server rejects the object itself: no retry helps
            return f"the API server rejected the pod or claim: {exc}", False
        raise
    if not created:
        existing = await ctx.api.get(kubeapi.PODS, namespace, pod["metadata"]["name"])
        if existing is not None and not ownership.is_owned_by(existing, job):
            return (
                f"pod {namespace}/{pod['metadata']['name']} already exists and is not owned by "
                "this TrainingJob; delete that pod or rename the job"
            ), True
    return None, not created


def _holds_node(pod: Mapping[str, Any]) -> bool:
    """Whether a pod still runs or waits (not terminal, not already being deleted)."""
    phase = (pod.get("status") or {}).get("phase")
    deleting = pod.get("metadata", {}).get("deletionTimestamp")
    return phase not in ("Succeeded", "Failed") and not deleting


async def _delete_pod(
    ctx: OperatorContext, pod: Mapping[str, Any], spec: specs.TrainingJobSpec
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
    ctx: OperatorContext, pod: Mapping[str, Any], spec: specs.TrainingJobSpec, why: str
) -> None:
    """Mark the pod as stopped on purpose, then delete it gracefully (SIGTERM: it saves)."""
    meta = pod["metadata"]
    annotations = meta.get("annotations") or {}
    if annotations.get(classify.STOP_ANNOTATION) != why:
        patch = {"metadata": {"annotations": {classify.STOP_ANNOTATION: why}}}
        await ctx.api.merge_patch(kubeapi.PODS, meta["namespace"], meta["name"], patch)
    if not meta.get("deletionTimestamp"):
        await _delete_pod(ctx, pod, spec)


async def _write_status(
    ctx: OperatorContext,
    job: Mapping[str, Any],
    old: statuses.Status,
    new: statuses.Status,
) -> None:
    """Patch the status subresource, only if anything changed."""
    meta = job["metadata"]
    document = statuses.to_document(new)
    if document == statuses.to_document(old):
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
    spec: specs.TrainingJobSpec,
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
    """Mark a job whose spec cannot be parsed Failed (once), naming every bad field."""
    try:
        old = statuses.parse_status(job.get("status"))
    except DocumentError:
        old = statuses.Status()
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    if old.phase is Phase.FAILED and old.reason == Reason.INVALID_CONFIG:
        ctx.metrics.record_job(namespace, name, old, epochs=None)
        return
    message = "invalid spec: " + "; ".join(error.problems)
    logger.error("%s", message)
    generation = job.get("metadata", {}).get("generation")
    conds = old.conditions
    for condition in conds:
        if condition.status == conditions.TRUE:
            conds = conditions.set_condition(
                conds,
                condition.type,
                status=conditions.FALSE,
                reason=Reason.INVALID_CONFIG,
                message=message,
                now=now,
                generation=generation,
            )
    conds = conditions.set_condition(
        conds,
        "Failed",
        status=conditions.TRUE,
        reason=Reason.INVALID_CONFIG,
        message=message,
        now=now,
        generation=generation,
    )
    new = old.but(
        phase=Phase.FAILED,
        reason=Reason.INVALID_CONFIG.value,
        message=message,
        conditions=conds,
        completion_time=now,
        observed_generation=generation,
    )
    await _write_status(ctx, job, old, new)
    await _post_event(
        ctx,
        job,
        engine.Event(type=EventType.WARNING, reason=EventReason.FAILED, message=message),
        now,
    )
    ctx.metrics.record_job(namespace, name, new, epochs=None)
    ctx.metrics.failures.labels(namespace, Reason.INVALID_CONFIG.value).inc()
