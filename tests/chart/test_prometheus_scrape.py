"""A real Prometheus scrapes a real trainer run and the real operator; every query is evaluated.

The trainer is ``rekindle-train`` itself (two attempts of one job: the first
is SIGKILLed after epoch 3 with its newest checkpoint at epoch 2, the second
resumes and stops early). The operator is the real ``rekindle operator``
process against the emulated Kubernetes API of ``tests/kube``: it creates the
job's pods, and this test reports each pod's end the way a kubelet would (the
first lost with its node, the second finished with the real trainer's
termination message), so every operator metric comes from the operator's own
reconciles. A second job fails with an invalid configuration.

Prometheus scrapes both through configurations translated from the chart's
rendered PodMonitor and ServiceMonitor, so the labels every query relies on
come from the chart's relabeling. Then each panel, annotation, variable and
alert expression is evaluated (trainer queries while the second attempt
lingered after its early stop, operator queries once the operator recorded the
job's success) and must return series with the labels its legend and grouping
name.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from tests.chart import promserver
from tests.chart import queries as q
from tests.chart import rendering as r
from tests.kube.cluster import Cluster
from tests.operator.test_operator import (
    OperatorProcess,
    end_pod,
    install_crds,
    stop_cluster,
    terminated,
    training_job,
    wait_status,
)
from tests.support.deps import REPO_ROOT, need_tool

NAMESPACE = "ml"
JOB = "digits"
OPERATOR_POD = "rk-rekindle-5d9c7-abcde"
#: Panels that stay empty while the operator makes no failed API call.
EMPTY_WHEN_HEALTHY = {"Kubernetes API errors"}
#: What Grafana would put in for its interval macros over a short time range.
MACROS = {"$__rate_interval": "5m", "$__interval": "1m"}
EPOCHS = 40
TRAINER_CONFIG: dict[str, Any] = {
    "entrypoint": "tests.chart.scraped_model:build",
    "epochs": EPOCHS,
    "batchSize": 32,
    "seed": 7,
    "hyperparameters": {"learningRate": 0.01, "epochPauseSeconds": 1.0, "finalPauseSeconds": 8.0},
    "checkpoint": {"everyEpochs": 2, "keep": 3},
    "earlyStopping": {
        "enabled": True,
        "monitor": "val_loss",
        "minDelta": 0.01,
        "patience": 2,
        "mode": "min",
    },
}


@dataclass
class Run:
    """What the scenario leaves for the assertions."""

    prom: promserver.Prometheus
    #: While the second attempt lingered after its early stop (trainer series are live).
    at: float
    #: After the operator recorded the job's success (the trainer is gone by then).
    at_operator: float
    start: float
    #: The operator's /metrics text at the end (families without series show only here).
    operator_exposition: str = ""
    trainer_logs: list[Path] = field(default_factory=list)


def _start_trainer(workdir: Path, attempt: int, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """``rekindle-train`` for one attempt, configured through the contract's environment."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        contract.ENV_CONFIG: json.dumps(TRAINER_CONFIG),
        contract.ENV_CHECKPOINT_DIR: str(workdir / "checkpoints"),
        contract.ENV_ATTEMPT: str(attempt),
        contract.ENV_JOB_NAME: JOB,
        contract.ENV_JOB_NAMESPACE: NAMESPACE,
        contract.ENV_METRICS_PORT: str(port),
        contract.ENV_TERMINATION_LOG: str(workdir / f"termination-{attempt}.json"),
        contract.ENV_PROGRESS_FILE: str(workdir / f"progress-{attempt}.jsonl"),
    }
    log = workdir / f"trainer-{attempt}.log"
    train = Path(sys.executable).with_name("rekindle-train")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(train)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir
        )
    return process, log


def _wait_progress(path: Path, process: subprocess.Popen[bytes], kind: str, epoch: int) -> None:
    """Block until the trainer reports ``kind`` for ``epoch`` in its progress file."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                event = json.loads(line)
                if event["kind"] == kind and event.get("epoch") == epoch:
                    return
        assert process.poll() is None, f"trainer exited early with {process.returncode}"
        time.sleep(0.1)
    raise AssertionError(f"no {kind} for epoch {epoch} in {path}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Cluster, operator, Prometheus and two trainer attempts; yields once the job succeeded."""
    binary = need_tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus-scrape")
    objs = r.objects(
        r.merge(r.ALL_ON, {"monitoring": {"prometheusRule": {"restartStorm": {"restarts": 1}}}})
    )
    ports = {1: promserver.free_port(), 2: promserver.free_port()}
    cluster = Cluster(workdir / "cluster").start()
    try:
        cluster.ensure_namespace(NAMESPACE)
        install_crds(cluster)
        operator = OperatorProcess(cluster, workdir / "operator.log")
        targets = workdir / "trainer-targets.json"
        promserver.write_targets(targets, [])
        jobs = _scrape_jobs(objs, operator.metrics_port, targets)
        with promserver.prometheus(binary, workdir, jobs) as prom:
            operator.start()
            try:
                monitor = r.one(objs, "PodMonitor")
                run = _scenario(prom, workdir, cluster, ports, Discovery(monitor, targets, ports))
                run.operator_exposition = operator.get("metrics", "/metrics")[1]
                yield run
            finally:
                operator.stop()
                print(f"--- operator log ---\n{operator.log_text()[-20000:]}")
    finally:
        stop_cluster(cluster)


