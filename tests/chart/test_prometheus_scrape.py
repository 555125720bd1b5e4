"""A real Prometheus scrapes a real run on the emulated cluster; every query is evaluated.

The emulated cluster of ``tests/e2e`` (``tests/kube``'s API server, its
process kubelet as the one node, the real ``rekindle operator`` process) runs
two TrainingJobs: one whose code cannot load (Failed, invalid), and one whose
first pod's node is lost after epoch 4 with its newest checkpoint at epoch 3;
the operator replaces it at once and the second attempt resumes and stops
early. Every pod is ``rekindle-train`` started by the kubelet with the
environment the operator gave it. The trainer exits right after its early
stop, with no pause for a last scrape (as a pod on a cluster may be gone
before the next one): the job's results must then come from the operator's
per-job series, which are checked after the trainer's target went down.

Prometheus finds the trainer pods through the pod objects the operator
created and the node ports the kubelet gave them (what Kubernetes discovery
would give), and scrapes them and the operator with configurations
translated from the chart's rendered PodMonitor and ServiceMonitor, so the
labels every query relies on come from the chart's relabeling. Each panel,
annotation, variable and alert expression is then evaluated at moments of the
run and must return series with the labels its legend and grouping name; the
Goodput row's sums must equal the job's wall time.
"""

from __future__ import annotations

import math
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rekindle_operator.core.goodput import BadputCause
from rekindle_trainer import contract
from rekindle_trainer.contract import timestamps
from tests.chart import promserver
from tests.chart import queries as q
from tests.chart import rendering as r
from tests.e2e.emulated import TRAINER_IMAGE, EmulatedCluster
from tests.support.deps import REPO_ROOT, need_tool

NAMESPACE = "ml"
JOB = "digits"
OPERATOR_POD = "rk-rekindle-5d9c7-abcde"
#: Panels that stay empty while the operator makes no failed API call.
EMPTY_WHEN_HEALTHY = {"Kubernetes API errors"}
#: Alerts whose compared series do not exist in a healthy run: no job waits 30 minutes to
#: start, the operator stays up and makes no failed API call (promtool tests them).
QUIET_WHEN_HEALTHY = {"RekindleJobPending", "RekindleOperatorDown", "RekindleAPIErrors"}
#: The ``cluster`` label every target gets here, as a Thanos or Mimir in front of several
#: clusters would add it; the dashboard's cluster variable picks it.
CLUSTER = "test-cluster"
EPOCHS = 40
#: The digits example (fast to converge), pausing after each epoch so that a
#: 1 s scrape sees it, but not after the early stop (see scraped_model.py).
HYPERPARAMETERS = {"learningRate": 0.01, "epochPauseSeconds": 1.5}
#: The trainer pods' PYTHONPATH: this checkout's tests and trainer.
CHECKOUT_PATH = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "trainer_image")])
#: The chosen job's series, as the dashboard selects them.
JOB_SELECTOR = f'namespace="{NAMESPACE}", rekindle_job="{JOB}"'


