"""One reconcile pass with a dead node under the attempt's pod (a recording API, no cluster)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from rekindle_operator.cluster import kubeapi, reconcile
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.cluster.operator_metrics import OperatorMetrics
from rekindle_operator.core import engine, job_spec, job_status
from rekindle_operator.resources import classify, ownership
from rekindle_trainer.contract import timestamps

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
SPEC = {"image": "t:1", "entrypoint": "m:f", "training": {"epochs": 3}}


class Api:
    """Answers gets from what it holds, lists events, records every call."""

    def __init__(self, job: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> None:
        self.job, self.nodes = job, nodes
        self.events: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, str]] = []
        self.created: list[str] = []

    async def get(self, resource: kubeapi.Resource, namespace: str, name: str) -> Any:
        self.calls.append(("get", resource.plural, name))
        if resource is kubeapi.TRAINING_JOBS:
            return self.job
        return self.nodes.get(name) if resource is kubeapi.NODES else None

    async def list(self, resource: kubeapi.Resource, namespace: str, **_: Any) -> Any:
        self.calls.append(("list", resource.plural, ""))
        return self.events

    async def create(self, resource: kubeapi.Resource, namespace: str, body: Any) -> bool:
        self.calls.append(("create", resource.plural, body["metadata"].get("name", "")))
        if resource.plural == "pods":
            self.created.append(body["metadata"]["name"])
        return True

    async def delete(self, resource: kubeapi.Resource, namespace: str, name: str, **_: Any) -> bool:
        self.calls.append(("delete", resource.plural, name))
        return True

    async def merge_patch(self, resource: kubeapi.Resource, *_: Any, **__: Any) -> Any:
        return self.job


def _job() -> dict[str, Any]:
    spec = job_spec.parse_spec(SPEC)
    started = engine.decide(spec, job_status.Status(), None, T0).status
    meta = {"name": "digits", "namespace": "ml", "uid": "u1", "generation": 1}
    job = {"apiVersion": "rekindle.dev/v1alpha1", "kind": "TrainingJob", "metadata": meta}
    return {**job, "spec": SPEC, "status": job_status.to_document(started)}


def _pod(job: dict[str, Any], *, phase: str, ready: str, running: bool) -> dict[str, Any]:
    state = {"running": {"startedAt": timestamps.format_time(T0)}} if running else {}
    return {
        "metadata": {
            "name": "digits-1",
            "namespace": "ml",
            "uid": "p1",
            "labels": {ownership.LABEL_ATTEMPT: "1"},
            "ownerReferences": [ownership.owner_reference(job)],
            "creationTimestamp": timestamps.format_time(T0),
        },
        "spec": {"nodeName": "gpu-3"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": ready}],
            "containerStatuses": [{"name": "trainer", "state": state or {"waiting": {}}}],
        },
    }


async def _pass(api: Api, pod: dict[str, Any], *, read_nodes: bool) -> float | None:
    ctx = OperatorContext(api=api, metrics=OperatorMetrics(), read_nodes=read_nodes)  # type: ignore[arg-type]
    return await reconcile.reconcile(
        ctx,
        namespace="ml",
        name="digits",
        indexed_pods=[pod],
        now=NOW,
        woken_at=None,
        logger=logging.getLogger(__name__),
    )


UNKNOWN = {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}


async def test_a_pod_whose_node_is_down_is_replaced_in_the_same_pass() -> None:
    job = _job()
    api = Api(job, {"gpu-3": UNKNOWN})
    await _pass(api, _pod(job, phase="Running", ready="False", running=True), read_nodes=True)
    assert ("get", "nodes", "gpu-3") in api.calls
    assert api.created == ["digits-2"]


async def test_nodes_are_not_read_where_the_operator_may_not_or_the_pod_is_ready() -> None:
    job = _job()
    api = Api(job, {"gpu-3": UNKNOWN})
    await _pass(api, _pod(job, phase="Running", ready="False", running=True), read_nodes=False)
    await _pass(api, _pod(job, phase="Running", ready="True", running=True), read_nodes=True)
    assert not [c for c in api.calls if c[1] == "nodes"]
    assert api.created == []


async def test_a_pod_making_its_containers_has_its_attach_events_read_again_soon() -> None:
    job = _job()
    api = Api(job, {"gpu-3": {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}})
    pod = _pod(job, phase="Pending", ready="False", running=False)
    again = await _pass(api, pod, read_nodes=True)
    assert ("list", "events", "") in api.calls
    assert again is not None
    assert again <= reconcile.ATTACH_RECHECK_SECONDS


async def test_a_pod_being_deleted_is_looked_at_again_once_its_node_should_have_ended_it() -> None:
    job = _job()
    api = Api(job, {"gpu-3": {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}})
    pod = _pod(job, phase="Running", ready="True", running=True)
    pod["metadata"]["deletionTimestamp"] = timestamps.format_time(NOW + timedelta(seconds=5))
    again = await _pass(api, pod, read_nodes=True)
    assert again == 5 + classify.KUBELET_SILENCE_SECONDS + 1
    assert api.created == []
