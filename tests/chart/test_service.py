"""The metrics Service (templates/service.yaml)."""

from __future__ import annotations

from tests.chart import rendering as r


def test_service_selects_the_operator_and_targets_the_metrics_port() -> None:
    objs = r.objects({"operator": {"metricsPort": 9400}})
    service = r.one(objs, "Service")
    deployment = r.one(objs, "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    assert port == {"name": "metrics", "port": 9400, "targetPort": "metrics", "protocol": "TCP"}
    assert service["spec"]["type"] == "ClusterIP"