@dataclass
class Run:
    """What the scenario leaves for the assertions."""

    prom: promserver.Prometheus
    #: The last scrape of the second attempt before it exited (trainer series are live).
    at: float
    #: After the operator recorded the job's success and the trainer's target went down.
    at_operator: float
    #: Just before the first attempt was lost (its checkpoint at epoch 3 was live).
    at_first: float
    start: float
    #: The job's status at the end, as the operator wrote it.
    status: dict[str, Any]
    #: The operator's /metrics text at the end (families without series show only here).
    operator_exposition: str = ""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The emulated cluster with its node and operator, Prometheus, and the story; then yields."""
    binary = need_tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus-scrape")
    objs = r.objects(
        r.merge(r.ALL_ON, {"monitoring": {"prometheusRule": {"restartStorm": {"restarts": 1}}}})
    )
    cluster = EmulatedCluster(workdir, namespace=NAMESPACE).start()
    try:
        assert cluster.operator is not None
        targets = workdir / "trainer-targets.json"
        promserver.write_targets(targets, [])
        jobs = _scrape_jobs(objs, cluster.operator.metrics_port, targets)
        with promserver.prometheus(binary, workdir, jobs) as prom:
            discovery = Discovery(r.one(objs, "PodMonitor"), targets, cluster)
            run = _scenario(prom, cluster, discovery)
            run.operator_exposition = _get(cluster.operator.metrics_port, "/metrics")
            yield run
    finally:
        print(f"--- operator log ---\n{cluster.operator_log_text()[-20000:]}")
        for pod in (f"{JOB}-1", f"{JOB}-2", "broken-1"):
            print(f"--- {pod} ---\n{cluster.trainer_log(pod)[-5000:]}")
        cluster.stop()


def _get(port: int, path: str) -> str:
    """GET a path on 127.0.0.1."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        text: str = response.read().decode()
        return text


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
    jobs += promserver.service_monitor_jobs(
        r.one(objs, "ServiceMonitor"), r.one(objs, "Service"), operator_pod, "1s"
    )
    for job in jobs:
        job["relabel_configs"].append({"target_label": "cluster", "replacement": CLUSTER})
    return jobs


@dataclass
class Discovery:
    """Kubernetes service discovery, stood in for: the job's pods and their node ports."""

    monitor: dict[str, Any]
    path: Path
    cluster: EmulatedCluster

    def refresh(self) -> int:
        """Write the targets the PodMonitor selects among the running pods; how many."""
        pods, addresses = [], {}
        for pod in self.cluster.pods(JOB):
            name = pod["metadata"]["name"]
            info = self.cluster.node.process(NAMESPACE, name)
            if info is None:
                continue
            (container,) = pod["spec"]["containers"]
            (port,) = [p for p in container["ports"] if p["name"] == contract.METRICS_PORT_NAME]
            addresses[name] = info.ports[port["containerPort"]]
            pods.append(pod)
        groups = promserver.pod_target_groups(self.monitor, pods, addresses)
        promserver.write_targets(self.path, groups)
        return len(groups)


def _job(name: str, entrypoint: str) -> dict[str, Any]:
    """A TrainingJob the emulated node runs with this checkout's trainer."""
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "image": TRAINER_IMAGE,
            "entrypoint": entrypoint,
            "training": {
                "epochs": EPOCHS,
                "batchSize": 32,
                "seed": 7,
                "hyperparameters": HYPERPARAMETERS,
            },
            "checkpoint": {"size": "1Gi", "everyEpochs": 3, "keep": 3},
            "earlyStopping": {
                "monitor": "val_loss",
                "minDelta": 0.01,
                "patience": 2,
                "mode": "min",
            },
            "restartPolicy": {"maxRestarts": 3, "backoff": {"initialSeconds": 1, "maxSeconds": 1}},
            # The entrypoint module lives in this checkout's tests; the trainer is this
            # checkout's too, even where the virtualenv's rekindle-train was installed from
            # another one (a worktree).
            "template": {"env": [{"name": "PYTHONPATH", "value": CHECKOUT_PATH}]},
        },
    }


def _scenario(prom: promserver.Prometheus, cluster: EmulatedCluster, discovery: Discovery) -> Run:
    """A job whose code cannot load; a job lost with its node, resumed, stopped early."""
    start = time.time()
    cluster.apply(_job("broken", "tests.chart.no_such_module:build"))
    cluster.apply(_job(JOB, "tests.chart.scraped_model:build"))

    cluster.node.wait_running(NAMESPACE, f"{JOB}-1", timeout=60)
    assert discovery.refresh() == 1, "the PodMonitor must select the operator's pod"
    # Four epochs trained, the newest checkpoint at epoch 3: a crash now loses work.
    prom.wait_for(f'rekindle_trainer_epoch{{rekindle_job="{JOB}", attempt="1"}} >= 4', 240)
    at_first = time.time()
    cluster.node.lose_node(NAMESPACE, f"{JOB}-1")
    cluster.node.wait_running(NAMESPACE, f"{JOB}-2", timeout=60)
    assert discovery.refresh() == 1
    finished = cluster.wait_phase(JOB, "Succeeded", timeout=300)
    cluster.wait_phase("broken", "Failed", timeout=120)
    # The trainer has exited: its target is down and its series went stale.
    prom.wait_for(f'up{{pod="{JOB}-2"}} == 0', 30)
    prom.wait_for(f"rekindle_operator_job_early_stop_epoch{{{JOB_SELECTOR}}}", 30)
    prom.wait_for(f'rekindle_operator_early_stops_total{{namespace="{NAMESPACE}"}}', 30)
    prom.wait_for(f'rekindle_operator_failed_jobs_total{{namespace="{NAMESPACE}"}}', 30)
    at_operator = time.time()
    at = prom.last_sample_time(
        f'rekindle_trainer_epoch{{{JOB_SELECTOR}, attempt="2"}}', at=at_operator
    )
    return Run(
        prom=prom,
        at=at,
        at_operator=at_operator,
        at_first=at_first,
        start=start,
        status=finished["status"],
    )


