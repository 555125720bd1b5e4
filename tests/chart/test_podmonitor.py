"""The trainer PodMonitor (templates/podmonitor.yaml)."""

from __future__ import annotations

from typing import Any

from rekindle_trainer import contract
from tests.chart import rendering as r


def _monitor(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    base = {"monitoring": {"podMonitor": {"enabled": True}}}
    return r.one(r.objects(r.merge(base, extra or {})), "PodMonitor")


def test_off_by_default() -> None:
    assert not r.of_kind(r.objects({}), "PodMonitor")


def test_selects_trainer_pods_by_their_metrics_port() -> None:
    monitor = _monitor()
    assert monitor["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "rekindle-trainer"}
    }
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == contract.METRICS_PORT_NAME
    assert endpoint["path"] == contract.METRICS_PATH


def test_copies_job_and_attempt_labels_from_the_pod() -> None:
    (endpoint,) = _monitor()["spec"]["podMetricsEndpoints"]
    targets = {rule["targetLabel"]: rule["sourceLabels"] for rule in endpoint["relabelings"]}
    assert targets == {
        "rekindle_job": ["__meta_kubernetes_pod_label_rekindle_dev_job"],
        "attempt": ["__meta_kubernetes_pod_label_rekindle_dev_attempt"],
    }


def test_namespace_selector_follows_watch_scope() -> None:
    assert _monitor()["spec"]["namespaceSelector"] == {"any": True}
    namespaced = _monitor(r.nested({"watch.scope": "namespaced"}))
    assert namespaced["spec"]["namespaceSelector"] == {"matchNames": list(r.WATCHED)}


def test_validates_against_the_prometheus_operator_crd() -> None:
    assert not r.crd_errors(_monitor(), r.prometheus_operator_validators())
    bad = _monitor()
    bad["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["sourceLabel"] = "typo"
    assert r.crd_errors(bad, r.prometheus_operator_validators())


def test_selects_the_pods_the_operator_builds() -> None:
    """The operator's own pod builder makes pods this PodMonitor scrapes, with both labels."""
    from rekindle_operator.core import job_spec
    from rekindle_operator.resources import pods
    from tests.chart import promserver
    from tests.operator_tests.cluster.test_operator import training_job

    job = training_job("digits", "ml")
    job["metadata"]["uid"] = "0c6b3c5e-1111-4222-8333-444455556666"
    spec = job_spec.parse_spec(job["spec"])
    pod = pods.build_pod(job, spec, 3, job_spec.trainer_document(spec))
    pod["metadata"].setdefault("namespace", "ml")
    (group,) = promserver.pod_target_groups(_monitor(), [pod], {pod["metadata"]["name"]: 1})
    labels = group["labels"]
    assert labels["__meta_kubernetes_pod_container_port_name"] == contract.METRICS_PORT_NAME
    assert labels["__meta_kubernetes_pod_label_rekindle_dev_job"] == "digits"
    assert labels["__meta_kubernetes_pod_label_rekindle_dev_attempt"] == "3"
