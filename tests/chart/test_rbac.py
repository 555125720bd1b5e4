"""RBAC (templates/rbac.yaml): exactly the calls in rekindle_operator.permissions, no wildcard."""

from __future__ import annotations

from typing import Any

import pytest

from rekindle_operator import permissions
from rekindle_operator.permissions import Mode, Permission
from tests.chart import rendering as r


def _allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether any rule grants ``verb`` on ``group``/``resource`` (exact names only)."""
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        for rule in rules
    )


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Every (group, resource, verb) the rules grant."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def _needed(mode: Mode) -> set[tuple[str, str, str]]:
    """Every (group, resource, verb) the operator uses in ``mode``."""
    return {(p.group, p.resource, verb) for p in permissions.for_mode(mode) for verb in p.verbs}


def _values(mode: Mode) -> dict[str, Any]:
    return r.nested({"watch.scope": mode.value})


def test_cluster_mode_one_clusterrole_bound_to_the_service_account() -> None:
    objs = r.objects(_values(Mode.CLUSTER))
    assert not r.of_kind(objs, "Role")
    assert not r.of_kind(objs, "RoleBinding")
    role = r.one(objs, "ClusterRole")
    binding = r.one(objs, "ClusterRoleBinding")
    account = r.one(objs, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": r.NAMESPACE}
    ]
    deployment = r.one(objs, "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )


def test_namespaced_mode_a_role_in_each_watched_namespace_and_no_cluster_access() -> None:
    objs = r.objects(_values(Mode.NAMESPACED))
    assert not r.of_kind(objs, "ClusterRole")
    assert not r.of_kind(objs, "ClusterRoleBinding")
    roles = {o["metadata"]["namespace"]: o for o in r.of_kind(objs, "Role")}
    bindings = {o["metadata"]["namespace"]: o for o in r.of_kind(objs, "RoleBinding")}
    assert set(roles) == set(bindings) == set(r.WATCHED)
    for namespace, binding in bindings.items():
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
        assert binding["subjects"][0]["namespace"] == r.NAMESPACE


@pytest.mark.parametrize("mode", list(Mode))
def test_every_call_the_operator_makes_is_allowed(mode: Mode) -> None:
    objs = r.objects(_values(mode))
    rule_sets = [o["rules"] for o in objs if o["kind"] in {"Role", "ClusterRole"}]
    assert rule_sets
    for rules in rule_sets:
        for permission in permissions.for_mode(mode):
            for verb in sorted(permission.verbs):
                assert _allows(rules, permission.group, permission.resource, verb), (
                    f"{mode}: rendered rules do not allow {verb} on "
                    f"{permission.group or 'core'}/{permission.resource} ({permission.why}); "
                    "add it to charts/rekindle/templates/rbac.yaml"
                )


@pytest.mark.parametrize("mode", list(Mode))
def test_nothing_is_granted_that_the_operator_does_not_use(mode: Mode) -> None:
    objs = r.objects(_values(mode))
    for obj in objs:
        if obj["kind"] in {"Role", "ClusterRole"}:
            extra = _grants(obj["rules"]) - _needed(mode)
            assert not extra, f"{obj['kind']} grants calls not in permissions.py: {sorted(extra)}"


@pytest.mark.parametrize("mode", list(Mode))
def test_no_wildcards_and_no_escalation(mode: Mode) -> None:
    for obj in r.objects(_values(mode)):
        if obj["kind"] not in {"Role", "ClusterRole"}:
            continue
        assert "aggregationRule" not in obj
        for rule in obj["rules"]:
            assert "nonResourceURLs" not in rule
            assert "resourceNames" not in rule or rule["resourceNames"]
            for field in ("apiGroups", "resources", "verbs"):
                assert rule[field], f"empty {field} in {rule}"
                assert all("*" not in item for item in rule[field]), f"wildcard in {rule}"
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_namespaced_mode_needs_only_namespaced_resources() -> None:
    """A Role cannot grant a cluster-scoped resource; the chart has no ClusterRole in this mode."""
    cluster_scoped = [p for p in permissions.for_mode(Mode.NAMESPACED) if not p.namespaced]
    assert not cluster_scoped, (
        "permissions.py lists cluster-scoped calls for namespaced mode; "
        "the chart would need a ClusterRole there too"
    )


def test_permissions_are_well_formed() -> None:
    known_verbs = {
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    }
    seen: set[tuple[str, str]] = set()
    for permission in permissions.PERMISSIONS:
        assert isinstance(permission, Permission)
        assert permission.verbs, permission
        assert permission.verbs <= known_verbs, permission
        assert permission.modes, permission
        assert permission.why, permission
        assert (permission.group, permission.resource) not in seen, permission
        seen.add((permission.group, permission.resource))


def test_rbac_create_false_renders_no_rbac() -> None:
    objs = r.objects({"rbac": {"create": False}})
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & {
        o["kind"] for o in objs
    }


def test_existing_service_account_is_bound() -> None:
    objs = r.objects({"serviceAccount": {"create": False, "name": "mine"}})
    assert not r.of_kind(objs, "ServiceAccount")
    assert r.one(objs, "ClusterRoleBinding")["subjects"][0]["name"] == "mine"
    assert r.one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
