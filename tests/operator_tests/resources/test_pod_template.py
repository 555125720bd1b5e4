"""The whole pod template passes through to the trainer pod, field by field.

Rekindle's own fields (the trainer container's name, command, contract env,
checkpoint mount, termination message, metrics port) stay Rekindle's: a
template that tries to take them is refused with the field named, by the CRD's
CEL rules (``tests/operator_tests/manifests/invalid/``) and by the builder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from rekindle_operator.resources import crd, pods, validation
from rekindle_trainer import contract
from tests.operator_tests.resources.test_pods import build, container

REPO = Path(__file__).resolve().parents[3]

SIDECAR = {
    "name": "log-shipper",
    "image": "fluent/fluent-bit:3.1",
    "env": [{"name": "OUT", "value": "loki"}],
    "ports": [{"name": "http", "containerPort": 2020}],
}
INIT = {"name": "fetch-data", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}
NATIVE_SIDECAR = {"name": "cache", "image": "redis:7", "restartPolicy": "Always"}
SPREAD = {
    "maxSkew": 1,
    "topologyKey": "topology.kubernetes.io/zone",
    "whenUnsatisfiable": "ScheduleAnyway",
    "labelSelector": {"matchLabels": {"rekindle.dev/job": "digits"}},
}
CLAIM = {"name": "gpu", "resourceClaimTemplateName": "one-h100"}


@pytest.mark.parametrize(
    ("template", "pod_field", "value"),
    [
        ({"serviceAccountName": "reader"}, "serviceAccountName", "reader"),
        ({"imagePullSecrets": [{"name": "regcred"}]}, "imagePullSecrets", [{"name": "regcred"}]),
        ({"runtimeClassName": "nvidia"}, "runtimeClassName", "nvidia"),
        ({"schedulerName": "volcano"}, "schedulerName", "volcano"),
        ({"topologySpreadConstraints": [SPREAD]}, "topologySpreadConstraints", [SPREAD]),
        ({"initContainers": [INIT, NATIVE_SIDECAR]}, "initContainers", [INIT, NATIVE_SIDECAR]),
        ({"resourceClaims": [CLAIM]}, "resourceClaims", [CLAIM]),
        ({"automountServiceAccountToken": True}, "automountServiceAccountToken", True),
    ],
)
def test_each_pod_field_of_the_template_reaches_the_pod(
    template: dict[str, Any], pod_field: str, value: Any
) -> None:
    assert build(template=template)["spec"][pod_field] == value


@pytest.mark.parametrize(
    "pod_field",
    [
        "serviceAccountName",
        "imagePullSecrets",
        "runtimeClassName",
        "schedulerName",
        "topologySpreadConstraints",
        "initContainers",
        "resourceClaims",
    ],
)
def test_pod_fields_the_template_leaves_out_are_left_out(pod_field: str) -> None:
    assert pod_field not in build()["spec"]


def test_no_api_token_is_mounted_unless_asked() -> None:
    assert build()["spec"]["automountServiceAccountToken"] is False


def test_sidecars_run_after_the_trainer_which_stays_first() -> None:
    containers = build(template={"sidecars": [SIDECAR]})["spec"]["containers"]
    assert [c["name"] for c in containers] == [pods.CONTAINER_NAME, "log-shipper"]
    assert containers[1] == SIDECAR


@pytest.mark.parametrize("field", ["sidecars", "initContainers"])
def test_no_extra_container_may_take_the_trainers_name(field: str) -> None:
    clash = {"name": pods.CONTAINER_NAME, "image": "x:1"}
    with pytest.raises(pods.PodSpecError, match=rf"spec\.template\.{field}\[0\]\.name: .*trainer"):
        build(template={field: [clash]})


def test_the_trainer_uses_the_dra_claims_the_spec_names() -> None:
    pod = build(
        resources={"claims": [{"name": "gpu"}]},
        template={"resourceClaims": [CLAIM]},
    )
    assert container(pod)["resources"]["claims"] == [{"name": "gpu"}]
    assert pod["spec"]["resourceClaims"] == [CLAIM]


def test_an_image_built_to_run_as_root_gets_a_numeric_non_root_user() -> None:
    security = build()["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == pods.DEFAULT_RUN_AS_USER
    assert security["runAsGroup"] == pods.DEFAULT_RUN_AS_USER


def test_the_default_user_is_the_trainer_images_own() -> None:
    dockerfile = (REPO / "trainer_image" / "Dockerfile").read_text()
    match = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert match is not None
    assert (int(match[1]), int(match[2])) == (pods.DEFAULT_RUN_AS_USER, pods.DEFAULT_RUN_AS_USER)


def test_the_templates_user_wins_and_no_default_group_is_invented() -> None:
    security = build(template={"securityContext": {"runAsUser": 1234}})["spec"]["securityContext"]
    assert security["runAsUser"] == 1234
    assert "runAsGroup" not in security


def test_the_templates_group_is_kept_beside_the_default_user() -> None:
    security = build(template={"securityContext": {"runAsGroup": 50}})["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (pods.DEFAULT_RUN_AS_USER, 50)


def test_a_template_that_allows_root_gets_no_default_user_in_pod_or_trainer() -> None:
    pod = build(template={"securityContext": {"runAsNonRoot": False}})
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is False
    assert "runAsUser" not in pod["spec"]["securityContext"]
    assert container(pod)["securityContext"]["runAsNonRoot"] is False


def test_pod_security_overrides_merge_over_rekindles() -> None:
    over = {"fsGroup": 2000, "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}
    security = build(template={"securityContext": over})["spec"]["securityContext"]
    assert security["fsGroup"] == 2000
    assert security["fsGroupChangePolicy"] == "OnRootMismatch"
    assert security["seccompProfile"] == {"type": "Localhost", "localhostProfile": "p"}


def test_container_security_overrides_merge_key_by_key() -> None:
    over = {"capabilities": {"add": ["IPC_LOCK"]}, "readOnlyRootFilesystem": True}
    security = container(build(template={"containerSecurityContext": over}))["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False


def test_passed_through_values_are_copies() -> None:
    spec_sidecar = {"name": "s", "image": "x:1", "env": [{"name": "A", "value": "1"}]}
    pod = build(template={"sidecars": [spec_sidecar], "initContainers": [INIT]})
    pod["spec"]["containers"][1]["env"][0]["value"] = "changed"
    again = build(template={"sidecars": [spec_sidecar], "initContainers": [INIT]})
    assert again["spec"]["containers"][1]["env"][0]["value"] == "1"


def test_a_pod_with_every_template_field_passes_the_kubernetes_schema() -> None:
    pod = build(
        resources={"gpus": 1, "claims": [{"name": "gpu"}]},
        template={
            "serviceAccountName": "reader",
            "imagePullSecrets": [{"name": "regcred"}],
            "runtimeClassName": "nvidia",
            "schedulerName": "volcano",
            "topologySpreadConstraints": [SPREAD],
            "securityContext": {"runAsGroup": 50, "supplementalGroups": [7]},
            "containerSecurityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
            "initContainers": [INIT, NATIVE_SIDECAR],
            "sidecars": [SIDECAR],
            "resourceClaims": [CLAIM],
        },
    )
    kubernetes_validate.validate(pod, "1.33.0", strict=True)


def test_the_whole_template_manifest_builds_a_pod_kubernetes_accepts() -> None:
    path = Path(__file__).parents[1] / "manifests" / "valid" / "whole-pod-template.yaml"
    manifest = validation.load(path)
    job = {**manifest.document, "metadata": {**manifest.document["metadata"], "namespace": "ml"}}
    job["metadata"]["uid"] = "0b6f3c2e-5d1a-4c1e-9f3e-2f7a1c9d8e01"
    pod = pods.build_pod(job, manifest.spec, 1, {})
    kubernetes_validate.validate(pod, "1.33.0", strict=True)
    assert pod["spec"]["securityContext"]["runAsUser"] == 2000
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["fetch-data", "cache"]


def test_the_crds_rules_reserve_what_the_builder_and_the_contract_use() -> None:
    """The CEL rules spell the trainer's container name and metrics port as the code does."""
    template = crd.version_schema(crd.load_crd())["properties"]["spec"]["properties"]["template"]
    for field in ("sidecars", "initContainers"):
        item = template["properties"][field]["items"]
        (name_rule,) = item["x-kubernetes-validations"]
        assert name_rule["rule"] == f"self.name != '{pods.CONTAINER_NAME}'"
        (port_rule,) = item["properties"]["ports"]["items"]["x-kubernetes-validations"]
        assert f"self.containerPort != {contract.DEFAULT_METRICS_PORT}" in port_rule["rule"]
        assert f"self.name != '{contract.METRICS_PORT_NAME}'" in port_rule["rule"]
