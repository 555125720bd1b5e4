"""Test-only cluster DNS: pods under a headless Service reach each other's ports on loopback."""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

import pytest

from tests.kube.cluster import Cluster
from tests.kube.dns import ClusterDns
from tests.kube.kubelet import ProcessKubelet


def counting_dns(start: int = 40000) -> ClusterDns:
    ports = itertools.count(start)
    return ClusterDns(lambda: next(ports))


@pytest.mark.parametrize(
    "address",
    [
        "w1.job-workers.ml.svc:2222",
        "w1.job-workers.ml.svc.cluster.local:2222",
        "w1.job-workers.ml:2222",
        "w1.job-workers:2222",  # the pod's own namespace
    ],
)
def test_every_form_of_a_pods_name_resolves_to_the_same_loopback_port(address: str) -> None:
    dns = counting_dns()
    port = dns.host_port("ml", "job-workers", "w1", 2222)
    assert dns.resolve(address, "ml") == f"127.0.0.1:{port}"


def test_names_keep_their_port_and_differ_from_each_other() -> None:
    dns = counting_dns()
    w0 = dns.host_port("ml", "job-workers", "w0", 2222)
    w1 = dns.host_port("ml", "job-workers", "w1", 2222)
    assert w0 != w1
    assert dns.host_port("ml", "job-workers", "w0", 2222) == w0  # the next attempt's worker 0
    assert dns.host_port("other", "job-workers", "w0", 2222) not in (w0, w1)


def test_a_free_port_is_never_one_a_name_holds() -> None:
    handed = iter([40000, 40000, 40001])
    dns = ClusterDns(lambda: next(handed))
    assert dns.host_port("ml", "s", "w0", 2222) == 40000
    assert dns.free_port() == 40001


@pytest.mark.parametrize("address", ["127.0.0.1:5000", "example.com", "w0:2222", "a.b.c.d.e:x"])
def test_other_addresses_are_left_as_they_are(address: str) -> None:
    assert counting_dns().resolve(address, "ml") == address


def test_tf_config_addresses_are_rewritten_and_the_rest_kept() -> None:
    dns = counting_dns()
    text = json.dumps(
        {
            "cluster": {"worker": ["w0.j-workers.ml.svc:2222", "w1.j-workers.ml.svc:2222"]},
            "task": {"type": "worker", "index": 1},
        }
    )
    doc = json.loads(dns.rewrite_tf_config(text, "ml"))
    assert doc["task"] == {"type": "worker", "index": 1}
    assert doc["cluster"]["worker"] == [
        f"127.0.0.1:{dns.host_port('ml', 'j-workers', 'w0', 2222)}",
        f"127.0.0.1:{dns.host_port('ml', 'j-workers', 'w1', 2222)}",
    ]
    assert dns.rewrite_tf_config("not json", "ml") == "not json"


#: Worker 1 listens on its own TF_CONFIG address; worker 0 dials worker 1's and reports.
WORKER = """
import json, os, socket, sys, time
config = json.loads(os.environ["TF_CONFIG"])
index = config["task"]["index"]
host, port = config["cluster"]["worker"][1].rsplit(":", 1)
if index == 1:
    server = socket.create_server((host, int(port)))
    connection, _ = server.accept()
    connection.sendall(b"hello from w1")
    connection.close()
    sys.exit(0)
for _ in range(200):
    try:
        with socket.create_connection((host, int(port)), timeout=1) as sock:
            open(os.environ["MSG"], "w").write(sock.recv(100).decode())
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


def worker_pod(index: int) -> dict[str, Any]:
    hosts = [f"w{i}.pair-workers.default.svc:2222" for i in range(2)]
    tf_config = json.dumps(
        {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pair-1-w{index}", "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "hostname": f"w{index}",
            "subdomain": "pair-workers",
            "containers": [
                {
                    "name": "main",
                    "image": "python:emulated",
                    "command": [sys.executable, "-c", WORKER],
                    "env": [
                        {"name": "MSG", "value": "/dev/termination-log"},
                        {"name": "TF_CONFIG", "value": tf_config},
                    ],
                    "ports": [{"name": "worker", "containerPort": 2222}],
                }
            ],
        },
    }


def test_workers_reach_each_other_by_the_names_in_tf_config(
    kube_api: Cluster, kubelet: ProcessKubelet
) -> None:
    for index in (1, 0):
        kube_api.create(worker_pod(index))
    done = [
        kube_api.wait_for(
            "pods", "default", f"pair-1-w{i}", lambda p: p["status"].get("phase") == "Succeeded"
        )
        for i in (0, 1)
    ]
    message = done[0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message == "hello from w1"
    assert kubelet.errors == []
