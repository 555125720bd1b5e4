"""The Kubernetes API's URL grammar, parsed as the API server reads it.

kmock 0.8 reads ``/api/v1/namespaces/NAME`` as "namespace NAME, no resource"
and fails on ``/api/v1/namespaces`` itself, so kopf's namespaced mode (which
lists and watches Namespace objects) gets 500s. This parser treats
``namespaces`` as the resource it is when nothing follows the name or only
a subresource does (``status``, ``finalize``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Subresources of Namespace objects: ``/api/v1/namespaces/NAME/status`` is not a resource "status".
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class ApiPath:
    """What a request path addresses; ``group`` is None for non-API paths, "" for the core group."""

    group: str | None = None
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def is_discovery(self) -> bool:
        """Whether this is ``/api``, ``/apis``, ``/api/v1``, ``/apis/GROUP[/VERSION]``."""
        return self.group is not None and self.plural is None


def parse_path(path: str) -> ApiPath:
    """Split ``/api[s]/…/namespaces/NS/PLURAL/NAME/SUB`` into its parts."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return ApiPath()
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 2:
            return ApiPath(group="")  # /apis itself
        group, rest = parts[1], parts[2:]
    if not rest:
        return ApiPath(group=group)
    version, rest = rest[0], rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    elif len(rest) == 3 and rest[0] == "namespaces" and rest[2] in NAMESPACE_SUBRESOURCES:
        pass  # /api/v1/namespaces/NAME/status: the Namespace object's subresource
    if not rest:
        return ApiPath(group=group, version=version)
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return ApiPath(group, version, plural, namespace, name, subresource)
