"""Stopping the emulated cluster is prompt, whatever its clients are doing.

A stop ends open watch streams, cancels handlers that do not finish (a watch
whose client stopped reading), and closes the connections; it must not wait
for clients, nor for aiohttp's default 60-second shutdown timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.cluster import Cluster, HarnessError
from tests.kube.emulator import ClusterEmulator
from tests.kube.store import NAMESPACES, PODS

#: How long a stop may take here (the grace of a stuck handler twice, and a loaded machine).
PROMPT = 2.5


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path / "cluster").start()
    yield started
    started.stop(timeout=5)  # idempotent: a test that stopped it already leaves nothing to do


def open_watch(cluster: Cluster, path: str, *, receive_buffer: int | None = None) -> socket.socket:
    """A raw HTTP watch request whose client never reads the answer."""
    host, port = cluster.url.removeprefix("http://").split(":")
    client = socket.socket()
    if receive_buffer is not None:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    client.connect((host, int(port)))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return client


def watches(cluster: Cluster) -> int:
    """How many watch streams are subscribed to the store."""
    return cluster.call(lambda store: len(store.listeners))


def wait_watches(cluster: Cluster, count: int) -> None:
    deadline = time.monotonic() + 10
    while watches(cluster) < count:
        assert time.monotonic() < deadline, "the watch request never reached the server"
        time.sleep(0.02)


def timed_stop(cluster: Cluster) -> float:
    started = time.monotonic()
    cluster.stop(timeout=30)
    return time.monotonic() - started


def test_stop_ends_a_quiet_watch_whose_client_never_reads(cluster: Cluster) -> None:
    before = watches(cluster)
    client = open_watch(cluster, "/api/v1/pods?watch=true")
    wait_watches(cluster, before + 1)
    try:
        assert timed_stop(cluster) < PROMPT
    finally:
        client.close()


def test_stop_cancels_a_watch_blocked_on_a_client_that_never_reads(cluster: Cluster) -> None:
    before = watches(cluster)
    client = open_watch(cluster, "/api/v1/configmaps?watch=true", receive_buffer=4096)
    wait_watches(cluster, before + 1)
    blob = "x" * 100_000
    for i in range(80):  # 8 MB of events: more than the socket buffers hold
        manifest = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"blob": blob}}
        cluster.create({**manifest, "metadata": {"name": f"big-{i}"}}, "default")
    try:
        assert timed_stop(cluster) < PROMPT
    finally:
        client.close()


async def test_a_watch_cancelled_as_an_event_arrives_ends() -> None:
    """Python 3.11's asyncio.wait_for swallowed such a cancellation: the watch waited on."""
    emulator = ClusterEmulator()
    for pending_steps in range(8):  # the cancellation lands at each point of the event's delivery
        stream = emulator._stream(PODS, None, (), (), 0, 60.0)  # as timeoutSeconds=60

        async def consume(stream: object = stream) -> None:
            async for _ in stream:  # type: ignore[attr-defined]
                pass

        task = asyncio.create_task(consume())
        for _ in range(5):
            await asyncio.sleep(0)  # the stream is now waiting for an event
        # A change the pod watch does not show (a namespace), then the client goes away.
        emulator.store.create(NAMESPACES, None, {"metadata": {"name": f"ns-{pending_steps}"}})
        for _ in range(pending_steps):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1)
        assert done, f"the watch ignored its cancellation ({pending_steps} steps after an event)"


async def test_end_watches_ends_open_and_later_streams() -> None:
    emulator = ClusterEmulator()
    seen: list[object] = []

    async def consume() -> None:
        async for item in emulator._stream(PODS, None, (), (), 0, None):
            seen.append(item)

    opened = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    emulator.end_watches()
    await asyncio.wait_for(opened, 1)
    later = asyncio.create_task(consume())
    await asyncio.wait_for(later, 1)
    assert seen == [b"", b""]  # each sent its headers, then ended


def test_stop_fails_when_the_kubelet_caught_errors(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "cluster").start()
    kubelet = cluster.start_kubelet(tmp_path / "node")
    kubelet.errors.append(RuntimeError("a pod worker crashed"))  # as _PodWorker.run records it
    with pytest.raises(HarnessError, match="RuntimeError: a pod worker crashed"):
        cluster.stop(timeout=5)
    assert cluster._thread is not None
    assert not cluster._thread.is_alive(), "stopped all the same"
