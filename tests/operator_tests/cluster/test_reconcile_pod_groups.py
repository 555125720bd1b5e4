"""Starting an attempt with spec.gangScheduling: its PodGroup first, then its pods."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from rekindle_operator.cluster import kubeapi, reconcile
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.cluster.operator_metrics import OperatorMetrics
from rekindle_operator.core import job_spec

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LOGGER = logging.getLogger(__name__)
UID = "u1"


class RecordingApi:
    """Answers creates (409 for names it holds), gets and deletes; records every call in order."""

    def __init__(self, job: dict[str, Any], *, missing: frozenset[str] = frozenset()) -> None:
        self.job = job
        self.calls: list[tuple[str, str, str]] = []
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        #: ``group/plural`` the cluster does not serve: a create answers 404.
        self.missing = missing
        self.patches: list[dict[str, Any]] = []

    @staticmethod
    def _kind(resource: kubeapi.Resource) -> str:
        return f"{resource.group}/{resource.plural}" if resource.group else resource.plural

    async def create(self, resource: kubeapi.Resource, namespace: str, body: Any) -> bool:
        kind = self._kind(resource)
        if kind in self.missing:
            raise kubeapi.ApiError(
                "POST",
                resource.path(namespace),
                404,
                "the server could not find the requested resource",
            )
        name = body["metadata"].get("name", "")
        self.calls.append(("create", kind, name))
        if (kind, name) in self.objects:
            return False
        self.objects[(kind, name)] = body
        return True

    async def get(self, resource: kubeapi.Resource, namespace: str, name: str) -> Any:
        if resource is kubeapi.TRAINING_JOBS:
            return self.job
        return self.objects.get((self._kind(resource), name))

    async def delete(self, resource: kubeapi.Resource, namespace: str, name: str, **_: Any) -> bool:
        kind = self._kind(resource)
        self.calls.append(("delete", kind, name))
        return self.objects.pop((kind, name), None) is not None

    async def merge_patch(
        self, resource: kubeapi.Resource, namespace: str, name: str, patch: Any, **_: Any
    ) -> Any:
        self.patches.append(patch)
        if resource is kubeapi.TRAINING_JOBS and "status" in patch:
            self.job = {**self.job, "status": patch["status"]}
        return self.job


def _job(scheduler: str, workers: int = 2, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "digits", "namespace": "ml", "uid": UID, "generation": 1}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": meta,
        "spec": {
            "image": "t:1",
            "entrypoint": "m:f",
            "workers": workers,
            "training": {"epochs": 3},
            "checkpoint": {"size": "1Gi"},
            "gangScheduling": {"scheduler": scheduler},
        },
    }


def _ctx(api: RecordingApi) -> OperatorContext:
    return OperatorContext(api=api, metrics=OperatorMetrics())  # type: ignore[arg-type]


async def _start(api: RecordingApi, attempt: int) -> tuple[str | None, bool]:
    spec = job_spec.parse_spec(api.job["spec"])
    return await reconcile._start_attempt(_ctx(api), api.job, spec, attempt, None)


@pytest.mark.parametrize(
    ("scheduler", "kind"),
    [
        ("volcano", "scheduling.volcano.sh/podgroups"),
        ("scheduler-plugins", "scheduling.x-k8s.io/podgroups"),
    ],
)
async def test_the_pod_group_is_created_before_the_gangs_pods(scheduler: str, kind: str) -> None:
    api = RecordingApi(_job(scheduler))
    assert await _start(api, 1) == (None, False)
    order = [(verb, k) for verb, k, _ in api.calls]
    group_at = order.index(("create", kind))
    assert all(i > group_at for i, (_, k) in enumerate(order) if k == "pods")
    assert [name for _, k, name in api.calls if k == "pods"] == ["digits-1-w0", "digits-1-w1"]
    group = api.objects[(kind, "digits-1")]
    assert group["spec"]["minMember"] == 2
    for worker in ("digits-1-w0", "digits-1-w1"):
        pod = api.objects[("pods", worker)]
        words = {**pod["metadata"]["labels"], **pod["metadata"].get("annotations", {})}
        assert "digits-1" in words.values()


async def test_a_new_attempt_makes_its_own_group_and_drops_the_last_one() -> None:
    api = RecordingApi(_job("volcano"))
    await _start(api, 1)
    api.calls.clear()
    assert await _start(api, 2) == (None, False)
    groups = [(verb, name) for verb, kind, name in api.calls if kind.endswith("podgroups")]
    assert groups == [("create", "digits-2"), ("delete", "digits-1")]
    assert ("scheduling.volcano.sh/podgroups", "digits-1") not in api.objects


async def test_a_replayed_start_finds_its_group_there_already() -> None:
    api = RecordingApi(_job("scheduler-plugins"))
    await _start(api, 1)
    problem, existed = await _start(api, 1)
    assert problem is None
    assert existed, "the pods answered 409: made by an earlier pass"


async def test_a_cluster_without_the_pod_group_api_is_a_problem_naming_the_field() -> None:
    api = RecordingApi(_job("volcano"), missing=frozenset({"scheduling.volcano.sh/podgroups"}))
    problem, existed = await _start(api, 1)
    assert problem is not None
    assert problem.startswith("spec.gangScheduling.scheduler:")
    assert "podgroups.scheduling.volcano.sh" in problem
    assert not existed
    assert not [k for _, k, _ in api.calls if k == "pods"], "no pod is made without its group"


async def test_volcano_with_the_jobs_kueue_label_starts_nothing() -> None:
    api = RecordingApi(_job("volcano", labels={"kueue.x-k8s.io/queue-name": "team-a"}))
    problem, _ = await _start(api, 1)
    assert problem is not None
    assert "Kueue queue team-a" in problem
    assert not [c for c in api.calls if c[1] in ("pods",) or c[1].endswith("podgroups")]


async def test_a_pass_over_a_new_job_starts_the_gang_with_its_group() -> None:
    api = RecordingApi(_job("volcano"))
    await reconcile.reconcile(
        _ctx(api), namespace="ml", name="digits", indexed_pods=[], now=T0, woken_at=None,
        logger=LOGGER,
    )  # fmt: skip
    kinds = [k for verb, k, _ in api.calls if verb == "create"]
    assert "scheduling.volcano.sh/podgroups" in kinds
    assert kinds.index("scheduling.volcano.sh/podgroups") < kinds.index("pods")


async def test_a_foreign_pod_group_of_the_same_name_is_a_problem_and_no_pod_is_made() -> None:
    api = RecordingApi(_job("scheduler-plugins"))
    foreign = {"metadata": {"name": "digits-1", "ownerReferences": []}}
    api.objects[("scheduling.x-k8s.io/podgroups", "digits-1")] = foreign
    problem, _ = await _start(api, 1)
    assert problem is not None
    assert problem.startswith("podgroup ml/digits-1 (scheduling.x-k8s.io) already exists")
    assert not [c for c in api.calls if c[1] == "pods"]
