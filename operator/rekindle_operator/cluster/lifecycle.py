"""Operator start-up and clean-up: kopf's settings (all of them, here) and the shared context."""

from __future__ import annotations

import logging
import os

import kopf

from rekindle_operator.cluster import kubeapi
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.cluster.operator_metrics import OperatorMetrics

#: kopf's finalizer on TrainingJobs, held while a job's reconciler (a daemon) runs.
FINALIZER = "rekindle.dev/operator"
#: Prefix of the annotations kopf may write on TrainingJobs.
ANNOTATIONS_PREFIX = "rekindle.dev"


def configure(settings: kopf.OperatorSettings) -> None:
    """Every kopf setting the operator changes, with why."""
    # Names on our objects say who put them there.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATIONS_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATIONS_PREFIX, key="last-handled-configuration"
    )
    # The RBAC grants no cluster-scoped reads: kopf must not list namespaces or CRDs;
    # the resources and namespaces are known from the start.
    settings.scanning.disabled = True
    # The operator posts its own Events; kopf's own become Events only for warnings and errors.
    settings.posting.level = logging.WARNING
    # Timeout: ask the API server to end each watch after 10 minutes (and the client to give
    # up 1 minute later), so that a stream that silently died behind a load balancer is
    # replaced instead of leaving the operator deaf.
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    # Timeout: a watch connection that takes more than 30 s to open is retried.
    settings.watching.connect_timeout = 30
    # Timeout: kopf's own API requests (patches, events) fail after 60 s and are retried,
    # rather than hang for aiohttp's default 5 minutes.
    settings.networking.request_timeout = 60
    # Timeout: opening a connection to the API server fails after 10 s (then retried).
    settings.networking.connect_timeout = 10
    # Timeout: a peering replica that has not renewed its claim for 60 s is considered gone,
    # and another replica takes over.
    settings.peering.lifetime = 60
    # Timeout: how long kopf waits for a job's events to settle into a consistent state
    # before handling it anyway (only kopf's own change-tracking uses it).
    settings.persistence.consistency_timeout = 5
    # Timeout: a per-object event worker that has been idle for 5 s exits (1,000 jobs need
    # no 1,000 idle workers).
    settings.queueing.idle_timeout = 5
    # Timeout: on shutdown, wait up to 10 s for workers to finish what they are doing.
    settings.queueing.exit_timeout = 10


def login(settings: kopf.OperatorSettings, logger: kopf.Logger) -> kopf.ConnectionInfo:
    """Credentials from the pod's service account, else the kubeconfig (as kubectl finds it)."""
    info = kopf.login_via_client(logger=logger, settings=settings)
    if info is None:
        raise kopf.LoginError(
            "the kubernetes client library is not installed: pip install rekindle[operator]"
        )
    return info


async def open_context(settings: kopf.OperatorSettings, logger: kopf.Logger) -> OperatorContext:
    """The shared state: an API client logged in as kopf logs in, and fresh metrics."""

    async def relogin() -> kopf.ConnectionInfo:
        return login(settings, logger)

    metrics = OperatorMetrics()
    api = kubeapi.KubeApi(relogin, metrics=metrics)
    return OperatorContext(api=api, metrics=metrics, instance=os.environ.get("HOSTNAME", ""))


async def startup(memo: kopf.Memo, settings: kopf.OperatorSettings, logger: kopf.Logger) -> None:
    """Configure kopf, create the shared context in the memo, and serve ``/metrics``."""
    configure(settings)
    ctx = await open_context(settings, logger)
    options = memo.get("options")
    ctx.read_nodes = bool(getattr(options, "all_namespaces", False))
    port = getattr(options, "metrics_port", 0)
    if port:
        ctx.metrics.serve(port)
        logger.info("Serving operator metrics on port %d at /metrics", port)
    memo["ctx"] = ctx


async def cleanup(memo: kopf.Memo) -> None:
    """Close the API client."""
    ctx = memo.get("ctx")
    if isinstance(ctx, OperatorContext):
        await ctx.api.close()
        await ctx.live.close()
