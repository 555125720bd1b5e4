"""Discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/GROUP[/VERSION]``) as a server serves it.

Pure functions over kmock's declared resources. They fix what kmock 0.8's own
discovery gets wrong for ``kubectl``:

* ``/api/v1`` answers ``"groupVersion": "v1"`` (kmock writes ``"/v1"``, so
  kubectl finds no core resources at all: ``kubectl get pods`` then falls to
  ``metrics.k8s.io`` PodMetrics and ``get pvc``, ``logs``, ``delete pod`` fail);
* a subresource (``pods/log``, ``trainingjobs/status``) carries its own verbs
  and kind and no short names or categories (kmock copies the parent's, so
  kubectl warns on every ``tj`` and ``kubectl get rekindle`` fails);
* a group's preferred version is its highest by Kubernetes' version priority
  (``v2`` over ``v1`` over ``v1beta1``), not whichever a set yields first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import kmock


@dataclass(frozen=True)
class Subresource:
    """What discovery lists for ``PLURAL/NAME``: its verbs and kind (parent's kind when None)."""

    verbs: tuple[str, ...]
    kind: str | None = None
    group: str | None = None
    version: str | None = None


#: The subresources of the built-in and custom kinds, as a v1.32 API server lists them.
SUBRESOURCES: dict[str, Subresource] = {
    "status": Subresource(("get", "patch", "update")),
    "scale": Subresource(("get", "patch", "update"), "Scale", "autoscaling", "v1"),
    "log": Subresource(("get",), "Pod"),
    "binding": Subresource(("create",), "Binding"),
    "eviction": Subresource(("create",), "Eviction", "policy", "v1"),
    "exec": Subresource(("create", "get"), "PodExecOptions"),
    "attach": Subresource(("create", "get"), "PodAttachOptions"),
    "portforward": Subresource(("create", "get"), "PodPortForwardOptions"),
    "proxy": Subresource(("create", "delete", "get", "patch", "update"), "PodProxyOptions"),
    "ephemeralcontainers": Subresource(("get", "patch", "update")),
    "resize": Subresource(("get", "patch", "update")),
    "finalize": Subresource(("update",)),
    "token": Subresource(("create",), "TokenRequest", "authentication.k8s.io", "v1"),
    "approval": Subresource(("get", "patch", "update")),
}

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """A sort key, smallest first, in Kubernetes' order: v2, v1, v1beta2, v1beta1, v1alpha1…"""
    match = _VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def _declared(resources: kmock.ResourcesArray) -> list[kmock.resource]:
    return [
        r
        for r in resources
        if isinstance(r.group, str) and isinstance(r.version, str) and isinstance(r.plural, str)
    ]


def group_versions(resources: kmock.ResourcesArray) -> dict[str, list[str]]:
    """Each named API group and its versions, the preferred first (the core group left out)."""
    found: dict[str, set[str]] = {}
    for resource in _declared(resources):
        if resource.group:
            found.setdefault(str(resource.group), set()).add(str(resource.version))
    return {group: sorted(versions, key=version_priority) for group, versions in found.items()}


def _group_document(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(resources: kmock.ResourcesArray) -> dict[str, Any]:
    """``/apis``: every named group, in a stable order."""
    groups = group_versions(resources)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_document(name, groups[name]) for name in sorted(groups)],
    }


def api_group(resources: kmock.ResourcesArray, group: str) -> dict[str, Any] | None:
    """``/apis/GROUP``, or None when no resource of that group is declared."""
    versions = group_versions(resources).get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_document(group, versions)}


def _entry(plural: str, info: kmock.ResourceInfo, subresource: str | None = None) -> dict[str, Any]:
    kind = info.kind or plural.capitalize()
    if subresource is None:
        entry: dict[str, Any] = {
            "name": plural,
            "singularName": info.singular or kind.lower(),
            "namespaced": bool(info.namespaced),
            "kind": kind,
            "verbs": sorted(info.verbs),
        }
        if info.shortnames:
            entry["shortNames"] = sorted(info.shortnames)
        if info.categories:
            entry["categories"] = sorted(info.categories)
        return entry
    known = SUBRESOURCES.get(subresource, Subresource(("get",)))
    entry = {
        "name": f"{plural}/{subresource}",
        "singularName": "",
        "namespaced": bool(info.namespaced),
        "kind": known.kind or kind,
        "verbs": list(known.verbs),
    }
    if known.group is not None:
        entry["group"], entry["version"] = known.group, known.version
    return entry


def resource_list(
    resources: kmock.ResourcesArray, group: str, version: str
) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/GROUP/VERSION``; None when nothing is declared there."""
    served = sorted(
        (r for r in _declared(resources) if (r.group, r.version) == (group, version)),
        key=lambda r: str(r.plural),
    )
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for resource in served:
        info = resources[resource]
        entries.append(_entry(str(resource.plural), info))
        entries += [_entry(str(resource.plural), info, sub) for sub in sorted(info.subresources)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def core_versions(resources: kmock.ResourcesArray) -> list[str]:
    """``/api``'s versions: those of the core group (``v1``)."""
    versions = {str(r.version) for r in resources if r.group == "" and isinstance(r.version, str)}
    return sorted(versions, key=version_priority) or ["v1"]
