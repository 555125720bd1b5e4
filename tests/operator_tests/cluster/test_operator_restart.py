"""An operator killed and restarted at any moment: no duplicate pod, no lost or doubled count.

Each test kills the real ``rekindle operator`` process with SIGKILL (no clean-up,
as when its node dies), changes the cluster while it is down, starts a new one
and checks that it carries on from what the cluster holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rekindle_operator.core import job_spec
from rekindle_operator.resources import pods
from tests.kube.cluster import Cluster
from tests.operator_tests.cluster.test_operator import (
    emulated_cluster,
    end_pod,
    terminated,
    trainer_pods,
    training_job,
    wait_event,
    wait_status,
)
from tests.support.operator_process import OperatorProcess

NS = "restarts"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with emulated_cluster(tmp_path_factory.mktemp("cluster"), NS) as cluster:
        yield cluster


@pytest.fixture
def operators(cluster: Cluster, tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    """Operators started by a test (one at a time); all stopped at teardown."""
    started: list[OperatorProcess] = []
    yield started
    for process in started:
        process.stop()
        print(f"--- {process.log} ---\n{process.log_text()[-20000:]}")


def start_operator(cluster: Cluster, operators: list[OperatorProcess], tmp_path: Path) -> None:
    log = tmp_path / f"operator-{len(operators)}.log"
    operators.append(OperatorProcess(cluster.kubeconfig, log).start())


def settle(seconds: float = 1.5) -> None:
    """Give a (wrong) duplicate the time to appear before asserting it did not."""
    time.sleep(seconds)


@pytest.mark.slow
def test_an_end_seen_by_no_operator_is_counted_once_after_restarts(
    cluster: Cluster, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    start_operator(cluster, operators, tmp_path)
    cluster.create(training_job("down", NS))
    cluster.wait_for("pods", NS, "down-1", lambda _: True)
    operators[-1].kill()
    end_pod(cluster, NS, "down-1", terminated(143))  # preempted while no operator runs

    start_operator(cluster, operators, tmp_path)
    job = wait_status(cluster, NS, "down", {"attempt": 2})
    assert job["status"]["restarts"]["byCause"] == {"Preempted": 1}
    operators[-1].kill()
    start_operator(cluster, operators, tmp_path)
    settle()
    job = cluster.get("trainingjobs", NS, "down")
    assert job["status"]["attempt"] == 2
    assert job["status"]["restarts"]["total"] == 1
    assert trainer_pods(cluster, NS, "down") == ["down-1", "down-2"]


@pytest.mark.slow
def test_a_crash_between_creating_the_pod_and_writing_the_status_makes_no_duplicate(
    cluster: Cluster, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    start_operator(cluster, operators, tmp_path)
    cluster.create(training_job("window", NS))
    cluster.wait_for("pods", NS, "window-1", lambda _: True)
    operators[-1].kill()
    # What a killed operator leaves: the attempt ended and its replacement exists,
    # but the status still says attempt 1 (the pod is created before the status).
    end_pod(cluster, NS, "window-1", terminated(143))
    job = cluster.get("trainingjobs", NS, "window")
    spec = job_spec.parse_spec(job["spec"])
    cluster.create(pods.build_pod(job, spec, 2, job_spec.trainer_document(spec)))

    start_operator(cluster, operators, tmp_path)
    job = wait_status(cluster, NS, "window", {"attempt": 2})
    settle()
    job = cluster.get("trainingjobs", NS, "window")
    assert job["status"]["restarts"]["total"] == 1
    assert trainer_pods(cluster, NS, "window") == ["window-1", "window-2"]


@pytest.mark.slow
def test_a_pod_deleted_while_no_operator_runs_is_a_disruption_counted_once(
    cluster: Cluster, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    start_operator(cluster, operators, tmp_path)
    cluster.create(training_job("vanish", NS))
    cluster.wait_for("pods", NS, "vanish-1", lambda _: True)
    operators[-1].kill()
    cluster.delete("pods", NS, "vanish-1")

    start_operator(cluster, operators, tmp_path)
    job = wait_status(cluster, NS, "vanish", {"attempt": 2})
    assert job["status"]["restarts"]["byCause"] == {"Deleted": 1}
    wait_event(cluster, job, ("Normal", "Restarting"))
    settle()
    assert trainer_pods(cluster, NS, "vanish") == ["vanish-2"]


@pytest.mark.slow
def test_a_backoff_survives_a_restart_and_ends_in_one_new_attempt(
    cluster: Cluster, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    start_operator(cluster, operators, tmp_path)
    backoff = {"backoff": {"initialSeconds": 3, "maxSeconds": 3}}
    cluster.create(training_job("waiting", NS, restartPolicy=backoff))
    cluster.wait_for("pods", NS, "waiting-1", lambda _: True)
    end_pod(cluster, NS, "waiting-1", terminated(1))
    job = wait_status(cluster, NS, "waiting", {"phase": "Restarting", "reason": "BackOff"})
    assert job["status"]["nextAttemptTime"]
    operators[-1].kill()
    start_operator(cluster, operators, tmp_path)
    job = wait_status(cluster, NS, "waiting", {"attempt": 2, "phase": "Pending"}, timeout=20)
    assert job["status"]["restarts"] == {
        "total": 1,
        "failures": 1,
        "disruptions": 0,
        "byCause": {"Crashed": 1},
    }
    settle()
    assert trainer_pods(cluster, NS, "waiting") == ["waiting-1", "waiting-2"]


@pytest.mark.slow
def test_one_broken_job_does_not_block_the_others(
    cluster: Cluster, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    # Every read of this one job fails, as if the API server choked on it.
    path = f"/apis/rekindle.dev/v1alpha1/namespaces/{NS}/trainingjobs/broken"
    cluster.emulator["get", path] << 503
    start_operator(cluster, operators, tmp_path)
    cluster.create(training_job("broken", NS))
    cluster.create(training_job("healthy", NS))
    cluster.wait_for("pods", NS, "healthy-1", lambda _: True)
    end_pod(cluster, NS, "healthy-1", terminated(0))
    wait_status(cluster, NS, "healthy", {"phase": "Succeeded"})
    assert cluster.find("pods", NS, "broken-1") is None
    deadline = time.monotonic() + 20  # the client retries a few times before the pass fails
    while "Reconcile failed" not in operators[-1].log_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = operators[-1].log_text()
    assert "Reconcile failed" in log
    assert "HTTP 503" in log
    text = operators[-1].get("metrics", "/metrics")[1]
    assert (
        'rekindle_operator_api_errors_total{code="503",resource="trainingjobs",verb="get"}' in text
    )