def _when(run: Run, expr: str) -> float:
    """When to evaluate: operator-only queries after the operator saw the end, others before."""
    names = q.metric_names(expr)
    if names and all(name.startswith("rekindle_operator_") for name in names):
        return run.at_operator
    return run.at


def _expand(expr: str) -> str:
    """Grafana's variables and macros filled in for the job under test."""
    return q.expand(expr, namespace=NAMESPACE, job=JOB, cluster=CLUSTER)


def _strip_threshold(expr: str) -> str:
    """An alert expression without its final comparison: the series it compares."""
    return re.sub(r"\s*(>=|<=|==|!=|>|<)\s*[0-9.e+]+\s*$", "", expr.strip())


def _check_series(
    query: q.Query, result: list[dict[str, Any]], jobs: frozenset[str] = frozenset({JOB})
) -> None:
    """Non-empty, every expected label set, series about the job(s) under test."""
    assert result, f"{query.source} {query.title!r} returned nothing: {query.expr}"
    for series in result:
        labels = series["metric"]
        missing = {label for label in query.labels if not labels.get(label)}
        assert not missing, f"{query.title!r}: series {labels} lacks {missing}"
        if "rekindle_job" in labels:
            assert labels["rekindle_job"] in jobs, labels
        if "namespace" in labels:
            assert labels["namespace"] == NAMESPACE, labels


@pytest.mark.slow
def test_every_panel_query_returns_labelled_series(run: Run) -> None:
    panels = [query for query in q.dashboard_queries() if query.source == "panel"]
    assert panels
    for query in panels:
        if q.metric_names(query.expr) <= q.EXTERNAL_SERIES:
            continue  # GPU and container panels: promtool evaluates them (test_dashboard.py)
        result = run.prom.query(_expand(query.expr), at=_when(run, query.expr))
        if not result and query.title in EMPTY_WHEN_HEALTHY:
            for name in q.metric_names(query.expr):
                assert f"# TYPE {name} " in run.operator_exposition, name
            continue
        _check_series(query, result)
        values = [float(series["value"][1]) for series in result]
        assert any(math.isfinite(v) for v in values), f"{query.title!r}: only NaN/Inf {values}"


def _panel(title: str, kind: str = "stat") -> q.Query:
    """The one query of the panel of type ``kind`` titled ``title``."""
    (panel,) = [p for p in q.dashboard()["panels"] if (p["title"], p["type"]) == (title, kind)]
    (target,) = panel["targets"]
    (query,) = {x for x in q.dashboard_queries() if (x.title, x.expr) == (title, target["expr"])}
    return query


