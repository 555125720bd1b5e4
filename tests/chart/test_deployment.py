"""The operator Deployment (templates/deployment.yaml)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.chart import rendering as r

APP_VERSION = yaml.safe_load((r.CHART_DIR / "Chart.yaml").read_text())["appVersion"]


def _deployment(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return r.one(r.objects(values), "Deployment")


def _container(values: dict[str, Any] | None = None) -> dict[str, Any]:
    containers = _deployment(values)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_image_tag_defaults_to_app_version() -> None:
    assert _container()["image"] == f"ghcr.io/rekindle-dev/operator:{APP_VERSION}"
    assert _container({"image": {"tag": "1.2.3"}})["image"].endswith(":1.2.3")
    digest = "sha256:" + "a" * 64
    assert _container({"image": {"digest": digest}})["image"].endswith(f"@{digest}")


def test_cluster_scope_runs_all_namespaces_with_ports_and_peering() -> None:
    container = _container()
    assert container["command"] == ["rekindle"]
    assert container["args"] == [
        "operator",
        "--all-namespaces",
        "--metrics-port=8000",
        "--liveness-port=8080",
        f"--peering={r.RELEASE}",
    ]


def test_namespaced_scope_passes_each_namespace() -> None:
    values = r.nested({"watch.scope": "namespaced", "operator.peeringName": "team-peering"})
    args = _container(values)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        f"--namespace={n}" for n in r.WATCHED
    ]
    assert "--all-namespaces" not in args
    assert "--peering=team-peering" in args


def test_ports_follow_values_and_probes_use_kopf_health_endpoint() -> None:
    container = _container({"operator": {"metricsPort": 9300, "livenessPort": 8181}})
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9300, "healthz": 8181}
    assert "--metrics-port=9300" in container["args"]
    assert "--liveness-port=8181" in container["args"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}


def test_pod_id_names_the_replica_in_kopf_peering() -> None:
    env = {
        e["name"]: e
        for e in _container({"operator": {"env": [{"name": "X", "value": "1"}]}})["env"]
    }
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["X"]["value"] == "1"


def test_restricted_security_context() -> None:
    deployment = _deployment()
    pod = deployment["spec"]["template"]["spec"]
    container = _container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "privileged" not in container["securityContext"]


def test_resources_have_requests_and_a_memory_limit() -> None:
    resources = _container()["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_one_replica_has_no_spread_rules() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    assert _deployment()["spec"]["replicas"] == 1
    assert "affinity" not in pod
    assert "topologySpreadConstraints" not in pod


def test_several_replicas_are_spread_across_nodes() -> None:
    deployment = _deployment({"replicaCount": 2})
    pod = deployment["spec"]["template"]["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == selector
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector


def test_user_affinity_and_spread_replace_the_defaults() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["sys"]}]}
                ]
            }
        }
    }
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"a": "b"}},
        }
    ]
    pod = _deployment(
        {"replicaCount": 3, "affinity": affinity, "topologySpreadConstraints": spread}
    )
    spec = pod["spec"]["template"]["spec"]
    assert spec["affinity"] == affinity
    assert spec["topologySpreadConstraints"] == spread


def test_selector_matches_pod_labels_and_user_labels_cannot_break_it() -> None:
    deployment = _deployment({"podLabels": {"app.kubernetes.io/component": "hijack", "team": "ml"}})
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for key, value in deployment["spec"]["selector"]["matchLabels"].items():
        assert labels[key] == value
    assert labels["team"] == "ml"


def test_selector_never_matches_trainer_pods() -> None:
    selector = _deployment()["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/name"] != "rekindle-trainer"


def test_the_operator_cli_accepts_the_rendered_arguments() -> None:
    """The chart's arguments mean what the chart intends to `rekindle operator` itself."""
    from rekindle_operator import cli
    from rekindle_operator.cluster import operator_command

    for values in ({}, r.nested({"watch.scope": "namespaced", "operator.metricsPort": 9300})):
        container = _container(values)
        assert container["command"] == ["rekindle"]
        options = operator_command.options_from(cli.build_parser().parse_args(container["args"]))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert options.metrics_port == ports["metrics"]
        assert options.liveness_port == ports["healthz"]
        assert options.peering == r.RELEASE
        assert not options.standalone
        if values:
            assert options.namespaces == r.WATCHED
            assert not options.all_namespaces
        else:
            assert options.all_namespaces
            assert options.namespaces == ()
