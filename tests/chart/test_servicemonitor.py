"""The operator's ServiceMonitor (templates/servicemonitor.yaml)."""

from __future__ import annotations

from typing import Any

from tests.chart import rendering as r


def _objs(extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    base = {"monitoring": {"serviceMonitor": {"enabled": True}}}
    return r.objects(r.merge(base, extra or {}))


def test_off_by_default() -> None:
    assert not r.of_kind(r.objects({}), "ServiceMonitor")


def test_selects_the_metrics_service_port() -> None:
    objs = _objs()
    monitor = r.one(objs, "ServiceMonitor")
    service = r.one(objs, "Service")
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert service["metadata"]["labels"][key] == value
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [r.NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_keeps_the_operators_namespace_label() -> None:
    """The operator's `namespace` label is the job's namespace, not the operator's."""
    (endpoint,) = r.one(_objs(), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True


def test_labels_and_interval_from_values() -> None:
    extra = {"monitoring": {"serviceMonitor": {"labels": {"release": "kps"}, "interval": "1m"}}}
    monitor = r.one(_objs(extra), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"][0]["interval"] == "1m"


def test_validates_against_the_prometheus_operator_crd() -> None:
    assert not r.crd_errors(r.one(_objs(), "ServiceMonitor"), r.prometheus_operator_validators())
