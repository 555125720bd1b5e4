"""In-process parts of the handlers: wake-ups, the reconciler's sleep, pod summaries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rekindle_operator.cluster import jobs, pod_events
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.cluster.operator_metrics import OperatorMetrics
from rekindle_operator.cluster.wakeups import Wakeups

KEY = ("ml", "digits")


def owned_pod(name: str = "digits-1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "labels": {"rekindle.dev/attempt": "1"},
            "ownerReferences": [
                {
                    "apiVersion": "rekindle.dev/v1alpha1",
                    "kind": "TrainingJob",
                    "name": "digits",
                    "uid": "u1",
                    "controller": True,
                }
            ],
            "managedFields": [{"manager": "kubelet"}],
        },
        "spec": {"nodeName": "gpu-1", "containers": [{"name": "trainer", "image": "t"}]},
        "status": status,
    }


class Flag:
    """A stand-in for kopf's ``stopped`` flag."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> bool:
        await self.event.wait()
        return True


def test_wakes_coalesce_and_remember_when_the_first_came() -> None:
    wakeups = Wakeups()
    wakeups.wake(KEY)
    first = wakeups.slot(KEY).woken_at
    wakeups.wake(KEY)
    assert wakeups.slot(KEY).woken_at == first
    assert wakeups.slot(KEY).event.is_set()
    assert wakeups.take(KEY) == first
    assert not wakeups.slot(KEY).event.is_set()
    assert wakeups.take(KEY) is None


def test_only_spec_changes_count_as_changes() -> None:
    wakeups = Wakeups()
    assert not wakeups.spec_changed(KEY, {"suspend": False})  # first sighting: a pass runs anyway
    assert not wakeups.spec_changed(KEY, {"suspend": False})
    assert wakeups.spec_changed(KEY, {"suspend": True})


def test_a_deleted_pods_last_state_is_kept_until_forgotten() -> None:
    wakeups = Wakeups()
    wakeups.remember_gone(KEY, owned_pod("digits-1", phase="Failed"))
    wakeups.remember_gone(KEY, owned_pod("digits-2"))
    assert wakeups.gone_pod(KEY, "digits-1") is not None
    wakeups.forget_gone(KEY, keep="digits-2")
    assert wakeups.gone_pod(KEY, "digits-1") is None
    assert wakeups.gone_pod(KEY, "digits-2") is not None
    wakeups.forget(KEY)
    assert len(wakeups) == 0


def test_first_missing_is_stamped_once() -> None:
    wakeups = Wakeups()
    first = wakeups.first_missing(KEY, "digits-1")
    time.sleep(0.01)
    assert wakeups.first_missing(KEY, "digits-1") == first


def test_pod_summary_keeps_what_classification_reads_and_drops_the_rest() -> None:
    summary = pod_events.summary(owned_pod(phase="Running"))
    assert summary["status"] == {"phase": "Running"}
    assert summary["spec"] == {"nodeName": "gpu-1"}
    assert "managedFields" not in summary["metadata"]
    assert summary["metadata"]["ownerReferences"][0]["uid"] == "u1"
    gated = owned_pod(phase="Pending")
    gated["spec"] = {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}], "containers": []}
    assert pod_events.summary(gated)["spec"] == {
        "schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]
    }


def test_pods_are_indexed_by_their_controlling_job_and_others_not_at_all() -> None:
    assert list(pod_events.index_pod(owned_pod()) or {}) == [KEY]
    stranger = owned_pod()
    stranger["metadata"]["ownerReferences"] = []
    assert pod_events.index_pod(stranger) is None


def test_pod_events_wake_the_job_except_for_a_fresh_pod() -> None:
    ctx = OperatorContext(api=None, metrics=OperatorMetrics())  # type: ignore[arg-type]
    pod_events.pod_event(ctx, "ADDED", owned_pod())
    assert not ctx.wakeups.slot(KEY).event.is_set()
    for event_type in (None, "MODIFIED"):
        pod_events.pod_event(ctx, event_type, owned_pod())
        assert ctx.wakeups.take(KEY) is not None
    pod_events.pod_event(ctx, "DELETED", owned_pod(phase="Failed"))
    assert ctx.wakeups.take(KEY) is not None
    assert ctx.wakeups.gone_pod(KEY, "digits-1") is not None


async def test_the_reconciler_sleeps_until_woken_not_polling() -> None:
    wake, stopped = asyncio.Event(), Flag()
    started = time.monotonic()
    sleeper = asyncio.create_task(jobs._sleep(wake, stopped, None))
    await asyncio.sleep(0.2)
    assert not sleeper.done()  # no timeout given: it waits for a wake-up
    wake.set()
    await asyncio.wait_for(sleeper, 1)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("delay", [0.05, 0.0])
async def test_the_reconciler_wakes_when_due(delay: float) -> None:
    await asyncio.wait_for(jobs._sleep(asyncio.Event(), Flag(), delay), 1)


async def test_the_reconciler_stops_when_told() -> None:
    stopped = Flag()
    sleeper = asyncio.create_task(jobs._sleep(asyncio.Event(), stopped, None))
    await asyncio.sleep(0.05)
    stopped.event.set()
    await asyncio.wait_for(sleeper, 1)