@pytest.mark.slow
def test_panels_show_what_happened(run: Run) -> None:
    """The values tell the story of the run: a resume that lost an epoch, then an early stop.

    The early stop is read after the trainer exited, from the panels' own
    queries, and must agree with the job's status.
    """

    def value(expr: str, at: float) -> float:
        (series,) = run.prom.query(_expand(expr), at=at)
        return float(series["value"][1])

    job = 'namespace="$namespace", rekindle_job="$job"'
    assert value(f"max(rekindle_trainer_attempt{{{job}}})", run.at) == 2
    assert value(f"max(rekindle_trainer_restores_total{{{job}}})", run.at) == 1
    assert value(f"max(rekindle_trainer_lost_steps_total{{{job}}})", run.at) > 0
    assert not run.prom.query(_expand(f"rekindle_trainer_epoch{{{job}}}"), at=run.at_operator)
    stop_epoch = value(_panel("Early stop epoch").expr, run.at_operator)
    assert stop_epoch == run.status["earlyStopEpoch"] > 3
    saved = value(_panel("Epochs saved by early stopping").expr, run.at_operator)
    assert saved == EPOCHS - stop_epoch
    assert value(_panel("Epoch budget").expr, run.at_operator) == EPOCHS
    assert value(_panel("Attempt").expr, run.at_operator) == 2
    assert value(_panel("Epoch").expr, run.at_operator) == run.status["currentEpoch"]
    best = run.prom.query(_expand(_panel("Best monitored metric").expr), at=run.at_operator)
    assert [(s["metric"]["monitor"], float(s["value"][1])) for s in best] == [
        (run.status["bestMetric"]["name"], run.status["bestMetric"]["value"])
    ]
    phase = run.prom.query(_expand(_panel("Phase").expr), at=run.at_operator)
    assert [s["metric"]["phase"] for s in phase] == ["Succeeded"]
    job_restarts = run.prom.query(
        _expand(_panel("Restarts of this job by cause", "timeseries").expr), at=run.at_operator
    )
    assert [(s["metric"]["cause"], s["value"][1]) for s in job_restarts] == [("NodeLost", "1")]
    restarts = run.prom.query(
        _expand('sum by (cause) (rekindle_operator_restarts_total{namespace="$namespace"})'),
        at=run.at,
    )
    assert [(s["metric"]["cause"], s["value"][1]) for s in restarts] == [("NodeLost", "1")]


#: How far the Goodput row's sums may stray from the job's wall time. The operator writes
#: every value from one status document whose times keep microseconds and whose seconds are
#: sums of IEEE doubles; Prometheus stores and returns the exact doubles the exposition
#: printed (shortest round-trip repr). What is left is the summation error of a dozen
#: doubles below 10^4 s, about 10^-12 s: a millisecond is a bound that a real bug (one
#: second counted twice or lost) cannot hide under.
GOODPUT_TOLERANCE_SECONDS = 1e-3


@pytest.mark.slow
def test_goodput_adds_up_to_the_jobs_wall_time(run: Run) -> None:
    """The Goodput row's queries, on the real Prometheus after the job ended, sum to its wall time.

    The story leaves a mark on each cause it exercises: attempt 1, killed with its node,
    wrote no timing (unreported); attempt 2 restored the epoch-3 checkpoint and trained
    the lost steps again; both waited on saves; the trainer's startup counts.
    """
    at = run.at_operator

    def one(title: str, kind: str = "stat") -> float:
        (series,) = run.prom.query(_expand(_panel(title, kind).expr), at=at)
        return float(series["value"][1])

    productive, badput, wall = one("Productive time"), one("Badput"), one("Wall time accounted")
    by_cause = {
        s["metric"]["cause"]: float(s["value"][1])
        for s in run.prom.query(_expand(_panel("Badput by cause", "timeseries").expr), at=at)
    }
    goodput = run.status["goodput"]
    started = timestamps.parse_time(run.status["startTime"])
    completed = timestamps.parse_time(run.status["completionTime"])
    assert timestamps.parse_time(goodput["since"]) == started
    assert timestamps.parse_time(goodput["through"]) == completed
    assert run.start <= started.timestamp() <= completed.timestamp() <= run.at_operator
    tolerance = GOODPUT_TOLERANCE_SECONDS
    assert wall == pytest.approx((completed - started).total_seconds(), abs=tolerance)
    assert productive + badput == pytest.approx(wall, abs=tolerance)
    assert set(by_cause) == {cause.value for cause in BadputCause}
    assert sum(by_cause.values()) == pytest.approx(badput, abs=tolerance)
    assert min(by_cause.values()) >= 0
    assert productive > 0
    for cause in ("unreported", "restore", "lost_work_replayed", "startup", "checkpoint_stall"):
        assert by_cause[cause] > 0, (cause, by_cause)
    assert one("Goodput") == pytest.approx(productive / wall)
    assert goodput["productiveSeconds"] == pytest.approx(productive, abs=tolerance)


