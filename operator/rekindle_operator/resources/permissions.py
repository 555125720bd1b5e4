"""Every Kubernetes API call the operator makes, as data.

The Helm chart's Role and ClusterRole grant exactly these and nothing else;
``tests/chart/test_rbac.py`` renders the chart and checks that every call
below is allowed and that no rule uses a wildcard. Whoever adds an API call to
the operator adds it here first (the test then says which template to change).

Two install modes (``watch.scope`` in the chart):

* ``cluster``: the operator watches every namespace (``--all-namespaces``);
  one ClusterRole grants everything, and kopf's peering object is a
  ``ClusterKopfPeering``.
* ``namespaced``: the operator watches listed namespaces (``--namespace``);
  a Role in each of them grants everything, and kopf's peering object is a
  ``KopfPeering`` in each. The operator needs no cluster-scoped access here:
  it sets kopf's ``settings.scanning.disabled = True``, so kopf neither lists
  namespaces nor watches CustomResourceDefinitions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Mode(enum.StrEnum):
    """How widely the operator watches (the chart's ``watch.scope``)."""

    CLUSTER = "cluster"
    NAMESPACED = "namespaced"


@dataclass(frozen=True)
class Permission:
    """One resource the operator calls, with the verbs it uses on it.

    Attributes:
        group: the API group; ``""`` for the core group.
        resource: the plural resource, ``resource/subresource`` for a subresource.
        verbs: the Kubernetes verbs (``get``, ``list``, ``watch``, ``create``,
            ``update``, ``patch``, ``delete``).
        namespaced: whether the resource lives in a namespace (a Role can
            grant it) or is cluster-scoped (only a ClusterRole can).
        modes: the install modes in which the operator makes these calls.
        why: what the operator does with it.
        option: the chart value (a path under ``values.yaml``) that must be true for
            the chart to grant it; None: always granted.
    """

    group: str
    resource: str
    verbs: frozenset[str]
    namespaced: bool
    modes: frozenset[Mode]
    why: str
    option: str | None = None


_BOTH: Final = frozenset(Mode)
TRAINING_GROUP: Final = "rekindle.dev"
KOPF_GROUP: Final = "kopf.dev"
#: Chart values that grant the PodGroup calls of ``spec.gangScheduling`` (off by default).
VOLCANO_OPTION: Final = "gangScheduling.volcano"
SCHEDULER_PLUGINS_OPTION: Final = "gangScheduling.schedulerPlugins"
#: Every chart value that adds permissions.
OPTIONS: Final = (VOLCANO_OPTION, SCHEDULER_PLUGINS_OPTION)

PERMISSIONS: Final[tuple[Permission, ...]] = (
    Permission(
        TRAINING_GROUP,
        "trainingjobs",
        frozenset({"get", "list", "watch", "patch", "delete"}),
        namespaced=True,
        modes=_BOTH,
        why="watch jobs; kopf finalizer and annotations; delete after ttlSecondsAfterFinished",
    ),
    Permission(
        TRAINING_GROUP,
        "trainingjobs/status",
        frozenset({"patch"}),
        namespaced=True,
        modes=_BOTH,
        why="write phase, conditions, counts and checkpoint into the status subresource",
    ),
    Permission(
        TRAINING_GROUP,
        "trainingjobs/finalizers",
        frozenset({"update"}),
        namespaced=True,
        modes=_BOTH,
        why="owner references with blockOwnerDeletion on pods and claims (kopf.adopt)",
    ),
    Permission(
        "",
        "pods",
        frozenset({"get", "list", "watch", "create", "patch", "delete"}),
        namespaced=True,
        modes=_BOTH,
        why="run each attempt as a pod, watch how it ends, mark and delete it on stop or replace",
    ),
    Permission(
        "",
        "persistentvolumeclaims",
        frozenset({"get", "create"}),
        namespaced=True,
        modes=_BOTH,
        why=(
            "create the checkpoint volume claim when the spec gives a size, not a claim; "
            "read a named claim's access modes (a gang needs ReadWriteMany)"
        ),
    ),
    Permission(
        "",
        "services",
        frozenset({"get", "create", "patch"}),
        namespaced=True,
        modes=_BOTH,
        why="a gang's headless Service <job>-workers, pointed at each new attempt's workers",
    ),
    Permission(
        "scheduling.volcano.sh",
        "podgroups",
        frozenset({"get", "create", "delete"}),
        namespaced=True,
        modes=_BOTH,
        why="spec.gangScheduling volcano: a PodGroup per attempt; the last attempt's deleted",
        option=VOLCANO_OPTION,
    ),
    Permission(
        "scheduling.x-k8s.io",
        "podgroups",
        frozenset({"get", "create", "delete"}),
        namespaced=True,
        modes=_BOTH,
        why="spec.gangScheduling scheduler-plugins: a PodGroup per attempt; the last one's deleted",
        option=SCHEDULER_PLUGINS_OPTION,
    ),
    Permission(
        "",
        "events",
        frozenset({"create", "list"}),
        namespaced=True,
        modes=_BOTH,
        why=(
            "kopf's and the operator's events on TrainingJobs (kubectl describe); read a "
            "waiting pod's volume-attach events (Multi-Attach: a dead node holds its volume)"
        ),
    ),
    Permission(
        "",
        "nodes",
        frozenset({"get"}),
        namespaced=False,
        modes=frozenset({Mode.CLUSTER}),
        why=(
            "read the node of a pod that is not ready: a dead node's pod is replaced at once "
            "(scope namespaced: from the pod's own signs, after the taint manager's toleration)"
        ),
    ),
    Permission(
        KOPF_GROUP,
        "clusterkopfpeerings",
        frozenset({"get", "list", "watch", "patch"}),
        namespaced=False,
        modes=frozenset({Mode.CLUSTER}),
        why="kopf peering across the cluster: only one replica acts at a time",
    ),
    Permission(
        KOPF_GROUP,
        "kopfpeerings",
        frozenset({"get", "list", "watch", "patch"}),
        namespaced=True,
        modes=frozenset({Mode.NAMESPACED}),
        why="kopf peering in each watched namespace: only one replica acts at a time",
    ),
)


def for_mode(mode: Mode, options: frozenset[str] = frozenset()) -> tuple[Permission, ...]:
    """The permissions the operator needs when installed in ``mode`` with ``options`` true."""
    return tuple(
        p for p in PERMISSIONS if mode in p.modes and (p.option is None or p.option in options)
    )
