"""RBAC for a named identity: the chart's own rules decide the operator's calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.kube import chart_rbac, rbac
from tests.kube.cluster import Cluster
from tests.support.kubectl import Kubectl
from tests.support.operator_process import running_operator

NS = "default"
POD_READER = {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}


def attrs(verb: str, resource: str, sub: str | None = None, name: str | None = None) -> Any:
    return rbac.Attributes(verb, "", resource, sub, NS, name)


@pytest.mark.parametrize(
    ("rule", "request_attrs", "expected"),
    [
        (POD_READER, attrs("get", "pods", name="p"), True),
        (POD_READER, attrs("get", "pods", "log", "p"), True),
        (POD_READER, attrs("get", "pods", "status", "p"), False),
        (POD_READER, attrs("watch", "pods"), False),
        (POD_READER, attrs("get", "configmaps", name="c"), False),
        ({**POD_READER, "resourceNames": ["p"]}, attrs("get", "pods", name="q"), False),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, attrs("delete", "pods"), True),
        (
            {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["get"]},
            attrs("get", "pods"),
            False,
        ),
    ],
)
def test_rules(rule: dict[str, Any], request_attrs: rbac.Attributes, expected: bool) -> None:
    assert rbac.rule_allows(rule, request_attrs) is expected


def test_verbs_of_requests() -> None:
    assert rbac.verb_of("GET", None, {"watch": "true"}) == "watch"
    assert rbac.verb_of("GET", None, {}) == "list"
    assert rbac.verb_of("GET", "x", {}) == "get"
    assert rbac.verb_of("DELETE", None, {}) == "deletecollection"
    assert rbac.verb_of("PUT", "x", {}) == "update"


def test_the_operator_identity_gets_only_what_the_chart_grants(
    kube_api: Cluster, tmp_path: Path
) -> None:
    operator = chart_rbac.install(kube_api)
    assert operator.user == "system:serviceaccount:rekindle-system:rk-rekindle"
    as_operator = Kubectl(kube_api.kubeconfig_for(operator), tmp_path / "cache", NS)
    claim = (
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
        "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
    )
    assert as_operator.run("create", "-f", "-", input=claim).stdout.strip() == (
        "persistentvolumeclaim/c created"
    )
    assert as_operator.run("get", "pvc", "c", "-o", "name").stdout.strip() == (
        "persistentvolumeclaim/c"
    )
    refused = as_operator.run("delete", "pvc", "c", check=False)
    assert refused.returncode == 1
    assert (
        'persistentvolumeclaims "c" is forbidden: User '
        '"system:serviceaccount:rekindle-system:rk-rekindle" cannot delete resource '
        '"persistentvolumeclaims" in API group "" in the namespace "default"'
    ) in refused.stderr
    assert as_operator.run("get", "pods", "-A").returncode == 0
    assert as_operator.run("get", "configmaps", check=False).returncode == 1
    assert len(kube_api.emulator.denied) == 2
    # The cluster's own kubeconfig is an administrator's.
    admin = Kubectl(kube_api.kubeconfig, tmp_path / "admin-cache", NS)
    assert admin.run("get", "pvc", "c", "-o", "name").stdout.strip() == "persistentvolumeclaim/c"


@pytest.mark.slow
def test_the_operator_runs_within_the_charts_rbac(kube_api: Cluster, tmp_path: Path) -> None:
    operator = chart_rbac.install(kube_api)
    kubeconfig = kube_api.kubeconfig_for(operator)
    with running_operator(kubeconfig, tmp_path / "operator.log"):
        kube_api.create(
            {
                "apiVersion": "rekindle.dev/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": "job"},
                "spec": {
                    "image": "trainer:emulated",
                    "entrypoint": "rekindle_trainer.examples.digits:build",
                    "training": {"epochs": 2},
                },
            },
            NS,
        )
        kube_api.wait_for("pods", NS, "job-1", lambda _: True, what="the first pod")
        kube_api.wait_for(
            "tj", NS, "job", lambda j: bool((j.get("status") or {}).get("phase")), what="a phase"
        )
        kube_api.delete("pods", NS, "job-1")
        kube_api.wait_for("pods", NS, "job-2", lambda _: True, what="a replacement pod")
    assert kube_api.emulator.denied == [], "a call the chart does not grant"
    [token] = [t for t, who in kube_api.emulator.identities.items() if who == operator]
    checked = [
        r
        for r in kube_api.emulator
        if r.resource is not None and r.headers.get("Authorization") == f"Bearer {token}"
    ]
    assert {r.method for r in checked} >= {"GET", "POST", "PATCH"}, "it ran as the chart's SA"
