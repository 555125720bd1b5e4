"""Watches expire as on an API server: a bounded window, 410 Gone, bookmarks on request.

The store keeps the newest ``history_limit`` changes; a watch from an older
version gets one ERROR event with code 410 and ends, and a client must list
again (kopf does). ``allowWatchBookmarks=true`` brings BOOKMARK events with
the current version. The Rekindle operator is shown to recover from a 410.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.kube.cluster import Cluster
from tests.kube.store import Store
from tests.support.operator_process import running_operator

NS = "default"


def configmap(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"v": value},
    }


def churn(cluster: Cluster, changes: int) -> None:
    """Many changes of a kind nobody watches, so that the window moves on."""
    cluster.create(configmap("churn", "0"), NS)
    for index in range(changes):
        cluster.patch("configmaps", NS, "churn", {"data": {"v": str(index)}})


def watch_events(cluster: Cluster, query: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{cluster.url}/api/v1/namespaces/{NS}/configmaps?{query}") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json"
        return [json.loads(line) for line in r.read().splitlines() if line.strip()]


def limit_history(cluster: Cluster, changes: int) -> None:
    def limit(store: Store) -> None:
        store.history_limit = changes

    cluster.call(limit)


def test_a_watch_from_before_the_window_is_gone(kube_api: Cluster) -> None:
    limit_history(kube_api, 10)
    old = kube_api.create(configmap("old", "1"), NS)["metadata"]["resourceVersion"]
    churn(kube_api, 20)
    [error] = watch_events(kube_api, f"watch=true&resourceVersion={old}&timeoutSeconds=5")
    assert error["type"] == "ERROR"
    assert (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
    assert "too old resource version" in error["object"]["message"]
    recent = kube_api.get("configmaps", NS, "churn")["metadata"]["resourceVersion"]
    kube_api.patch("configmaps", NS, "old", {"data": {"v": "2"}})
    [change] = watch_events(kube_api, f"watch=true&resourceVersion={recent}&timeoutSeconds=1")
    assert (change["type"], change["object"]["data"]) == ("MODIFIED", {"v": "2"})


def test_bookmarks_come_only_when_allowed(kube_api: Cluster) -> None:
    kube_api.emulator.bookmark_interval = 0.3
    now = kube_api.create(configmap("c", "1"), NS)["metadata"]["resourceVersion"]
    marked = watch_events(
        kube_api, f"watch=true&resourceVersion={now}&timeoutSeconds=1&allowWatchBookmarks=true"
    )
    assert len(marked) >= 2, "every 0.3 s, and one before the watch ends"
    assert {e["type"] for e in marked} == {"BOOKMARK"}
    assert marked[-1]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": now},
    }
    assert watch_events(kube_api, f"watch=true&resourceVersion={now}&timeoutSeconds=1") == []


def _trainingjob_lists(cluster: Cluster) -> int:
    return sum(
        1
        for request in cluster.emulator
        if request.resource is not None
        and request.resource.plural == "trainingjobs"
        and request.method == "GET"
        and request.name is None
        and request.params.get("watch") not in ("true", "1")
    )


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "image": "trainer:emulated",
            "entrypoint": "rekindle_trainer.examples.digits:build",
            "training": {"epochs": 2},
        },
    }


@pytest.mark.slow
def test_the_operator_lists_again_after_410_and_carries_on(
    kube_api: Cluster, tmp_path: Path
) -> None:
    limit_history(kube_api, 30)
    with running_operator(kube_api.kubeconfig, tmp_path / "operator.log"):
        kube_api.create(job("before"), NS)
        kube_api.wait_for("pods", NS, "before-1", lambda _: True, what="the first pod")
        lists = _trainingjob_lists(kube_api)
        churn(kube_api, 60)  # the operator's watch versions fall out of the window
        kube_api.emulator.drop_watches()  # as an API server restarting its watches
        kube_api.wait_for("pods", NS, "before-1", lambda _: True)  # still there
        deadline = time.monotonic() + 30
        while _trainingjob_lists(kube_api) == lists:
            assert time.monotonic() < deadline, "the operator never listed again after the 410"
            time.sleep(0.2)
        kube_api.create(job("after"), NS)
        kube_api.wait_for(
            "pods", NS, "after-1", lambda _: True, what="a pod of a job created later"
        )
