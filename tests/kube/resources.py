"""The resources the emulated cluster serves, as its discovery lists them.

kopf watches a resource only if discovery lists it with the ``list`` and
``watch`` verbs, and patches its status through ``/status`` only if discovery
lists that subresource. The built-in kinds come from kmock's bundled list
(taken from a k3s cluster); Rekindle's ``TrainingJob`` and kopf's peering
resources are declared here, and any ``CustomResourceDefinition`` created
through the API (e.g. the chart's ``crds/``) declares its resource the same way.
"""

from __future__ import annotations

import gzip
import importlib.resources
from collections.abc import Mapping
from typing import Any

import kmock

CRUD_VERBS = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)

#: ``rekindle.dev/v1alpha1 TrainingJob`` as DESIGN.md fixes it (the chart's CRD, once
#: created in the emulator, declares the same resource from the source of truth).
TRAINING_JOBS = kmock.resource("rekindle.dev", "v1alpha1", "trainingjobs")
KOPF_PEERINGS = kmock.resource("kopf.dev", "v1", "kopfpeerings")
CLUSTER_KOPF_PEERINGS = kmock.resource("kopf.dev", "v1", "clusterkopfpeerings")


def declare_defaults(resources: kmock.ResourcesArray) -> None:
    """Declare the built-in kinds, ``trainingjobs`` (short name ``tj``) and kopf's peerings."""
    # kmock's own load_bundled() calls the deprecated importlib.resources.read_binary().
    bundled = importlib.resources.files("kmock._internal").joinpath("resources.json.gz")
    resources.load_data(gzip.decompress(bundled.read_bytes()))
    resources[TRAINING_JOBS] = kmock.ResourceInfo(
        kind="TrainingJob",
        singular="trainingjob",
        namespaced=True,
        verbs=CRUD_VERBS,
        shortnames={"tj"},
        categories={"rekindle"},
        subresources={"status"},
    )
    resources[KOPF_PEERINGS] = kmock.ResourceInfo(
        kind="KopfPeering",
        singular="kopfpeering",
        namespaced=True,
        verbs=CRUD_VERBS,
    )
    resources[CLUSTER_KOPF_PEERINGS] = kmock.ResourceInfo(
        kind="ClusterKopfPeering",
        singular="clusterkopfpeering",
        namespaced=False,
        verbs=CRUD_VERBS,
    )


def declare_crd(resources: kmock.ResourcesArray, crd: Mapping[str, Any]) -> list[kmock.resource]:
    """Declare every served version of a ``CustomResourceDefinition`` (as the API server does)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group"), names.get("plural")
    if not group or not plural or not names.get("kind"):
        raise ValueError(
            "CustomResourceDefinition: spec.group, spec.names.plural and spec.names.kind are "
            "required"
        )
    declared: list[kmock.resource] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        resource = kmock.resource(group, version["name"], plural)
        resources[resource] = kmock.ResourceInfo(
            kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs=CRUD_VERBS,
            shortnames=set(names.get("shortNames") or ()),
            categories=set(names.get("categories") or ()),
            subresources=set((version.get("subresources") or {}).keys()),
        )
        declared.append(resource)
    return declared
