"""Helpers (templates/_helpers.tpl): names carry the chart prefix and fit in 63 characters."""

from __future__ import annotations

import re

import yaml

from tests.chart import rendering as r

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _names(**kwargs: object) -> set[str]:
    objs = r.objects(r.merge(r.ALL_ON, dict(kwargs)), name=str(kwargs.get("_release", r.RELEASE)))
    return {o["metadata"]["name"] for o in objs}


def test_every_helper_is_prefixed_with_the_chart_name() -> None:
    text = (r.CHART_DIR / "templates" / "_helpers.tpl").read_text()
    defined = re.findall(r'define "([^"]+)"', text)
    assert defined
    assert all(name.startswith("rekindle.") for name in defined), defined


def test_names_use_release_and_chart() -> None:
    objs = r.objects(r.ALL_ON)
    deployment = r.one(objs, "Deployment")
    assert deployment["metadata"]["name"] == "rk-rekindle"
    assert r.one(objs, "Service")["metadata"]["name"] == "rk-rekindle-metrics"
    assert r.one(objs, "PodMonitor")["metadata"]["name"] == "rk-rekindle-trainers"


def test_release_containing_the_chart_name_is_not_repeated() -> None:
    objs = r.objects({}, name="rekindle")
    assert r.one(objs, "Deployment")["metadata"]["name"] == "rekindle"


def test_long_release_names_are_truncated_to_valid_dns_labels() -> None:
    release = "a-very-long-release-name-that-goes-on-and-on-x"  # 46 characters, Helm allows 53
    objs = r.objects(r.ALL_ON, name=release)
    for obj in objs:
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        assert DNS_LABEL.match(name), name
    suffixed = {o["metadata"]["name"] for o in objs if o["kind"] in {"Service", "PodMonitor"}}
    assert all(name.endswith(("-metrics", "-trainers")) for name in suffixed), suffixed


def test_fullname_override_is_truncated() -> None:
    objs = r.objects({"fullnameOverride": "x" * 70})
    assert r.one(objs, "Deployment")["metadata"]["name"] == "x" * 63
    service = r.one(objs, "Service")["metadata"]["name"]
    assert len(service) <= 63
    assert service.endswith("-metrics")


def test_every_object_has_the_standard_labels() -> None:
    chart = yaml.safe_load((r.CHART_DIR / "Chart.yaml").read_text())
    for obj in r.objects(r.ALL_ON):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == r.RELEASE, obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
        assert labels["helm.sh/chart"] == f"rekindle-{chart['version']}", obj["kind"]
        assert labels["app.kubernetes.io/version"] == chart["appVersion"], obj["kind"]
