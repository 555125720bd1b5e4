"""The operator's metrics carry exactly the names the chart's dashboard and alerts use."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rekindle_operator import metric_names
from rekindle_operator.operator_metrics import OperatorMetrics


def families(metrics: OperatorMetrics) -> dict[str, object]:
    text = generate_latest(metrics.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_declared_name_is_registered_and_nothing_else() -> None:
    # Histograms' "_created" series show as families of their own in the text format.
    registered = {n for n in families(OperatorMetrics()) if not n.endswith("_created")}
    declared = {name.removesuffix("_total") for name in metric_names.OPERATOR_METRICS}
    assert registered == declared


def test_jobs_by_phase_counts_the_last_phase_of_each_job() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ml", "a", "Running")
    metrics.set_phase("ml", "b", "Running")
    metrics.set_phase("ml", "b", "Succeeded")
    metrics.set_phase("cv", "c", "Running")
    metrics.forget("ml", "a")
    text = generate_latest(metrics.registry).decode()
    assert f'{metric_names.JOBS}{{namespace="ml",phase="Succeeded"}} 1.0' in text
    assert f'{metric_names.JOBS}{{namespace="cv",phase="Running"}} 1.0' in text
    assert 'namespace="ml",phase="Running"' not in text


def test_counters_and_histograms_use_the_declared_labels() -> None:
    metrics = OperatorMetrics()
    metrics.restarts.labels("ml", "Preempted").inc()
    metrics.early_stops.labels("ml").inc()
    metrics.failures.labels("ml", "MaxRestartsExceeded").inc()
    metrics.api_errors.labels("patch", "pods", "409").inc()
    metrics.reconcile_seconds.observe(0.02)
    metrics.reaction_seconds.observe(0.1)
    text = generate_latest(metrics.registry).decode()
    assert f'{metric_names.RESTARTS}{{cause="Preempted",namespace="ml"}} 1.0' in text
    assert f'{metric_names.EARLY_STOPS}{{namespace="ml"}} 1.0' in text
    assert f'{metric_names.FAILURES}{{namespace="ml",reason="MaxRestartsExceeded"}} 1.0' in text
    assert f'{metric_names.API_ERRORS}{{code="409",resource="pods",verb="patch"}} 1.0' in text
    assert f"{metric_names.RECONCILE_SECONDS}_count 1.0" in text
    assert f'{metric_names.REACTION_SECONDS}_bucket{{le="0.25"}} 1.0' in text


def test_two_operators_in_one_process_do_not_collide() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()
    first.restarts.labels("ml", "Evicted").inc()
    assert "Evicted" not in generate_latest(second.registry).decode()
