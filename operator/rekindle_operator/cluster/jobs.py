"""TrainingJobs: one reconciler per job that sleeps until woken or due, then reconciles.

The reconciler runs as a kopf daemon, so kopf starts it for every job it sees
(at creation and at operator start-up), stops it when the job is deleted or
when peering hands the work to another replica, and restarts it elsewhere.
It never polls: it waits for a wake-up (a pod event, a spec change) or for the
time the engine asked to be called back at (backoff, pending timeout,
deadline, TTL), whichever comes first. A pass that fails is retried with
backoff, and never holds up another job's reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from rekindle_operator.cluster import reconcile
from rekindle_operator.cluster.context import OperatorContext

#: Seconds between tries of a reconcile that raised (API down, a bug): growing, capped.
ERROR_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: The soonest a pass asks to be called back: the pod's clock and the engine's may
#: differ by milliseconds (pending timeout), which must not turn into a busy loop.
MIN_REQUEUE_SECONDS = 1.0

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


class Stopped(Protocol):
    """What the reconciler needs of kopf's ``stopped`` flag."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


def job_event(
    ctx: OperatorContext, event_type: str | None, namespace: str, name: str, spec: Mapping[str, Any]
) -> None:
    """A TrainingJob changed: wake its reconciler if the spec did (status echoes do not)."""
    key = (namespace, name)
    if event_type == "DELETED":
        ctx.wakeups.forget(key)
        ctx.metrics.forget(namespace, name)
        return
    if ctx.wakeups.spec_changed(key, spec):
        ctx.wakeups.wake(key)


async def run_reconciler(
    ctx: OperatorContext,
    *,
    namespace: str,
    name: str,
    pods: Callable[[], Iterable[Mapping[str, Any]]],
    stopped: Stopped,
    logger: Logger,
) -> None:
    """Reconcile job ``namespace/name`` now, then every time it is woken or due, until stopped.

    Args:
        ctx: the operator's shared state.
        namespace: the job's namespace.
        name: the job's name.
        pods: returns this job's trainer pods as the watch last showed them.
        stopped: kopf's flag, set when the job is deleted or the operator stops or pauses.
        logger: kopf's logger for this job.

    When it returns, the job's per-job metrics are dropped from this replica.
    """
    key = (namespace, name)
    slot = ctx.wakeups.slot(key)
    errors = 0
    try:
        while not stopped:
            woken_at = ctx.wakeups.take(key)
            started = time.monotonic()
            delay: float | None
            try:
                delay = await reconcile.reconcile(
                    ctx,
                    namespace=namespace,
                    name=name,
                    indexed_pods=pods(),
                    now=datetime.now(UTC),
                    woken_at=woken_at,
                    logger=logger,
                )
                errors = 0
                if delay is not None:
                    delay = max(delay, MIN_REQUEUE_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                errors += 1
                logger.exception("Reconcile failed (%s); retrying in %.0fs", exc, delay)
            finally:
                ctx.metrics.reconcile_seconds.observe(time.monotonic() - started)
            await _wait_reading(ctx, key, slot.event, stopped, delay)
    finally:
        # Deleted, handed to another replica by peering, or the operator stops: the
        # replica that reconciles the job from now on exports its series, not this one.
        ctx.metrics.forget(namespace, name)
        ctx.live.forget(key)


async def _wait_reading(
    ctx: OperatorContext,
    key: tuple[str, str],
    wake: asyncio.Event,
    stopped: Stopped,
    delay: float | None,
) -> None:
    """Sleep until woken, stopped or ``delay`` passes, reading the running trainer when due.

    Returns early when a reading is worth writing (the next pass merges it);
    a job without a running attempt is never read (:mod:`.live`).
    """
    deadline = None if delay is None else time.monotonic() + delay
    while True:
        now = time.monotonic()
        poll_at = ctx.live.next_poll(key)
        due = [t - now for t in (deadline, poll_at) if t is not None]
        await _sleep(wake, stopped, min(due) if due else None)
        if wake.is_set() or stopped:
            return
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if poll_at is not None and now >= poll_at and await ctx.live.poll(key, now):
            return


async def _sleep(wake: asyncio.Event, stopped: Stopped, delay: float | None) -> None:
    """Wait until woken, stopped, or ``delay`` seconds pass (None: no time limit)."""
    if wake.is_set() or stopped:
        return
    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(
            waiters,
            timeout=None if delay is None else max(delay, 0.0),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