def _scrape_jobs(
    objs: list[dict[str, Any]], operator_port: int, targets: Path
) -> list[dict[str, Any]]:
    """Scrape configs from the chart's monitors: the operator, and trainer pods from ``targets``."""
    deployment = r.one(objs, "Deployment")
    operator_pod = promserver.PodTarget(
        operator_port,
        r.NAMESPACE,
        OPERATOR_POD,
        deployment["spec"]["template"]["metadata"]["labels"],
        container="operator",
    )
    jobs = promserver.pod_monitor_jobs(r.one(objs, "PodMonitor"), targets, "1s")
    return jobs + promserver.service_monitor_jobs(
        r.one(objs, "ServiceMonitor"), r.one(objs, "Service"), operator_pod, "1s"
    )


@dataclass
class Discovery:
    """Kubernetes service discovery, stood in for: the job's real pods, written for Prometheus."""

    monitor: dict[str, Any]
    path: Path
    ports: dict[int, int]

    def refresh(self, cluster: Cluster) -> int:
        """Write the targets the PodMonitor selects among the job's pods; how many."""
        pods = cluster.list("pods", NAMESPACE, f"rekindle.dev/job={JOB}")
        addresses = {f"{JOB}-{attempt}": port for attempt, port in self.ports.items()}
        groups = promserver.pod_target_groups(self.monitor, pods, addresses)
        promserver.write_targets(self.path, groups)
        return len(groups)


def _scenario(
    prom: promserver.Prometheus,
    workdir: Path,
    cluster: Cluster,
    ports: dict[int, int],
    discovery: Discovery,
) -> Run:
    """A failed job, then a job lost with its node, resumed and stopped early."""
    start = time.time()
    backoff = {"backoff": {"initialSeconds": 1, "maxSeconds": 1}}

    # Another job in the namespace fails: its code cannot load.
    cluster.create(training_job("broken", NAMESPACE, restartPolicy=backoff))
    cluster.wait_for("pods", NAMESPACE, "broken-1", lambda _: True, what="the broken pod")
    invalid = contract.TerminationMessage(contract.Outcome.INVALID, error="entrypoint: no module")
    end_pod(cluster, NAMESPACE, "broken-1", terminated(2, message=invalid))
    wait_status(cluster, NAMESPACE, "broken", {"phase": "Failed"})

    cluster.create(training_job(JOB, NAMESPACE, training={"epochs": EPOCHS}, restartPolicy=backoff))
    cluster.wait_for("pods", NAMESPACE, f"{JOB}-1", lambda _: True, what="the first pod")
    assert discovery.refresh(cluster) == 1, "the PodMonitor must select the operator's pod"
    first, first_log = _start_trainer(workdir, 1, ports[1])
    logs = [first_log]
    try:
        _wait_progress(workdir / "progress-1.jsonl", first, "epoch_end", 3)
        prom.wait_for(f'rekindle_trainer_epoch{{rekindle_job="{JOB}", attempt="1"}} >= 3', 30)
        first.send_signal(signal.SIGKILL)  # the node is lost mid-run
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    end_pod(cluster, NAMESPACE, f"{JOB}-1", terminated(137, pod_reason="NodeLost"))
    cluster.wait_for("pods", NAMESPACE, f"{JOB}-2", lambda _: True, what="the replacement pod")
    discovery.refresh(cluster)

    second, second_log = _start_trainer(workdir, 2, ports[2])
    logs.append(second_log)
    try:
        prom.wait_for(f'rekindle_trainer_early_stop_epoch{{rekindle_job="{JOB}"}} > 0', 240)
        at = time.time()
        second.wait(timeout=120)
        assert second.returncode == 0, second_log.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
    message = contract.TerminationMessage.from_json((workdir / "termination-2.json").read_text())
    assert message.outcome is contract.Outcome.EARLY_STOPPED
    end_pod(cluster, NAMESPACE, f"{JOB}-2", terminated(0, message=message))
    wait_status(cluster, NAMESPACE, JOB, {"phase": "Succeeded"})
    prom.wait_for(f'rekindle_operator_early_stops_total{{namespace="{NAMESPACE}"}}', 30)
    return Run(prom=prom, at=at, at_operator=time.time(), start=start, trainer_logs=logs)


def _when(run: Run, expr: str) -> float:
    """When to evaluate: operator-only queries after the operator saw the end, others before."""
    names = q.metric_names(expr)
    if names and all(name.startswith("rekindle_operator_") for name in names):
        return run.at_operator
    return run.at


def _expand(expr: str) -> str:
    """Grafana's variables and macros filled in for the job under test."""
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    return expr.replace("$namespace", NAMESPACE).replace("$job", JOB)


