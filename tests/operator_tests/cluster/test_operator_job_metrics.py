"""The real operator exports each job's results from its status, and drops them when it is deleted.

The trainer's own gauges go with its pod; these stay for as long as the
TrainingJob exists. One job is preempted once, then stops early; ``/metrics``
must then show its stop epoch, the epochs that saved, its restarts by cause and
its best metric, and nothing about it once it is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rekindle_operator.core import metric_names
from rekindle_trainer import contract
from tests.kube.cluster import Cluster
from tests.operator_tests.cluster.test_operator import (
    emulated_cluster,
    end_pod,
    terminated,
    training_job,
    wait_status,
)
from tests.support.operator_process import OperatorProcess, running_operator

NS = "results"
JOB = "stopper"
EPOCHS = 10
#: (family, labels besides namespace and rekindle_job) -> value.
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with emulated_cluster(tmp_path_factory.mktemp("cluster"), NS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster.kubeconfig, log) as process:
        yield process


def job_series(operator: OperatorProcess, job: str) -> Series:
    """The per-job series of ``job`` in the operator's ``/metrics`` right now."""
    code, text = operator.get("metrics", "/metrics")
    assert code == 200
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if sample.name not in metric_names.JOB_METRICS:
                continue
            if labels.pop("namespace") != NS or labels.pop(metric_names.JOB_LABEL) != job:
                continue
            found[(sample.name, frozenset(labels.items()))] = sample.value
    return found


def wait_series(
    operator: OperatorProcess, job: str, done: Callable[[Series], bool], timeout: float = 10
) -> Series:
    """Poll ``/metrics`` until ``done`` holds for the job's series (the status is written first)."""
    deadline = time.monotonic() + timeout
    while True:
        series = job_series(operator, job)
        if done(series):
            return series
        if time.monotonic() > deadline:
            raise AssertionError(f"series of {job} never got there: {series}")
        time.sleep(0.1)


@pytest.mark.slow
def test_an_early_stopped_jobs_results_stay_until_it_is_deleted(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(training_job(JOB, NS, training={"epochs": EPOCHS}))
    cluster.wait_for("pods", NS, f"{JOB}-1", lambda _: True, what="the first pod")
    preempted = contract.TerminationMessage(contract.Outcome.PREEMPTED, epoch=3, step=120)
    end_pod(cluster, NS, f"{JOB}-1", terminated(143, message=preempted))
    wait_status(cluster, NS, JOB, {"attempt": 2})
    running = wait_series(
        operator, JOB, lambda s: s.get((metric_names.JOB_ATTEMPT, frozenset())) == 2
    )
    assert running[(metric_names.JOB_RESTARTS, frozenset({("cause", "Preempted")}))] == 1
    assert running[(metric_names.JOB_EPOCHS_TRAINED, frozenset())] == 3
    assert running[(metric_names.JOB_EPOCHS_BUDGET, frozenset())] == EPOCHS
    assert (metric_names.JOB_EARLY_STOP_EPOCH, frozenset()) not in running

    stopped = contract.TerminationMessage(
        contract.Outcome.EARLY_STOPPED,
        epoch=6,
        step=240,
        best_metric=0.08,
        monitor="val_loss",
        best_epoch=4,
        early_stop_epoch=6,
        checkpoint="ckpt-000006-0000000240",
    )
    end_pod(cluster, NS, f"{JOB}-2", terminated(0, message=stopped))
    wait_status(cluster, NS, JOB, {"phase": "Succeeded"})
    series = wait_series(
        operator, JOB, lambda s: (metric_names.JOB_EARLY_STOP_EPOCH, frozenset()) in s
    )
    assert series[(metric_names.JOB_EARLY_STOP_EPOCH, frozenset())] == 6
    assert series[(metric_names.JOB_EPOCHS_SAVED, frozenset())] == EPOCHS - 6
    assert series[(metric_names.JOB_EPOCHS_TRAINED, frozenset())] == 6
    assert series[(metric_names.JOB_BEST_METRIC, frozenset({("monitor", "val_loss")}))] == 0.08
    assert series[(metric_names.JOB_PHASE, frozenset({("phase", "Succeeded")}))] == 1
    assert (metric_names.JOB_COMPLETION_TIME, frozenset()) in series
    time.sleep(1)  # nothing about the pod's end makes them go away
    assert job_series(operator, JOB) == series

    cluster.delete("trainingjobs", NS, JOB)
    wait_series(operator, JOB, lambda s: not s)
