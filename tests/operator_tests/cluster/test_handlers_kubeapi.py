"""The operator's Kubernetes client: idempotent answers, retries with backoff, counted errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rekindle_operator.cluster import kubeapi
from rekindle_operator.cluster.operator_metrics import OperatorMetrics

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "digits-1"}}


class Script:
    """Answers each request with the next scripted (status, body) and records what came."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, str, str, dict[str, Any] | None]] = []
        self.tokens: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        body = json.loads(text) if text else None
        self.seen.append((request.method, request.path, request.content_type, body))
        self.tokens.append(request.headers.get("Authorization"))
        status, answer = self.answers.pop(0) if self.answers else (200, {})
        return web.json_response(answer, status=status)


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Script]]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    test_server = TestServer(app)
    await test_server.start_server()
    yield test_server, script
    await test_server.close()


def client(server: TestServer, metrics: OperatorMetrics | None = None) -> kubeapi.KubeApi:
    async def login() -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=str(server.make_url("")), token="t0k3n")

    return kubeapi.KubeApi(login, metrics=metrics, backoffs=(0.01, 0.01, 0.01))


def test_resource_paths() -> None:
    assert kubeapi.PODS.path("ml") == "/api/v1/namespaces/ml/pods"
    assert kubeapi.TRAINING_JOBS.path("ml", "digits", "status") == (
        "/apis/rekindle.dev/v1alpha1/namespaces/ml/trainingjobs/digits/status"
    )


async def test_create_says_whether_it_created(server: tuple[TestServer, Script]) -> None:
    test_server, script = server
    script.answers = [(201, POD), (409, {"kind": "Status", "reason": "AlreadyExists"})]
    api = client(test_server)
    assert await api.create(kubeapi.PODS, "ml", POD) is True
    assert await api.create(kubeapi.PODS, "ml", POD) is False  # a replayed create is harmless
    assert len(script.seen) == 2  # a 409 on create is an answer, not a conflict to retry
    method, path, _, body = script.seen[0]
    assert (method, path, body) == ("POST", "/api/v1/namespaces/ml/pods", POD)
    await api.close()


async def test_get_and_delete_report_absence(server: tuple[TestServer, Script]) -> None:
    test_server, script = server
    script.answers = [(404, {}), (404, {})]
    api = client(test_server)
    assert await api.get(kubeapi.PODS, "ml", "digits-1") is None
    assert await api.delete(kubeapi.PODS, "ml", "digits-1", grace_period_seconds=30) is False
    _, _, _, options = script.seen[1]
    assert options == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 30}
    await api.close()


async def test_patches_are_merge_patches_to_the_subresource(
    server: tuple[TestServer, Script],
) -> None:
    test_server, script = server
    script.answers = [(200, {"status": {"phase": "Running"}})]
    api = client(test_server)
    patched = await api.merge_patch(
        kubeapi.TRAINING_JOBS,
        "ml",
        "digits",
        {"status": {"phase": "Running"}},
        subresource="status",
    )
    assert patched == {"status": {"phase": "Running"}}
    method, path, content_type, _ = script.seen[0]
    assert (method, content_type) == ("PATCH", "application/merge-patch+json")
    assert path.endswith("/trainingjobs/digits/status")
    await api.close()


async def test_conflicts_and_server_errors_are_retried_and_counted(
    server: tuple[TestServer, Script],
) -> None:
    test_server, script = server
    script.answers = [(409, {}), (503, {}), (429, {}), (200, {"ok": True})]
    metrics = OperatorMetrics()
    api = client(test_server, metrics)
    assert await api.merge_patch(kubeapi.PODS, "ml", "digits-1", {"metadata": {}}) == {"ok": True}
    assert len(script.seen) == 4
    for code in ("409", "503", "429"):
        assert metrics.api_errors.labels("patch", "pods", code)._value.get() == 1
    await api.close()


async def test_a_request_the_server_refuses_is_not_retried(
    server: tuple[TestServer, Script],
) -> None:
    test_server, script = server
    script.answers = [(422, {"kind": "Status", "message": "spec.containers: Required value"})]
    api = client(test_server)
    with pytest.raises(
        kubeapi.ApiError, match=r"HTTP 422: spec\.containers: Required value"
    ) as info:
        await api.create(kubeapi.PODS, "ml", POD)
    assert info.value.status == 422
    assert len(script.seen) == 1
    await api.close()


async def test_retries_end_with_an_error_naming_the_call(
    server: tuple[TestServer, Script],
) -> None:
    test_server, script = server
    script.answers = [(500, {})] * 10
    api = client(test_server)
    with pytest.raises(kubeapi.ApiError, match=r"GET /api/v1/namespaces/ml/pods/x: HTTP 500"):
        await api.get(kubeapi.PODS, "ml", "x")
    assert len(script.seen) == 4  # the first try and three retries
    await api.close()


async def test_an_expired_token_logs_in_again(server: tuple[TestServer, Script]) -> None:
    test_server, script = server
    script.answers = [(401, {}), (200, {"metadata": {"name": "x"}})]
    logins = []

    async def login() -> kopf.ConnectionInfo:
        logins.append(1)
        return kopf.ConnectionInfo(server=str(test_server.make_url("")), token=f"t{len(logins)}")

    api = kubeapi.KubeApi(login, backoffs=(0.01,))
    assert await api.get(kubeapi.PODS, "ml", "x") == {"metadata": {"name": "x"}}
    assert len(logins) == 2
    assert script.tokens == ["Bearer t1", "Bearer t2"]
    await api.close()
