"""The optional NetworkPolicy (templates/networkpolicy.yaml)."""

from __future__ import annotations

from typing import Any

from rekindle_operator.resources import ownership
from rekindle_trainer import contract
from tests.chart import rendering as r


def _objs(extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return r.objects(r.merge({"networkPolicy": {"enabled": True}}, extra or {}))


def test_off_by_default() -> None:
    assert not r.of_kind(r.objects({}), "NetworkPolicy")


def test_only_metrics_ingress_and_dns_api_server_and_trainer_progress_egress() -> None:
    objs = _objs()
    policy = r.one(objs, "NetworkPolicy")["spec"]
    deployment = r.one(objs, "Deployment")
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert "from" not in ingress  # empty metricsFrom: any scraper
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (9102, "TCP")}


def test_the_operator_may_read_trainers_progress_in_any_namespace() -> None:
    (rule,) = [
        rule
        for rule in r.one(_objs(), "NetworkPolicy")["spec"]["egress"]
        if rule["ports"] == [{"port": contract.DEFAULT_METRICS_PORT, "protocol": "TCP"}]
    ]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"] == {}
    assert peer["podSelector"]["matchLabels"] == {ownership.LABEL_APP: ownership.TRAINER_APP}


def test_restricted_scrapers_and_api_server_cidrs() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    extra = {"networkPolicy": {"metricsFrom": [peer], "apiServerCIDRs": ["10.0.0.1/32"]}}
    objs = _objs(extra)
    policy = r.one(objs, "NetworkPolicy")["spec"]
    peers = policy["ingress"][0]["from"]
    assert peers[0] == peer
    # The helm test pods may still reach the metrics port.
    allowed = peers[1]["podSelector"]["matchLabels"]
    test_pods = r.of_kind(objs, "Pod")
    assert len(test_pods) == 2
    for test_pod in test_pods:
        assert all(test_pod["metadata"]["labels"][k] == v for k, v in allowed.items())
    assert policy["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
