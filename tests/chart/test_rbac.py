"""RBAC (templates/rbac.yaml): exactly the calls in resources.permissions, no wildcard."""

from __future__ import annotations

from typing import Any

import pytest

from rekindle_operator.resources import permissions
from rekindle_operator.resources.permissions import Mode, Permission
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


def _operator_roles(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's own (Cluster)Roles; the user-facing ones are tested below."""
    return [
        o
        for o in objs
        if o["kind"] in {"Role", "ClusterRole"}
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    ]


def _user_roles(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The aggregated user-facing ClusterRoles, by name suffix (``view``, ``edit``)."""
    return {
        o["metadata"]["name"].rsplit("-", 1)[1]: o
        for o in r.of_kind(objs, "ClusterRole")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "user-roles"
    }


def test_cluster_mode_one_clusterrole_bound_to_the_service_account() -> None:
    objs = r.installed(r.objects(_values(Mode.CLUSTER)))
    assert not r.of_kind(objs, "Role")
    assert not r.of_kind(objs, "RoleBinding")
    (role,) = _operator_roles(objs)
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
    objs = r.installed(r.objects(_values(Mode.NAMESPACED)))
    assert {o["kind"] for o in _operator_roles(objs)} == {"Role"}
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
    rule_sets = [o["rules"] for o in _operator_roles(objs)]
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
    for obj in _operator_roles(r.objects(_values(mode))):
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
    objs = r.installed(r.objects({"serviceAccount": {"create": False, "name": "mine"}}))
    assert not r.of_kind(objs, "ServiceAccount")
    assert r.one(objs, "ClusterRoleBinding")["subjects"][0]["name"] == "mine"
    assert r.one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def _aggregated(objs: list[dict[str, Any]], role: str) -> set[tuple[str, str, str]]:
    """What the chart adds to built-in ClusterRole ``role`` through its aggregation label."""
    label = f"rbac.authorization.k8s.io/aggregate-to-{role}"
    return {
        grant
        for o in r.of_kind(objs, "ClusterRole")
        if o["metadata"]["labels"].get(label) == "true"
        for grant in _grants(o["rules"])
    }


@pytest.mark.parametrize("mode", list(Mode))
def test_user_roles_aggregate_into_view_edit_and_admin(mode: Mode) -> None:
    objs = r.objects(_values(mode))
    roles = _user_roles(objs)
    assert {name: o["metadata"]["name"] for name, o in roles.items()} == {
        "view": "rk-rekindle-view",
        "edit": "rk-rekindle-edit",
    }
    reads = {("rekindle.dev", res, verb) for res in ("trainingjobs", "trainingjobs/status")
             for verb in ("get", "list", "watch")}  # fmt: skip
    writes = {
        ("rekindle.dev", "trainingjobs", verb)
        for verb in ("create", "update", "patch", "delete", "deletecollection")
    }
    assert _aggregated(objs, "view") == reads
    assert _aggregated(objs, "edit") == reads | writes
    assert _aggregated(objs, "admin") == reads | writes


def test_user_roles_never_write_the_status_and_never_touch_pods() -> None:
    """The status is the operator's; pods come only from the operator (Pod Security applies)."""
    for role in _user_roles(r.objects({})).values():
        for group, resource, verb in _grants(role["rules"]):
            assert group == "rekindle.dev", role["rules"]
            assert resource != "trainingjobs/status" or verb in {"get", "list", "watch"}
        assert "aggregationRule" not in role


def test_user_roles_can_be_switched_off() -> None:
    for values in ({"rbac": {"aggregateToDefaultRoles": False}}, {"rbac": {"create": False}}):
        assert not _user_roles(r.objects(values)), values


def _option_values(mode: Mode, option: str) -> dict[str, Any]:
    return r.nested({"watch.scope": mode.value, option: True})


@pytest.mark.parametrize("option", permissions.OPTIONS)
@pytest.mark.parametrize("mode", list(Mode))
def test_a_gang_scheduling_option_grants_exactly_its_podgroup_calls(
    mode: Mode, option: str
) -> None:
    """``gangScheduling.<scheduler>: true`` adds that scheduler's PodGroups, nothing else."""
    needed = {
        (p.group, p.resource, verb)
        for p in permissions.for_mode(mode, frozenset({option}))
        for verb in p.verbs
    }
    rule_sets = [o["rules"] for o in _operator_roles(r.objects(_option_values(mode, option)))]
    assert rule_sets
    for rules in rule_sets:
        assert _grants(rules) == needed
    added = needed - _needed(mode)
    assert {resource for _, resource, _ in added} == {"podgroups"}
    assert {verb for _, _, verb in added} == {"get", "create", "delete"}


@pytest.mark.parametrize("mode", list(Mode))
def test_podgroups_are_not_granted_by_default(mode: Mode) -> None:
    for obj in _operator_roles(r.objects(_values(mode))):
        assert not any(resource == "podgroups" for _, resource, _ in _grants(obj["rules"]))
