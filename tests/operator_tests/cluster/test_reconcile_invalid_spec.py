"""A pass over a job whose spec cannot be parsed: the engine's answer written, posted, counted."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from rekindle_operator.cluster import kubeapi, reconcile
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.cluster.operator_metrics import OperatorMetrics
from rekindle_operator.core import metric_names

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LOGGER = logging.getLogger(__name__)


class OneJobApi:
    """Holds one TrainingJob; applies status patches to it and records every write."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.patches: list[dict[str, Any]] = []
        self.created: list[tuple[str, dict[str, Any]]] = []

    async def get(self, resource: kubeapi.Resource, namespace: str, name: str) -> Any:
        assert resource is kubeapi.TRAINING_JOBS, f"only the job is read, not {resource.plural}"
        return self.job

    async def merge_patch(
        self, resource: kubeapi.Resource, namespace: str, name: str, patch: Any, **_: Any
    ) -> None:
        self.patches.append(patch)
        self.job = {**self.job, "status": patch["status"]}

    async def create(self, resource: kubeapi.Resource, namespace: str, body: Any) -> bool:
        self.created.append((resource.plural, body))
        return True


def _job() -> dict[str, Any]:
    return {
        "metadata": {"name": "digits", "namespace": "ml", "uid": "u1", "generation": 3},
        "spec": {"image": "t:1", "entrypoint": "m:f", "training": {"epochs": "ten"}},
    }


def _failures(ctx: OperatorContext) -> float | None:
    labels = {"namespace": "ml", "reason": "InvalidConfig"}
    return ctx.metrics.registry.get_sample_value(metric_names.FAILURES, labels)


async def _pass(ctx: OperatorContext, now: datetime) -> float | None:
    return await reconcile.reconcile(
        ctx, namespace="ml", name="digits", indexed_pods=[], now=now, woken_at=None, logger=LOGGER
    )


async def test_an_unparseable_spec_fails_the_job_once_naming_the_field() -> None:
    api = OneJobApi(_job())
    ctx = OperatorContext(api=api, metrics=OperatorMetrics())  # type: ignore[arg-type]
    assert await _pass(ctx, T0) is None  # nothing to wait for: only a new spec changes it
    (patch,) = api.patches
    status = patch["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidConfig")
    assert "spec.training.epochs: expected an integer, got 'ten'" in status["message"]
    assert status["observedGeneration"] == 3
    (event,) = [body for plural, body in api.created if plural == "events"]
    assert (event["type"], event["reason"]) == ("Warning", "Failed")
    assert event["message"] == status["message"]
    assert _failures(ctx) == 1

    assert await _pass(ctx, T0 + timedelta(minutes=1)) is None
    assert len(api.patches) == 1
    assert len(api.created) == 1
    assert _failures(ctx) == 1
