"""The object store behind the emulated API: what an API server and its controllers do to objects.

Everything a cluster does to an object between a request and the answer lives
here, with no HTTP and no event loop: ``resourceVersion`` (one monotonic
counter, as etcd's revision), ``uid``, ``generation`` (bumped on changes outside
``metadata`` and ``status``), ``creationTimestamp``, ``generateName``; the
status subresource split; 409 on name clashes and stale ``resourceVersion``;
finalizers and ``deletionTimestamp``; graceful deletion of pods bound to a node;
ownerReference garbage collection (background, foreground, orphan) and
namespace deletion; volume claims that bind; binding and eviction of pods.

Every change is appended to a log of watch events (with the previous state, so
that a watch with a selector can turn an object leaving the selection into
DELETED). Listeners are called synchronously on each change. The store is not
thread-safe: the emulator calls it from its event loop only.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import random
import string
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import kmock

from tests.kube import event_versions, patches, resources, schema, selectors, validation

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[kmock.resource, str | None, str]

NAMESPACES = kmock.resource("", "v1", "namespaces")
PODS = kmock.resource("", "v1", "pods")
PVCS = kmock.resource("", "v1", "persistentvolumeclaims")
PVS = kmock.resource("", "v1", "persistentvolumes")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")

#: The default grace period of a pod (``spec.terminationGracePeriodSeconds``).
DEFAULT_GRACE_SECONDS = 30
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


class ApiError(Exception):
    """An API failure with its HTTP status and Kubernetes ``reason``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def as_status(self) -> dict[str, Any]:
        """The ``kind: Status`` body the API server answers with."""
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status,
        }


@dataclass(frozen=True)
class WatchEvent:
    """One change, as a watch stream reports it; ``old`` is the state before (None if new)."""

    revision: int
    resource: kmock.resource
    type: EventType
    object: dict[str, Any]
    old: dict[str, Any] | None = None


@dataclass(frozen=True)
class Alias:
    """A resource served from another's objects, as ``events.k8s.io/v1`` Events are core Events.

    Its requests act on ``stored_as``: bodies go in through ``to_stored`` and objects
    come out through ``to_view``; field selectors apply to the objects as viewed.
    """

    stored_as: kmock.resource
    to_view: Callable[[Mapping[str, Any]], dict[str, Any]]
    to_stored: Callable[[Mapping[str, Any]], dict[str, Any]]


#: The resources an API server serves from another's storage.
ALIASES = {
    event_versions.EVENTS_V1: Alias(
        event_versions.CORE_EVENTS, event_versions.to_events_v1, event_versions.to_core
    ),
}


