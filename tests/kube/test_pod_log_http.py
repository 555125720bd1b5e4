"""``GET pods/NAME/log`` over HTTP: the process kubelet's output, as the API server serves it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest

from tests.kube.cluster import Cluster
from tests.kube.kubelet import KubeletError, ProcessKubelet
from tests.kube.test_kubelet import NS, SCRATCH_ENV, phase_is, python_pod

k8s: Any = kubernetes
ApiException = kubernetes.client.ApiException

#: Prints three lines per run; the first run fails, so OnFailure restarts it once.
TWO_RUNS = """
import os, sys
flag = os.path.join(os.environ["SCRATCH"], "tried")
run = 2 if os.path.exists(flag) else 1
for i in range(3):
    print(f"run {run} line {i}", flush=True)
if run == 1:
    open(flag, "w").close()
    sys.exit(1)
"""


@pytest.fixture
def core(kube_api: Cluster) -> Iterator[Any]:
    api_client = k8s.config.new_client_from_config(config_file=str(kube_api.kubeconfig))
    yield k8s.client.CoreV1Api(api_client)
    api_client.close()


def message(exc: Any) -> str:
    """The ``message`` of the ``kind: Status`` body of an API error."""
    text: str = json.loads(exc.body)["message"]
    return text


def http_error(url: str) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)
    return caught.value.code, caught.value.read().decode()


def test_log_with_tail_lines_and_previous(
    kube_api: Cluster, kubelet: ProcessKubelet, core: Any
) -> None:
    kube_api.create(python_pod("twice", TWO_RUNS, env=SCRATCH_ENV, restart="OnFailure"))
    kube_api.wait_for("pods", NS, "twice", phase_is("Succeeded"))

    current = "run 2 line 0\nrun 2 line 1\nrun 2 line 2\n"
    assert core.read_namespaced_pod_log("twice", NS) == current
    assert core.read_namespaced_pod_log("twice", NS, container="main", tail_lines=2) == (
        "run 2 line 1\nrun 2 line 2\n"
    )
    assert core.read_namespaced_pod_log("twice", NS, previous=True, tail_lines=1) == (
        "run 1 line 2\n"
    )
    assert kubelet.logs(NS, "twice") == current
    assert kubelet.logs(NS, "twice", previous=True).startswith("run 1 line 0\n")

    url = f"{kube_api.url}/api/v1/namespaces/{NS}/pods/twice/log?tailLines=1"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.read() == b"run 2 line 2\n"


def test_previous_log_not_kept_is_400(
    kube_api: Cluster, kubelet: ProcessKubelet, core: Any
) -> None:
    kube_api.create(python_pod("once", "print('only run')"))
    kube_api.wait_for("pods", NS, "once", phase_is("Succeeded"))
    assert core.read_namespaced_pod_log("once", NS) == "only run\n"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("once", NS, previous=True)
    assert caught.value.status == 400
    assert 'previous terminated container "main" in pod "once" not found' in message(caught.value)
    with pytest.raises(KubeletError, match="previous terminated container"):
        kubelet.logs(NS, "once", previous=True)


def test_unknown_pod_is_404_and_bad_options_are_rejected(
    kube_api: Cluster, kubelet: ProcessKubelet, core: Any
) -> None:
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("absent", NS)
    assert caught.value.status == 404
    kube_api.create(python_pod("quiet", "pass"))
    base = f"{kube_api.url}/api/v1/namespaces/{NS}/pods/quiet/log"
    status, body = http_error(base + "?container=sidecar")
    assert (status, "container sidecar is not valid for pod quiet" in body) == (400, True)
    status, body = http_error(base + "?tailLines=-2")
    assert (status, "tailLines" in body) == (422, True)


def test_a_pod_not_started_has_no_log_yet(
    kube_api: Cluster, kubelet: ProcessKubelet, core: Any
) -> None:
    kubelet.unpullable.add("registry/missing:1")
    kube_api.create(python_pod("pulling", "pass", image="registry/missing:1"))
    kube_api.wait_for(
        "pods",
        NS,
        "pulling",
        lambda p: bool((p.get("status") or {}).get("containerStatuses")),
        what="a waiting container status",
    )
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("pulling", NS)
    assert caught.value.status == 400
    assert 'container "main" in pod "pulling" is waiting to start: ImagePullBackOff' in message(
        caught.value
    )


def test_without_a_kubelet_the_log_is_a_clear_400(kube_api: Cluster, core: Any) -> None:
    kube_api.create(python_pod("nowhere", "pass"))
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("nowhere", NS)
    assert caught.value.status == 400
    assert "start a process kubelet" in message(caught.value)
