"""The request log: complete for assertions, yet not scanned to match each new request."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.kube.cluster import Cluster

PATH = "/api/v1/namespaces/default/configmaps/counter"


class CountingLog(list[Any]):
    """A request log that counts the entries anyone iterates over."""

    iterated = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self.iterated += 1
            yield item


class Client:
    """One keep-alive HTTP connection to the emulated API."""

    def __init__(self, cluster: Cluster) -> None:
        url = urlsplit(cluster.url)
        self.connection = http.client.HTTPConnection(str(url.hostname), url.port, timeout=10)

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/merge-patch+json"} if body is not None else {}
        self.connection.request(method, path, payload, headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def client(kube_api: Cluster) -> Iterator[Client]:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"}}
    kube_api.create(configmap, "default")
    client = Client(kube_api)
    yield client
    client.close()


def serve_some(client: Client, count: int) -> None:
    """``count`` requests, every other one a PATCH (matched after the GET reactions)."""
    for index in range(count):
        if index % 2:
            assert client.send("PATCH", PATH, {"data": {"n": str(index)}}) == 200
        else:
            assert client.send("GET", PATH) == 200


def install_counting_log(cluster: Cluster) -> CountingLog:
    def swap(_: object) -> CountingLog:
        log = CountingLog(cluster.emulator._requests)
        cluster.emulator._requests = log
        return log

    return cluster.call(swap)


def test_matching_a_request_scans_none_of_the_log(kube_api: Cluster, client: Client) -> None:
    serve_some(client, 200)
    log = install_counting_log(kube_api)
    serve_some(client, 2)
    assert log.iterated == 0, "matching a request iterated the request log"
    assert len(log) == 202


def test_the_log_stays_complete_for_assertions(kube_api: Cluster, client: Client) -> None:
    serve_some(client, 40)
    logged = list(kube_api.emulator)
    assert [r.method for r in logged] == ["GET", "PATCH"] * 20
    assert len(list(kube_api.emulator["patch", PATH])) == 20
    assert [r.data for r in kube_api.emulator["patch"]][-1] == {"data": {"n": "39"}}


def test_a_reaction_by_position_still_counts_the_whole_log(
    kube_api: Cluster, client: Client
) -> None:
    # The second GET of the object fails once; the log must be scanned to know which is second.
    kube_api.emulator["get", PATH][1:2] << 503
    assert [client.send("GET", PATH) for _ in range(4)] == [200, 503, 200, 200]
    log = install_counting_log(kube_api)
    client.send("GET", PATH)
    assert log.iterated > 0, "a sliced reaction needs the whole log"


def test_a_reaction_by_content_is_still_matched(kube_api: Cluster, client: Client) -> None:
    serve_some(client, 20)
    kube_api.emulator["patch", PATH] << 409
    assert client.send("GET", PATH) == 200
    assert client.send("PATCH", PATH, {"data": {"n": "x"}}) == 409