@dataclass(frozen=True)
class DeleteOptions:
    """The parts of ``DeleteOptions`` the emulator honours."""

    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None

    @classmethod
    def parse(cls, body: Any, params: Mapping[str, str]) -> DeleteOptions:
        """From a DELETE body (``kind: DeleteOptions``) and query parameters."""
        body = body if isinstance(body, Mapping) else {}
        grace = body.get("gracePeriodSeconds", params.get("gracePeriodSeconds"))
        policy = body.get("propagationPolicy", params.get("propagationPolicy"))
        if body.get("orphanDependents") is True or params.get("orphanDependents") == "true":
            policy = policy or "Orphan"
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise ApiError(
                400,
                "BadRequest",
                f"propagationPolicy: Unsupported value: {policy!r}; "
                "use Background, Foreground or Orphan",
            )
        pre = body.get("preconditions") or {}
        try:
            grace_int = None if grace is None else int(grace)
        except (TypeError, ValueError):
            raise ApiError(
                400, "BadRequest", f"gracePeriodSeconds: must be an integer, got {grace!r}"
            ) from None
        return cls(grace_int, policy, pre.get("uid"), pre.get("resourceVersion"))


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _without(obj: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


@dataclass
class Store:
    """All objects of the emulated cluster, their history and their watch log."""

    resources: kmock.ResourcesArray
    objects: kmock.ObjectsArray
    clock: Callable[[], datetime.datetime] = _utcnow
    revision: int = 1
    #: The newest changes, oldest first; at most ``history_limit`` (the API server's watch
    #: window): a watch from a version older than the window gets 410 Gone (``compacted``).
    log: list[WatchEvent] = field(default_factory=list)
    history_limit: int = 1000
    #: The revision of the newest change dropped from the log (0: none dropped yet).
    compacted: int = 0
    listeners: list[Callable[[WatchEvent], None]] = field(default_factory=list)
    #: Admission plugins and webhooks: called on every object about to be created (after its
    #: schema defaults); each may change it (a mutating webhook) or raise ApiError (a refusal).
    admission: list[Callable[[kmock.resource, str | None, dict[str, Any]], None]] = field(
        default_factory=list
    )
    #: Whether a created claim binds at once (a storage class with ``Immediate`` binding).
    bind_claims: bool = True
    #: The structural schema of each custom resource, from its CRD.
    schemas: dict[kmock.resource, dict[str, Any]] = field(default_factory=dict)
    #: Set by :meth:`dry_running`: writes are answered but not stored.
    dry_run: bool = False
    #: Resources served from another's objects (see :class:`Alias`).
    aliases: dict[kmock.resource, Alias] = field(default_factory=lambda: dict(ALIASES))

    # --- resource facts -------------------------------------------------------

    def info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        """The declared resource, or 404 as for an unknown resource."""
        if resource not in self.resources:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource "
                f"({resource.group or 'core'}/{resource.version} {resource.plural})",
            )
        return self.resources[resource]

    def has_status(self, resource: kmock.resource) -> bool:
        """Whether ``status`` is a separate subresource (written apart from the object)."""
        return "status" in self.info(resource).subresources

    @staticmethod
    def is_custom(resource: kmock.resource) -> bool:
        """Whether it is a custom resource (no strategic merge patch), by its API group."""
        group = resource.group or ""
        return "." in group and not group.endswith("k8s.io")

    def _api_version(self, resource: kmock.resource) -> str:
        return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)

    def _kind(self, resource: kmock.resource) -> str:
        return self.info(resource).kind or str(resource.plural).capitalize()

    def _key(self, resource: kmock.resource, namespace: str | None, name: str) -> Key:
        return (resource, namespace if self.info(resource).namespaced else None, name)

    # --- reading --------------------------------------------------------------

    def _live(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        for key, obj in list(self.objects.items()):
            if not obj.deleted:
                yield key, obj.raw

    def find(self, resource: kmock.resource, namespace: str | None, name: str) -> dict[str, Any]:
        """The object (a deep copy), or 404."""
        alias = self.aliases.get(resource)
        if alias is not None:
            return alias.to_view(self.find(alias.stored_as, namespace, name))
        key = self._key(resource, namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            return copy.deepcopy(self.objects[key].raw)
        raise ApiError(404, "NotFound", f'{resource.plural} "{name}" not found')

    def select(
        self,
        resource: kmock.resource,
        namespace: str | None = None,
        labels: Sequence[selectors.Requirement] = (),
        fields: Sequence[selectors.Requirement] = (),
    ) -> list[dict[str, Any]]:
        """Objects of ``resource`` (in ``namespace`` if given) matching the selectors."""
        alias = self.aliases.get(resource)
        if alias is not None:
            viewed = [alias.to_view(o) for o in self.select(alias.stored_as, namespace, labels)]
            return [o for o in viewed if selectors.matches(o, (), fields)]
        self.info(resource)
        return [
            copy.deepcopy(raw)
            for (res, ns, _), raw in self._live()
            if res == resource
            if namespace is None or ns == namespace
            if selectors.matches(raw, labels, fields)
        ]

    def list_body(
        self,
        resource: kmock.resource,
        namespace: str | None,
        labels: Sequence[selectors.Requirement] = (),
        fields: Sequence[selectors.Requirement] = (),
    ) -> dict[str, Any]:
        """A ``…List`` answer with the current revision as its ``resourceVersion``."""
        return {
            "apiVersion": self._api_version(resource),
            "kind": f"{self._kind(resource)}List",
            "metadata": {"resourceVersion": str(self.revision)},
            "items": self.select(resource, namespace, labels, fields),
        }

    def events_since(self, revision: int, resource: kmock.resource) -> list[WatchEvent]:
        """Logged changes of ``resource`` newer than ``revision``; 410 if the log cannot tell."""
        if resource in self.aliases:
            stored_as = self.aliases[resource].stored_as
            changes = (self.view_of(resource, e) for e in self.events_since(revision, stored_as))
            return [e for e in changes if e is not None]
        if revision > self.revision:
            raise ApiError(
                504, "Timeout", f"Too large resource version: {revision}, current: {self.revision}"
            )
        if revision < self.compacted:
            raise ApiError(
                410, "Expired", f"too old resource version: {revision} ({self.compacted + 1})"
            )
        return [e for e in self.log if e.revision > revision and e.resource == resource]

    def view_of(self, resource: kmock.resource, event: WatchEvent) -> WatchEvent | None:
        """``event`` as a watch of ``resource`` sees it (None: not a change of ``resource``)."""
        alias = self.aliases.get(resource)
        if alias is None:
            return event if event.resource == resource else None
        if event.resource != alias.stored_as:
            return None
        old = None if event.old is None else alias.to_view(event.old)
        return WatchEvent(event.revision, resource, event.type, alias.to_view(event.object), old)

    # --- writing --------------------------------------------------------------

    @contextlib.contextmanager
    def dry_running(self) -> Iterator[None]:
        """Within: writes are checked and answered as usual, and nothing is stored
        (``?dryRun=All``: ``kubectl diff``, ``--dry-run=server``)."""
        self.dry_run = True
        try:
            yield
        finally:
            self.dry_run = False

    def _next_revision(self) -> str:
        if self.dry_run:
            return str(self.revision)  # a dry run takes no version
        self.revision += 1
        return str(self.revision)

    def _emit(self, event: WatchEvent) -> None:
        self.log.append(event)
        if len(self.log) > self.history_limit:
            dropped = len(self.log) - self.history_limit
            self.compacted = self.log[dropped - 1].revision
            del self.log[:dropped]
        for listener in list(self.listeners):
            listener(event)

    def _check_namespace(self, resource: kmock.resource, namespace: str | None) -> None:
        if not self.info(resource).namespaced:
            return
        if namespace is None:
            raise ApiError(
                400,
                "BadRequest",
                f"{resource.plural} are namespaced: give metadata.namespace or "
                "POST to /…/namespaces/NAMESPACE/…",
            )
        key = (NAMESPACES, None, namespace)
        if key not in self.objects or self.objects[key].deleted:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def create(
        self,
        resource: kmock.resource,
        namespace: str | None,
        body: Any,
        *,
        managed_fields: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create an object: 409 if the name is taken, 422 if its metadata is invalid.

        ``managed_fields``: the ``metadata.managedFields`` to record (server-side apply);
        a body's own are dropped.
        """
        alias = self.aliases.get(resource)
        if alias is not None:
            stored = self.create(alias.stored_as, namespace, alias.to_stored(body or {}))
            return alias.to_view(stored)
        info = self.info(resource)
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        obj: dict[str, Any] = copy.deepcopy(dict(body))
        meta: dict[str, Any] = dict(obj.get("metadata") or {})
        body_ns = meta.get("namespace")
        if info.namespaced:
            if namespace is not None and body_ns not in (None, namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the namespace of the object ({body_ns}) does not match the namespace "
                    f"of the request ({namespace})",
                )
            namespace = namespace or body_ns
            self._check_namespace(resource, namespace)
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        errors = validation.metadata_errors(meta)
        if errors:
            raise ApiError(
                422,
                "Invalid",
                f'{self._kind(resource)} "{meta.get("name", "")}" is invalid: {"; ".join(errors)}',
            )
        name: str = meta["name"]
        key = self._key(resource, namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            raise ApiError(409, "AlreadyExists", f'{resource.plural} "{name}" already exists')

        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(transient, None)
        if managed_fields:
            meta["managedFields"] = copy.deepcopy(managed_fields)
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = _rfc3339(self.clock())
        meta["resourceVersion"] = self._next_revision()
        obj["metadata"] = meta
        obj["apiVersion"] = self._api_version(resource)
        obj["kind"] = self._kind(resource)
        if "status" in info.subresources:
            obj.pop("status", None)  # the status of a new object is the server's to set
        obj = self._admit(resource, obj, None)
        for admit in list(self.admission):
            admit(resource, namespace, obj)
        if resource == PODS:
            self._default_pod(obj)
        elif resource == PVCS:
            obj["status"] = {"phase": "Pending"}
        elif resource == NAMESPACES:
            obj["status"] = {"phase": "Active"}

        if self.dry_run:
            return copy.deepcopy(obj)
        if key in self.objects:
            self.objects[key].create(obj)
        else:
            self.objects[key] = obj
        self._emit(WatchEvent(self.revision, resource, "ADDED", copy.deepcopy(obj)))
        if resource == CRDS:
            self._declare(obj)

        created = copy.deepcopy(obj)  # the answer shows the object as created, before controllers
        if resource == PVCS and self.bind_claims:
            self._bind_claim(key)
        return created

    def _declare(self, crd: dict[str, Any]) -> None:
        """A created CRD serves its resource, with its schema (as the API server does)."""
        for resource in resources.declare_crd(self.resources, crd):
            found = schema.openapi_schema(crd, str(resource.version))
            if found is not None:
                self.schemas[resource] = found

    def _admit(
        self, resource: kmock.resource, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Prune, default and validate a custom resource by its CRD's schema; 422 if invalid."""
        structural = self.schemas.get(resource)
        if structural is None:
            return obj
        stored, problems = schema.admit(obj, structural, old)
        if problems:
            name = obj.get("metadata", {}).get("name", "")
            raise ApiError(
                422,
                "Invalid",
                f'{self._kind(resource)}.{resource.group} "{name}" is invalid: '
                + "; ".join(problems),
            )
        return stored

    @staticmethod
    def _default_pod(pod: dict[str, Any]) -> None:
        spec = pod.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        for container in spec.get("containers") or []:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", "IfNotPresent")
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def _write(
        self, key: Key, new: dict[str, Any], *, bump_generation: bool | None = None
    ) -> dict[str, Any]:
        """Store a new state of a live object: rules of finalizers, generation, no-op writes."""
        resource = key[0]
        old = self.objects[key].raw
        old_meta, new_meta = old.get("metadata", {}), new.setdefault("metadata", {})
        for fixed in ("uid", "name", "namespace", "creationTimestamp", "generation"):
            if fixed in old_meta:
                new_meta[fixed] = old_meta[fixed]
            else:
                new_meta.pop(fixed, None)
        for fixed in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if fixed in old_meta:
                new_meta[fixed] = old_meta[fixed]
            elif fixed in new_meta and not old_meta.get(fixed):
                del new_meta[fixed]  # only deletion sets these
        new_meta["resourceVersion"] = old_meta.get("resourceVersion")
        new["apiVersion"], new["kind"] = old.get("apiVersion"), old.get("kind")
        errors = validation.metadata_errors(new_meta)
        if errors:
            raise ApiError(
                422, "Invalid", f'{new["kind"]} "{key[2]}" is invalid: {"; ".join(errors)}'
            )
        new = self._admit(resource, new, old)
        new_meta = new["metadata"]
        if old_meta.get("deletionTimestamp"):
            added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise ApiError(
                    422,
                    "Invalid",
                    f"metadata.finalizers: Forbidden: no new finalizers can be added if the "
                    f"object is being deleted, found new finalizers {sorted(added)}",
                )
        if new == old:
            return copy.deepcopy(old)  # a no-op write changes nothing, not even resourceVersion
        spec_changed = _without(new, "metadata", "status") != _without(old, "metadata", "status")
        if bump_generation if bump_generation is not None else spec_changed:
            new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        new_meta["resourceVersion"] = self._next_revision()
        if self.dry_run:
            return copy.deepcopy(new)
        self.objects[key].create(new)
        self._emit(WatchEvent(self.revision, resource, "MODIFIED", copy.deepcopy(new), old))
        released = new_meta.get("deletionTimestamp") and not new_meta.get("finalizers")
        if released and (resource != PODS or not new_meta.get("deletionGracePeriodSeconds")):
            self._remove(key)
        return copy.deepcopy(new)

    def _live_key(self, resource: kmock.resource, namespace: str | None, name: str) -> Key:
        key = self._key(resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            raise ApiError(404, "NotFound", f'{resource.plural} "{name}" not found')
        return key

    @staticmethod
    def _check_precondition(current: Mapping[str, Any], wanted: Any) -> None:
        have = current.get("metadata", {}).get("resourceVersion")
        if wanted not in (None, "") and str(wanted) != have:
            raise ApiError(
                409,
                "Conflict",
                f"Operation cannot be fulfilled: the object has been modified (resourceVersion "
                f"{wanted} is not the current {have}); please apply your changes to the latest "
                "version and try again",
            )

    def _split(
        self, key: Key, old: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        """Keep what this endpoint may change: the status on /status, the rest elsewhere."""
        resource = key[0]
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        if subresource is not None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"subresource {subresource!r} cannot be patched or replaced",
            )
        if self.has_status(resource):
            new = copy.deepcopy(new)
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    def replace(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT: replace the object (or its status), 409 on a stale ``resourceVersion``; 422
        without one on a custom resource."""
        alias = self.aliases.get(resource)
        if alias is not None and isinstance(body, Mapping):
            stored = alias.to_stored(body)
            return alias.to_view(
                self.replace(alias.stored_as, namespace, name, stored, subresource)
            )
        key = self._live_key(resource, namespace, name)
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        old = self.objects[key].raw
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) does not match the name in the URL "
                f"({name})",
            )
        if self.is_custom(resource) and not meta.get("resourceVersion"):
            # Custom resources allow no unconditional update (the API server's CRD strategy).
            raise ApiError(
                422,
                "Invalid",
                f'{resource.plural}.{resource.group} "{name}" is invalid: '
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
            )
        self._check_precondition(old, meta.get("resourceVersion"))
        new = self._split(key, old, copy.deepcopy(dict(body)), subresource)
        return self._write(key, new)

    def patch(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        content_type: str,
        body: Any,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PATCH by content type; 415 for strategic merge on custom resources, as in Kubernetes."""
        alias = self.aliases.get(resource)
        if alias is not None:  # patch the object as viewed, then store it back
            viewed = self.find(resource, namespace, name)
            changed = self._patched(viewed, content_type, body)
            changed["metadata"]["resourceVersion"] = viewed["metadata"]["resourceVersion"]
            return self.replace(resource, namespace, name, changed, subresource)
        key = self._live_key(resource, namespace, name)
        media = patches.media_type(content_type)
        if media == patches.STRATEGIC and self.is_custom(resource):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {patches.JSON}, {patches.MERGE}, {patches.APPLY} (custom resources "
                "take no strategic merge patch; pass _content_type='application/merge-patch+json')",
            )
        if media == patches.APPLY:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "server-side apply is emulated on an object itself over HTTP (not on a "
                "subresource, not through Cluster.patch); use a merge patch",
            )
        old = self.objects[key].raw
        patched = self._patched(old, content_type, body)
        return self._write(key, self._split(key, old, patched, subresource))

    def _patched(self, old: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
        """``old`` with the patch applied (409 on a stale ``resourceVersion`` in the patch)."""
        if isinstance(body, Mapping):
            self._check_precondition(old, (body.get("metadata") or {}).get("resourceVersion"))
        try:
            patched = patches.apply(content_type, old, body)
        except patches.PatchFormatError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        except patches.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        if not isinstance(patched, dict):
            raise ApiError(422, "Invalid", "the patched object is not a JSON object")
        return patched

    def delete(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        options: DeleteOptions | None = None,
    ) -> dict[str, Any]:
        """DELETE: graceful for bound pods, blocked by finalizers, then garbage collection."""
        options = options or DeleteOptions()
        alias = self.aliases.get(resource)
        if alias is not None:
            return alias.to_view(self.delete(alias.stored_as, namespace, name, options))
        key = self._live_key(resource, namespace, name)
        obj = copy.deepcopy(self.objects[key].raw)
        meta = obj["metadata"]
        if options.precondition_uid not in (None, meta.get("uid")):
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                f"UID in object meta: {meta.get('uid')}",
            )
        self._check_precondition(obj, options.precondition_resource_version)
        now = self.clock()

        grace = 0
        if resource == PODS and obj.get("spec", {}).get("nodeName"):
            default = obj.get("spec", {}).get(
                "terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS
            )
            grace = max(
                0,
                options.grace_period_seconds
                if options.grace_period_seconds is not None
                else int(default),
            )

        if meta.get("deletionTimestamp"):
            current = int(meta.get("deletionGracePeriodSeconds") or 0)
            if resource == PODS and grace < current:
                meta["deletionGracePeriodSeconds"] = grace
                meta["deletionTimestamp"] = _rfc3339(now + datetime.timedelta(seconds=grace))
                if grace == 0 and not meta.get("finalizers"):
                    return self._remove(key)
                return self._force_write(key, obj)
            return obj  # already being deleted

        # Propagation is the garbage collector's work (collect_garbage), after this answer.
        policy = options.propagation_policy or "Background"
        finalizers = list(meta.get("finalizers") or [])
        if policy in ("Orphan", "Foreground") and self._dependents(meta.get("uid")):
            finalizers.append(ORPHAN if policy == "Orphan" else FOREGROUND)
        if not finalizers and grace == 0:
            return self._remove(key)
        if finalizers:
            meta["finalizers"] = finalizers
        meta["deletionTimestamp"] = _rfc3339(now + datetime.timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        return self._force_write(key, obj)

    def _force_write(self, key: Key, new: dict[str, Any]) -> dict[str, Any]:
        """Write metadata that only the server may set (deletion marks, server finalizers)."""
        old = self.objects[key].raw
        new["metadata"]["resourceVersion"] = self._next_revision()
        if self.dry_run:
            return copy.deepcopy(new)
        self.objects[key].create(new)
        self._emit(WatchEvent(self.revision, key[0], "MODIFIED", copy.deepcopy(new), old))
        return copy.deepcopy(new)

    def _remove(self, key: Key) -> dict[str, Any]:
        """Remove an object for good: DELETED, then (a namespace) its contents.

        Its dependents stay until the garbage collector's next pass (collect_garbage).
        """
        final = copy.deepcopy(self.objects[key].raw)
        final["metadata"]["resourceVersion"] = self._next_revision()
        if self.dry_run:
            return final
        self.objects[key].delete()
        self._emit(WatchEvent(self.revision, key[0], "DELETED", copy.deepcopy(final), final))
        if key[0] == NAMESPACES:
            for (res, ns, name), _ in list(self._live()):
                if ns == key[2]:
                    self._delete_quietly(res, ns, name, DeleteOptions(grace_period_seconds=0))
        return final

    # --- garbage collection -----------------------------------------------------

    def _dependents(self, uid: str | None) -> list[Key]:
        return [
            key
            for key, raw in self._live()
            if any(ref.get("uid") == uid for ref in raw["metadata"].get("ownerReferences") or [])
        ]

    def _orphan(self, uid: str | None) -> None:
        for key in self._dependents(uid):
            dependent = copy.deepcopy(self.objects[key].raw)
            refs = dependent["metadata"].get("ownerReferences") or []
            dependent["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
            if not dependent["metadata"]["ownerReferences"]:
                del dependent["metadata"]["ownerReferences"]
            self._write(key, dependent, bump_generation=False)

    def collect_garbage(self) -> int:
        """One pass of the garbage collector; how many objects it changed.

        As Kubernetes' garbage collector, after the deletes that call for it: an
        owner deleted with ``Orphan`` loses its ``orphan`` finalizer once its
        dependents no longer refer to it; one deleted with ``Foreground`` has its
        dependents deleted and loses ``foregroundDeletion`` once none that blocks
        it (``blockOwnerDeletion``) is left; a dependent whose owners are all gone
        is deleted (background), one with some owners left only loses the others'
        references. The emulator runs a pass every ``gc_interval`` seconds.
        """
        changed = 0
        for key, raw in list(self._live()):
            meta = raw["metadata"]
            finalizers = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp") or not self._exists(key):
                continue
            if ORPHAN in finalizers:
                self._orphan(meta.get("uid"))
                changed += self._drop_finalizer(key, ORPHAN)
            elif FOREGROUND in finalizers:
                for dependent in self._dependents(meta.get("uid")):
                    if not self.objects[dependent].raw["metadata"].get("deletionTimestamp"):
                        self._delete_quietly(*dependent, DeleteOptions())
                        changed += 1
                if not self._blocking(meta.get("uid")):
                    changed += self._drop_finalizer(key, FOREGROUND)
        uids = {raw["metadata"].get("uid") for _, raw in self._live()}
        for key, raw in list(self._live()):
            refs = raw["metadata"].get("ownerReferences") or []
            present = [r for r in refs if r.get("uid") in uids]
            if len(present) == len(refs) or not self._exists(key):
                continue
            changed += 1
            if present:
                kept = copy.deepcopy(raw)
                kept["metadata"]["ownerReferences"] = present
                self._write(key, kept, bump_generation=False)
            elif not raw["metadata"].get("deletionTimestamp"):
                self._delete_quietly(*key, DeleteOptions())
        return changed

    def _exists(self, key: Key) -> bool:
        return key in self.objects and not self.objects[key].deleted

    def _drop_finalizer(self, key: Key, finalizer: str) -> int:
        owner = copy.deepcopy(self.objects[key].raw)
        owner["metadata"]["finalizers"] = [
            f for f in owner["metadata"].get("finalizers") or [] if f != finalizer
        ]
        self._write(key, owner)
        return 1

    def _blocking(self, uid: str | None) -> bool:
        return any(
            ref.get("uid") == uid and ref.get("blockOwnerDeletion")
            for _, raw in self._live()
            for ref in raw["metadata"].get("ownerReferences") or []
        )

    def _delete_quietly(
        self, resource: kmock.resource, namespace: str | None, name: str, options: DeleteOptions
    ) -> None:
        try:
            self.delete(resource, namespace, name, options)
        except ApiError as exc:
            if exc.status != 404:
                raise

    # --- controllers and subresources ---------------------------------------------

    def _bind_claim(self, key: Key) -> None:
        """Bind a claim to a new volume at once, as an ``Immediate`` storage class does."""
        claim = copy.deepcopy(self.objects[key].raw)
        spec = claim.setdefault("spec", {})
        volume = f"pvc-{claim['metadata']['uid']}"
        size = (spec.get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        modes = spec.get("accessModes") or ["ReadWriteOnce"]
        self.create(
            PVS,
            None,
            {
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": modes,
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": spec.get("storageClassName", "standard"),
                    "claimRef": {
                        "kind": "PersistentVolumeClaim",
                        "namespace": key[1],
                        "name": key[2],
                        "uid": claim["metadata"]["uid"],
                    },
                    "hostPath": {"path": f"/emulated/{volume}"},
                },
            },
        )
        spec["volumeName"] = volume
        claim["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}
        self._force_write(key, claim)

    def bind_pod(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """``POST pods/NAME/binding``: schedule the pod onto a node (409 if already bound)."""
        key = self._live_key(PODS, namespace, name)
        node = ((body or {}).get("target") or {}).get("name") if isinstance(body, Mapping) else None
        if not node:
            raise ApiError(400, "BadRequest", "binding: target.name (the node) is required")
        pod = copy.deepcopy(self.objects[key].raw)
        if pod.get("spec", {}).get("nodeName"):
            raise ApiError(
                409,
                "Conflict",
                f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"',
            )
        pod["spec"]["nodeName"] = node
        status = pod.setdefault("status", {})
        status["conditions"] = [
            *[c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"],
            {
                "type": "PodScheduled",
                "status": "True",
                "lastTransitionTime": _rfc3339(self.clock()),
            },
        ]
        self._force_write(key, pod)
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 201}

    def evict_pod(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """``POST pods/NAME/eviction``: mark ``DisruptionTarget``, then delete gracefully."""
        key = self._live_key(PODS, namespace, name)
        pod = copy.deepcopy(self.objects[key].raw)
        add_condition(
            pod,
            "DisruptionTarget",
            "True",
            "EvictionByEvictionAPI",
            "Eviction API: evicting",
            self.clock(),
        )
        self._force_write(key, pod)
        raw_options = body.get("deleteOptions") if isinstance(body, Mapping) else None
        self.delete(PODS, namespace, name, DeleteOptions.parse(raw_options, {}))
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 201}

    def set_pod_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Replace a pod's status as the node's own controllers would (None if it is gone)."""
        key = self._key(PODS, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        pod = copy.deepcopy(self.objects[key].raw)
        pod["status"] = copy.deepcopy(dict(status))
        return self._write(key, pod, bump_generation=False)


def add_condition(
    obj: dict[str, Any],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: datetime.datetime,
) -> None:
    """Set condition ``kind`` in ``obj.status.conditions`` (replacing one of the same type)."""
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c.get("type") != kind]
    conditions.append(
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": _rfc3339(now),
            "lastProbeTime": None,
        }
    )