@pytest.mark.slow
def test_the_job_row_stays_filled_after_the_trainer_exited(run: Run) -> None:
    """Every single-value panel of the job still shows a value once its pod is gone."""
    stats = [p for p in q.dashboard()["panels"] if p["type"] == "stat"]
    assert stats
    for panel in stats:
        query = _panel(panel["title"])
        result = run.prom.query(_expand(query.expr), at=run.at_operator)
        _check_series(query, result)


@pytest.mark.slow
def test_every_annotation_query_marks_the_run(run: Run) -> None:
    for query in (x for x in q.dashboard_queries() if x.source == "annotation"):
        result = run.prom.query(_expand(query.expr), at=_when(run, query.expr))
        _check_series(query, result)


@pytest.mark.slow
def test_variables_list_the_cluster_the_namespace_and_the_job(run: Run) -> None:
    expected = {"cluster": CLUSTER, "namespace": NAMESPACE, "rekindle_job": JOB}
    variables = [x for x in q.dashboard_queries() if x.source == "variable"]
    assert {label for query in variables for label in query.labels} == set(expected)
    for query in variables:
        (label,) = query.labels
        values = run.prom.label_values(label, _expand(query.expr), run.start, run.at_operator)
        assert expected[label] in values, (query, values)


@pytest.mark.slow
def test_every_alert_expression_returns_labelled_series(run: Run) -> None:
    """Each alert's compared series exist at some moment of the run, with the labels it groups by.

    A trainer rule's series exist only in its state: "since last checkpoint"
    while an attempt that has saved runs (the first, before it was lost),
    "since attempt start" while one that has not saved yet runs (the second,
    which stopped early before its next save). The job alerts on the operator's series fire
    as written: the broken job failed and the other restarted minutes ago at most. Those
    quiet in a healthy run must still evaluate, on series that exist.
    """
    # The run lasts well under a minute: the storm's window is sampled every second (the
    # scrape interval) so that it holds points from before the restart; at the default 1m
    # the subquery's minute-aligned steps may all fall outside so short a run.
    storm = {"restarts": 1, "resolution": "1s"}
    alerts = q.alert_queries({"monitoring": {"prometheusRule": {"restartStorm": storm}}})
    assert {query.title for query in alerts} >= QUIET_WHEN_HEALTHY
    jobs = frozenset({JOB, "broken"})
    for query in alerts:
        compared = _strip_threshold(query.expr)
        results = [
            run.prom.query(compared, at=at) for at in (run.at_first, run.at, run.at_operator)
        ]
        if query.title in QUIET_WHEN_HEALTHY and not any(results):
            for name in q.metric_names(query.expr) - q.PROMETHEUS_SERIES:
                assert f"# TYPE {name.removesuffix('_total')}" in run.operator_exposition, name
            continue
        assert any(results), f"alert {query.title!r}: {compared} returned nothing at any moment"
        for result in results:
            if result:
                _check_series(query, result, jobs)
        if query.title in {"RekindleJobFailed", "RekindleRestartStorm"}:
            _check_series(query, run.prom.query(query.expr, at=run.at_operator), jobs)


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
    missing = named - scraped - declared - q.PROMETHEUS_SERIES - q.EXTERNAL_SERIES
    assert not missing, f"named by queries but not exported: {sorted(missing)}"


@pytest.mark.slow
def test_both_targets_were_up_with_chart_labels(run: Run) -> None:
    up = run.prom.query("max_over_time(up[10m]) == 1", at=run.at)
    jobs = {series["metric"]["job"] for series in up}
    assert jobs == {f"{r.NAMESPACE}/rk-rekindle-trainers", "rk-rekindle-metrics"}, jobs
