"""The kopf operator's handlers: registration only; the work is in :mod:`.handlers`.

Run it with ``rekindle operator`` (see :mod:`rekindle_operator.cluster.operator_command`).
Each TrainingJob gets one reconciler (a kopf daemon) that wakes on events about
its pods and its spec, or when a time it waits for falls due; pods are watched
and indexed by job so that a reconcile reads them without an API call.
The handlers use their own :data:`registry`, so importing this module has no
effect on kopf's default one.
"""

from __future__ import annotations

from typing import Any

import kopf

from rekindle_operator.cluster import jobs, lifecycle, pod_events
from rekindle_operator.core import job_spec
from rekindle_operator.resources import ownership

registry = kopf.OperatorRegistry()

JOBS = (job_spec.API_GROUP, job_spec.API_VERSION, job_spec.PLURAL)
TRAINER_PODS = {ownership.LABEL_APP: ownership.TRAINER_APP}
#: Seconds a reconciler has to finish its pass when its job is deleted or the operator stops.
RECONCILER_CANCELLATION_TIMEOUT = 10.0


@kopf.on.startup(registry=registry)
async def startup(
    memo: kopf.Memo, settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any
) -> None:
    """All kopf settings, the API client and the metrics server."""
    await lifecycle.startup(memo, settings, logger)


@kopf.on.login(registry=registry)
def login(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> kopf.ConnectionInfo:
    """Log in as the kubernetes client would: in-cluster, else the kubeconfig."""
    return lifecycle.login(settings, logger)


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close the API client."""
    await lifecycle.cleanup(memo)


@kopf.index("v1", "pods", labels=TRAINER_PODS, registry=registry)
def trainer_pods(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]] | None:
    """Trainer pods by (namespace, job)."""
    return pod_events.index_pod(body)


@kopf.on.event("v1", "pods", labels=TRAINER_PODS, registry=registry)
def pod_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Wake the pod's job."""
    pod_events.pod_event(memo.ctx, type, body)


@kopf.on.event(*JOBS, registry=registry)
def job_changed(
    type: str | None,
    namespace: str | None,
    name: str | None,
    spec: kopf.Spec,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Wake the job's reconciler when its spec changed."""
    jobs.job_event(memo.ctx, type, namespace or "", name or "", spec)


@kopf.daemon(*JOBS, registry=registry, cancellation_timeout=RECONCILER_CANCELLATION_TIMEOUT)
async def reconciler(
    *,
    namespace: str | None,
    name: str,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    """The job's one reconciler: runs until the job is deleted or the operator stops."""
    # kopf passes each index as a keyword named after its function.
    trainer_pods: kopf.Index[tuple[str, str], dict[str, Any]] = kwargs["trainer_pods"]
    key = (namespace or "", name)
    await jobs.run_reconciler(
        memo.ctx,
        namespace=key[0],
        name=key[1],
        pods=lambda: list(trainer_pods.get(key, ())),
        stopped=stopped,
        logger=logger,
    )
