"""Admission for the emulated API: refusals a cluster's policies would answer a create with.

A hook is called on every object about to be created (``Store.admission``);
it may change the object, as a mutating webhook does, or raise
:class:`~tests.kube.store.ApiError`, as a ResourceQuota, Pod Security
admission or a validating webhook refuses. :func:`installed` adds hooks for
the length of a ``with`` block.

Example::

    quota = refusing("pods", 403, "Forbidden", 'pods "{name}" is forbidden: exceeded quota: gpus')
    with admission.installed(cluster, quota):
        ...  # every pod create in the cluster is refused
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import kmock

from tests.kube.cluster import Cluster
from tests.kube.store import ApiError, Store

#: What ``Store.admission`` calls: (resource, namespace, the object to be created).
Hook = Callable[[kmock.resource, str | None, dict[str, Any]], None]


def refusing(
    plural: str,
    status: int,
    reason: str,
    message: str,
    *,
    when: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> Hook:
    """A hook that refuses every create of ``plural`` (``when`` it holds) with this answer.

    ``message`` may name the object as ``{name}``.
    """

    def hook(resource: kmock.resource, namespace: str | None, obj: dict[str, Any]) -> None:
        if resource.plural == plural and when(obj):
            name = obj.get("metadata", {}).get("name", "")
            raise ApiError(status, reason, message.format(name=name))

    return hook


@contextlib.contextmanager
def installed(cluster: Cluster, *hooks: Hook) -> Iterator[None]:
    """The cluster's API runs ``hooks`` on every create until the block ends."""

    def add(store: Store) -> None:
        store.admission.extend(hooks)

    def remove(store: Store) -> None:
        for hook in hooks:
            store.admission.remove(hook)

    cluster.call(add)
    try:
        yield
    finally:
        cluster.call(remove)
