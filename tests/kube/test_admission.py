"""Admission hooks: the emulated API refuses or changes a create as a cluster's policies would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.kube import admission
from tests.kube.cluster import Cluster
from tests.kube.store import PODS, ApiError

QUOTA = 'pods "{name}" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1'


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "img"}]},
    }


def post(cluster: Cluster, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        cluster.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_refused_create_is_answered_with_the_status_and_stores_nothing(
    kube_api: Cluster,
) -> None:
    with admission.installed(kube_api, admission.refusing("pods", 403, "Forbidden", QUOTA)):
        code, answer = post(kube_api, "/api/v1/namespaces/default/pods", pod("p1"))
        with pytest.raises(ApiError, match="exceeded quota"):
            kube_api.create(pod("p2"), "default")
    assert code == 403
    assert answer["kind"] == "Status"
    assert answer["reason"] == "Forbidden"
    assert answer["message"] == QUOTA.format(name="p1")
    assert kube_api.find("pods", "default", "p1") is None
    kube_api.create(pod("p3"), "default")  # the hook is gone with its block


def test_a_hook_refuses_only_what_it_is_told() -> None:
    hook = admission.refusing(
        "pods", 403, "Forbidden", "no", when=lambda o: o["metadata"]["name"] == "bad"
    )
    with pytest.raises(ApiError):
        hook(PODS, "default", pod("bad"))
    hook(PODS, "default", pod("good"))