def _strip_threshold(expr: str) -> str:
    """An alert expression without its final comparison: the series it compares."""
    return re.sub(r"\s*(>=|<=|==|!=|>|<)\s*[0-9.e+]+\s*$", "", expr.strip())


def _check_series(query: q.Query, result: list[dict[str, Any]]) -> None:
    """Non-empty, every expected label set, trainer series about the job under test."""
    assert result, f"{query.source} {query.title!r} returned nothing: {query.expr}"
    for series in result:
        labels = series["metric"]
        missing = {label for label in query.labels if not labels.get(label)}
        assert not missing, f"{query.title!r}: series {labels} lacks {missing}"
        if "rekindle_job" in labels:
            assert labels["rekindle_job"] == JOB, labels
        if "namespace" in labels:
            assert labels["namespace"] == NAMESPACE, labels


@pytest.mark.slow
def test_every_panel_query_returns_labelled_series(run: Run) -> None:
    panels = [query for query in q.dashboard_queries() if query.source == "panel"]
    assert panels
    for query in panels:
        result = run.prom.query(_expand(query.expr), at=_when(run, query.expr))
        if not result and query.title in EMPTY_WHEN_HEALTHY:
            for name in q.metric_names(query.expr):
                assert f"# TYPE {name} " in run.operator_exposition, name
            continue
        _check_series(query, result)
        values = [float(series["value"][1]) for series in result]
        assert any(math.isfinite(v) for v in values), f"{query.title!r}: only NaN/Inf {values}"


@pytest.mark.slow
def test_panels_show_what_happened(run: Run) -> None:
    """The values tell the story of the run: a resume that lost an epoch, then an early stop."""

    def value(expr: str) -> float:
        (series,) = run.prom.query(_expand(expr), at=run.at)
        return float(series["value"][1])

    job = 'namespace="$namespace", rekindle_job="$job"'
    assert value(f"max(rekindle_trainer_attempt{{{job}}})") == 2
    assert value(f"max(rekindle_trainer_restores_total{{{job}}})") == 1
    assert value(f"max(rekindle_trainer_lost_steps_total{{{job}}})") > 0
    stop_epoch = value(f"max(rekindle_trainer_early_stop_epoch{{{job}}})")
    assert stop_epoch > 3
    saved = value(f"max(rekindle_trainer_epochs_saved_by_early_stopping{{{job}}})")
    assert saved == EPOCHS - stop_epoch
    restarts = run.prom.query(
        _expand('sum by (cause) (rekindle_operator_restarts_total{namespace="$namespace"})'),
        at=run.at,
    )
    assert [(s["metric"]["cause"], s["value"][1]) for s in restarts] == [("NodeLost", "1")]


@pytest.mark.slow
def test_every_annotation_query_marks_the_run(run: Run) -> None:
    for query in (x for x in q.dashboard_queries() if x.source == "annotation"):
        result = run.prom.query(_expand(query.expr), at=run.at)
        _check_series(query, result)


@pytest.mark.slow
def test_variables_list_the_namespace_and_the_job(run: Run) -> None:
    for query in (x for x in q.dashboard_queries() if x.source == "variable"):
        (label,) = query.labels
        values = run.prom.label_values(label, _expand(query.expr), run.start, run.at)
        assert (NAMESPACE if label == "namespace" else JOB) in values, (query, values)


@pytest.mark.slow
def test_every_alert_expression_returns_labelled_series(run: Run) -> None:
    """Each alert's compared series exist with the labels it groups by; the operator alerts fire."""
    alerts = q.alert_queries({"monitoring": {"prometheusRule": {"restartStorm": {"restarts": 1}}}})
    assert alerts
    for query in alerts:
        at = _when(run, query.expr)
        _check_series(query, run.prom.query(_strip_threshold(query.expr), at=at))
        if query.title in {"RekindleJobFailed", "RekindleRestartStorm"}:
            # A failure and a restart were recorded minutes ago at most: these fire as written.
            _check_series(query, run.prom.query(query.expr, at=at))


@pytest.mark.slow
def test_every_metric_a_query_names_was_scraped(run: Run) -> None:
    """No query names a metric that the running code does not export."""
    scraped = set(
        run.prom.label_values("__name__", '{__name__=~"rekindle_.+"}', run.start, run.at_operator)
    )
    named = {
        name
        for query in q.dashboard_queries() + q.alert_queries()
        for name in q.metric_names(query.expr)
    }
    declared = set(re.findall(r"^# TYPE (\S+) ", run.operator_exposition, re.MULTILINE))
    missing = named - scraped - declared
    assert not missing, f"named by queries but not exported: {sorted(missing)}"


@pytest.mark.slow
def test_both_targets_were_up_with_chart_labels(run: Run) -> None:
    up = run.prom.query("max_over_time(up[10m]) == 1", at=run.at)
    jobs = {series["metric"]["job"] for series in up}
    assert jobs == {f"{r.NAMESPACE}/rk-rekindle-trainers", "rk-rekindle-metrics"}, jobs
