"""Authorization as an API server's RBAC authorizer decides it, for identities a test names.

The emulated cluster's own kubeconfig (and a request with no token) is an
administrator, as a kind cluster's is. A test that wants a call checked runs
its client with :meth:`~tests.kube.cluster.Cluster.kubeconfig_for` an identity
(a service account, say the chart's operator account: a bearer token for
Python clients, ``as:`` impersonation for kubectl, which sends no token over
plain HTTP; an administrator may impersonate anyone); that identity's
requests are allowed only by the Roles and ClusterRoles bound to it in the
cluster (RoleBindings, ClusterRoleBindings: the chart's rendered RBAC, created
like any object), and a call they do not grant is a 403 naming the user, the
verb and the resource, as Kubernetes writes it. Discovery and OpenAPI (non-
resource URLs) stay open to every identity, as ``system:discovery`` makes
them. Pure functions over the RBAC objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class Identity:
    """Who a token stands for."""

    user: str
    groups: tuple[str, ...] = (AUTHENTICATED,)
    admin: bool = False


def service_account(namespace: str, name: str) -> Identity:
    """The identity of a pod that runs as service account ``namespace/name``."""
    return Identity(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


def impersonated(user: str, groups: Sequence[str] = ()) -> Identity:
    """The identity ``kubectl --as=USER --as-group=G`` asks for (a service account's groups
    are added as the API server adds them)."""
    if user.startswith("system:serviceaccount:"):
        namespace, _, name = user.removeprefix("system:serviceaccount:").partition(":")
        account = service_account(namespace, name)
        return Identity(account.user, (*account.groups, *groups))
    return Identity(user, (*groups, AUTHENTICATED))


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it."""

    verb: str
    group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None


def verb_of(method: str, name: str | None, params: Mapping[str, str]) -> str:
    """The RBAC verb of an HTTP method on a resource URL."""
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, method.lower())


def _matches(values: Sequence[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """Whether one PolicyRule grants the request."""
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not _matches(rule.get("apiGroups"), attrs.group):
        return False
    if not _matches(rule.get("verbs"), attrs.verb):
        return False
    resources = rule.get("resources") or []
    if resource not in resources and "*" not in resources:
        star = f"*/{attrs.subresource}" if attrs.subresource else None
        if star is None or star not in resources:
            return False
    names = rule.get("resourceNames") or []
    return not names or (attrs.name is not None and attrs.name in names)


def _subject_is(subject: Mapping[str, Any], who: Identity) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return bool(subject.get("name") == who.user)
    if kind == "Group":
        return subject.get("name") in who.groups
    if kind == "ServiceAccount":
        wanted = f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}"
        return wanted == who.user
    return False


def _role_rules(
    ref: Mapping[str, Any],
    namespace: str | None,
    roles: Iterable[Mapping[str, Any]],
    cluster_roles: Iterable[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    if ref.get("kind") == "ClusterRole":
        pool = cluster_roles
    else:
        pool = [r for r in roles if r["metadata"].get("namespace") == namespace]
    return [
        rule
        for role in pool
        if role["metadata"].get("name") == ref.get("name")
        for rule in role.get("rules") or []
    ]


def allowed(
    who: Identity,
    attrs: Attributes,
    *,
    roles: Sequence[Mapping[str, Any]],
    cluster_roles: Sequence[Mapping[str, Any]],
    bindings: Sequence[Mapping[str, Any]],
    cluster_bindings: Sequence[Mapping[str, Any]],
) -> bool:
    """Whether RBAC lets ``who`` make the request (an administrator may do anything)."""
    if who.admin:
        return True
    rules: list[Mapping[str, Any]] = []
    for binding in cluster_bindings:
        if any(_subject_is(s, who) for s in binding.get("subjects") or []):
            rules += _role_rules(binding.get("roleRef") or {}, None, roles, cluster_roles)
    for binding in bindings:
        in_namespace = binding["metadata"].get("namespace")
        if in_namespace == attrs.namespace and any(
            _subject_is(s, who) for s in binding.get("subjects") or []
        ):
            rules += _role_rules(binding.get("roleRef") or {}, in_namespace, roles, cluster_roles)
    return any(rule_allows(rule, attrs) for rule in rules)


def forbidden_message(who: Identity, attrs: Attributes) -> str:
    """The API server's 403 message."""
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    subject = f'{attrs.resource} "{attrs.name}"' if attrs.name else attrs.resource
    where = f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{who.user}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}"{where}'
    )
