"""The chart's RBAC in an emulated cluster, and the identity it grants: the operator's.

:func:`install` renders ``charts/rekindle`` with Helm's own engine (as
``helm install`` would, :mod:`tests.chart.rendering`), creates its service
account, Roles/ClusterRoles and their bindings in the cluster, and returns the
service account's identity; a kubeconfig for it
(:meth:`~tests.kube.cluster.Cluster.kubeconfig_for`) makes every call of the
operator pass the chart's RBAC or fail with 403, so a call the chart does not
grant fails the test.
"""

from __future__ import annotations

from typing import Any

from tests.kube import rbac
from tests.kube.cluster import Cluster

#: The kinds of a render that make up the operator's identity and rights.
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def install(cluster: Cluster, values: dict[str, Any] | None = None) -> rbac.Identity:
    """Create the chart's RBAC objects (rendered with ``values``); the operator's identity."""
    from tests.chart import rendering

    accounts: list[rbac.Identity] = []
    for obj in rendering.installed(rendering.objects(values or {}, namespace=rendering.NAMESPACE)):
        if obj["kind"] not in RBAC_KINDS:
            continue
        body = {k: v for k, v in obj.items() if not k.startswith("_")}
        namespace = body["metadata"].get("namespace") or (
            rendering.NAMESPACE if obj["kind"] in ("ServiceAccount",) else None
        )
        if namespace:
            cluster.ensure_namespace(namespace)
        cluster.create(body, namespace)
        if obj["kind"] == "ServiceAccount":
            accounts.append(rbac.service_account(str(namespace), body["metadata"]["name"]))
    if len(accounts) != 1:
        raise ValueError(f"the render should hold one ServiceAccount, found {len(accounts)}")
    return accounts[0]
