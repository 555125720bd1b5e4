"""The Kubernetes API over HTTP: kmock's emulator with a cluster's semantics behind it.

:class:`ClusterEmulator` keeps kmock's discovery (``/api``, ``/apis``,
``APIResourceList`` with verbs and subresources), its error rendering, its
request log and its DSL (a test can still inject ``emulator['patch', …] << 500``)
and its ``objects`` array with each object's history; it replaces what kmock
0.8 does to objects with :class:`~tests.kube.store.Store` (resource versions,
generation, status subresource, finalizers, garbage collection…), reads URLs
with :func:`~tests.kube.paths.parse_path` (Namespace objects included), and
serves list and watch with ``resourceVersion``, label and field selectors, and
``timeoutSeconds``, and ``pods/NAME/log`` from a :class:`~tests.kube.podlogs.LogSource`
(the process kubelet). :meth:`ClusterEmulator.end_watches` ends every open watch
stream, as an API server that shuts down does.

Matching a request to a reaction costs the same however long the test has run.
kmock asks each reaction's view whether it holds the new request, and every
view answers by filtering the whole request log: one client's GET/PATCH pairs
were served at 28 requests/s over the first 250 and 5/s by the 1,000th. While
a request is matched and answered, the log as that request's own task iterates
it holds just that request (every view but a slice is a per-request filter, so
each answer is the same), unless a reaction slices the log
(``emulator['get'][:2] << 503``): then the whole log is scanned as kmock does.
Now the same client gets 600-700 requests/s throughout. The log itself stays
complete for assertions (``list(emulator)``, ``emulator['patch']``) from the
test or any other task; a reaction's own callback that iterates the emulator
sees just its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import apps, dsl, rendering

from tests.kube import (
    core_printers,
    discovery,
    openapi,
    patches,
    paths,
    podlogs,
    podspec,
    rbac,
    replies,
    resources,
    selectors,
    tables,
    writes,
)
from tests.kube.store import (
    CRDS,
    NAMESPACES,
    PODS,
    ApiError,
    DeleteOptions,
    Store,
    WatchEvent,
)

#: The Content-Type of container logs, as the API server sends them.
LOG_TYPE = "text/plain; charset=utf-8"
#: ``/version``: the release whose discovery, schemas and printers the emulator serves.
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+rekindle.emulated",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}
#: The RBAC objects the authorizer reads.
RBAC_RESOURCES = {
    plural: kmock.resource("rbac.authorization.k8s.io", "v1", plural)
    for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
}
#: Watch event types that carry an object (not ERROR, not BOOKMARK).
CHANGES = frozenset({"ADDED", "MODIFIED", "DELETED"})
#: How often ``kubectl logs -f`` looks for new output.
LOG_POLL_SECONDS = 0.1

#: The emulator and the request its current task is matching to a reaction (see the module doc).
_MATCHING: contextvars.ContextVar[tuple[object, rendering.Request] | None] = contextvars.ContextVar(
    "rekindle_emulator_matching", default=None
)


def slices_the_log(views: Sequence[dsl.View]) -> bool:
    """Whether any of ``views`` picks requests by their position in the log (``[:2]``)."""
    return any(True for view in views for _ in view._walk(dsl.Slicer))


def view_event(
    event: WatchEvent,
    namespace: str | None,
    labels: Sequence[selectors.Requirement],
    fields: Sequence[selectors.Requirement],
) -> dict[str, Any] | None:
    """How a filtered watch sees ``event``: entering the selection is ADDED, leaving DELETED."""
    obj_ns = event.object.get("metadata", {}).get("namespace")
    if namespace is not None and obj_ns != namespace:
        return None
    new_ok = selectors.matches(event.object, labels, fields)
    old_ok = event.old is not None and selectors.matches(event.old, labels, fields)
    if event.type == "ADDED":
        kind = "ADDED" if new_ok else None
    elif event.type == "DELETED":
        kind = "DELETED" if new_ok or old_ok else None
    elif new_ok and old_ok:
        kind = "MODIFIED"
    elif new_ok:
        kind = "ADDED"
    elif old_ok:
        kind = "DELETED"
    else:
        kind = None
    return None if kind is None else {"type": kind, "object": event.object}


def _selectors(
    request: rendering.Request,
) -> tuple[tuple[selectors.Requirement, ...], tuple[selectors.Requirement, ...]]:
    try:
        labels = selectors.parse_label_selector(request.params.get("labelSelector", ""))
        fields = selectors.parse_field_selector(request.params.get("fieldSelector", ""))
    except selectors.SelectorError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from None
    if request.name is not None:
        fields += (_name_is(request.name),)
    return labels, fields


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    """kmock's emulator serving a :class:`Store`: a cluster's API as kopf and kubectl see it."""

    _store: Store | None = attrs.field(default=None, init=False)
    #: Where ``pods/NAME/log`` reads containers' output (set by ``Cluster.start_kubelet``).
    log_source: podlogs.LogSource | None = attrs.field(default=None, init=False)
    # The queue of every open watch stream: end_watches() puts None in each to end it.
    _watch_queues: set[asyncio.Queue[WatchEvent | None]] = attrs.field(factory=set, init=False)
    _watches_ended: bool = attrs.field(default=False, init=False)
    #: Seconds between BOOKMARK events on a watch that allows them (an API server: about 60).
    bookmark_interval: float = attrs.field(default=60.0, init=False)
    #: Seconds between the garbage collector's passes (run_garbage_collector): dependents of a
    #: deleted owner outlive it for up to this long, as with Kubernetes' own collector.
    gc_interval: float = attrs.field(default=0.5, init=False)
    #: What the garbage collector's passes raised (Cluster.stop fails on them).
    gc_errors: list[BaseException] = attrs.field(factory=list, init=False)
    #: Bearer tokens of the identities whose calls RBAC checks (Cluster.kubeconfig_for); any
    #: other token, or none, is an administrator's.
    identities: dict[str, rbac.Identity] = attrs.field(factory=dict, init=False)
    #: The 403 messages RBAC answered, oldest first (a test asserts it stays empty).
    denied: list[str] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback["get /openapi/v2"] << self._serve_openapi_v2
        self.fallback["get", re.compile(r"/openapi/v3(/.+)?")] << self._serve_openapi_v3
        resources.declare_defaults(self.resources)
        self._store = Store(self.resources, self.objects)
        for namespace in ("default", "kube-system"):
            self.store.create(NAMESPACES, None, {"metadata": {"name": namespace}})

    @property
    def store(self) -> Store:
        """The objects and their watch log (call only from the server's event loop)."""
        assert self._store is not None
        return self._store

    def end_watches(self) -> None:
        """End every open watch stream and any opened later (the server is shutting down).

        Clients see their stream end, as when an API server goes away; a stream
        whose client does not read stays blocked on its socket until the server
        cancels its handler.
        """
        self._watches_ended = True
        for queue in self._watch_queues:
            queue.put_nowait(None)

    async def run_garbage_collector(self) -> None:
        """Collect garbage every ``gc_interval`` seconds until cancelled (Store.collect_garbage)."""
        while True:
            await asyncio.sleep(self.gc_interval)
            try:
                self.store.collect_garbage()
            except Exception as exc:  # kept for Cluster.stop to report, never silently lost
                self.gc_errors.append(exc)

    def drop_watches(self) -> None:
        """End the watch streams open now (later ones are served): clients must resume."""
        for queue in self._watch_queues:
            queue.put_nowait(None)

    # --- the request log --------------------------------------------------------

    def __iter__(self) -> Iterator[rendering.Request]:
        """The request log; while this task matches a request, just that request (module doc)."""
        matching = _MATCHING.get()
        if matching is not None and matching[0] is self:
            yield matching[1]
            return
        yield from super().__iter__()

    # --- request parsing (kmock 0.8 fails on /api/v1/namespaces) ---------------

    @staticmethod
    async def _parse(raw: aiohttp.web.BaseRequest, number: int) -> rendering.Request:
        body = await raw.read()
        if "protobuf" in raw.headers.get("Content-Type", ""):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "protobuf bodies are not emulated by this test cluster: send JSON "
                "(Content-Type: application/json)",
            )
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            if patches.media_type(raw.headers.get("Content-Type", "")) != patches.APPLY:
                raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None
            data = _yaml_body(text)  # an applied configuration may be YAML
        api = paths.parse_path(raw.path)
        method = raw.method.upper()
        query = dict(raw.query)
        action: kmock.action | None = None
        if api.group is not None and not api.is_discovery:
            if method == "GET":
                watching = query.get("watch") in ("true", "1")
                action = (
                    kmock.action.WATCH
                    if watching
                    else (kmock.action.FETCH if api.name else kmock.action.LIST)
                )
            elif method == "POST":
                action = kmock.action.CREATE
            elif method in ("PATCH", "PUT"):
                action = kmock.action.UPDATE
            elif method == "DELETE":
                action = kmock.action.DELETE
        resource = (
            None
            if api.group is None
            else kmock.resource(group=api.group, version=api.version, plural=api.plural)
        )
        return rendering.Request(
            id=number,
            raw_request=raw,
            url=raw.url,
            method=method,
            params=query,
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            data=data,
            body=body,
            text=text,
            action=action,
            resource=resource,
            namespace=api.namespace,
            name=api.name,
            subresource=api.subresource,
        )

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Serve one HTTP request: API errors become ``kind: Status`` answers."""
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            request = await self._parse(raw_request, len(self._requests))
            self._requests.append(request)
            self._authorize(request)
            token = None if slices_the_log(self._payloads) else _MATCHING.set((self, request))
            try:
                try:
                    return await self._handle(request)
                except replies.Reply as reply:
                    return await replies.send(reply, raw_request)
            except rendering.StreamingError as exc:
                raw_response = exc.args[0]
                if exc.__cause__ is None:
                    raise
                raise exc.__cause__ from None
            finally:
                if token is not None:
                    _MATCHING.reset(token)
        except ApiError as exc:
            if raw_response is not None and raw_response.prepared:
                line = json.dumps({"type": "ERROR", "object": exc.as_status()}) + "\n"
                await raw_response.write(line.encode())
                await raw_response.write_eof()
                return raw_response
            return aiohttp.web.json_response(exc.as_status(), status=exc.status)
        except Exception as exc:
            if self._errors:
                self._errors[-1].append(exc)
            if raw_response is not None and raw_response.prepared:
                await self._stream_error(exc, raw_response)
                await raw_response.write_eof()
                return raw_response
            return await self._render_error(exc)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        # kmock's own _handle writes objects before dispatching; the store does it here instead,
        # in the fallback reactions, so a test's reaction that answers first changes nothing.
        return await apps.RawHandler._handle(self, request)

    # --- authorization (see rbac.py) --------------------------------------------------

    def _identity(self, request: rendering.Request) -> rbac.Identity | None:
        """Who makes the request, when RBAC checks it (None: an administrator).

        A registered bearer token (Python clients, kopf) or impersonation headers
        (kubectl does not send a token over plain HTTP, but sends ``--as``/``as:``).
        """
        impersonated = header(request, "Impersonate-User")
        if impersonated:
            raw = getattr(request, "_raw_request", None)
            groups = tuple(raw.headers.getall("Impersonate-Group", ())) if raw is not None else ()
            return rbac.impersonated(impersonated, groups)
        authorization = header(request, "Authorization")
        return self.identities.get(authorization.removeprefix("Bearer ").strip())

    def _authorize(self, request: rendering.Request) -> None:
        """403 when the request's identity is checked and RBAC does not grant the call."""
        if request.resource is None or request.resource.plural is None:
            return  # discovery, OpenAPI, /version: open to all, as system:discovery makes them
        who = self._identity(request)
        if who is None:
            return
        attrs = rbac.Attributes(
            rbac.verb_of(request.method, request.name, request.params),
            str(request.resource.group),
            str(request.resource.plural),
            request.subresource,
            request.namespace,
            request.name,
        )
        roles = RBAC_RESOURCES
        granted = rbac.allowed(
            who,
            attrs,
            roles=self.store.select(roles["roles"]),
            cluster_roles=self.store.select(roles["clusterroles"]),
            bindings=self.store.select(roles["rolebindings"]),
            cluster_bindings=self.store.select(roles["clusterrolebindings"]),
        )
        if not granted:
            message = rbac.forbidden_message(who, attrs)
            self.denied.append(message)
            raise ApiError(403, "Forbidden", message)

    # --- discovery (kmock 0.8's is wrong for the core group: see discovery.py) -------

    async def _serve_server_version(self, request: rendering.Request) -> rendering.Payload:
        """``/version``: the Kubernetes version whose API this emulates (kubectl 1.32's peer)."""
        return SERVER_VERSION

    async def _serve_api(self, request: rendering.Request) -> rendering.Payload:
        return {"kind": "APIVersions", "versions": discovery.core_versions(self.resources)}

    async def _serve_apis(self, request: rendering.Request) -> rendering.Payload:
        return discovery.api_group_list(self.resources)

    async def _serve_group(self, request: rendering.Request) -> rendering.Payload:
        assert request.resource is not None
        found = discovery.api_group(self.resources, str(request.resource.group))
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return found

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        assert request.resource is not None
        group, version = str(request.resource.group), str(request.resource.version)
        found = discovery.resource_list(self.resources, group, version)
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return found

    # --- OpenAPI (kubectl explain, and validation: see openapi.py) -------------------

    def _openapi_documents(self) -> dict[tuple[str, str], dict[str, Any]]:
        return openapi.documents(self.resources, self.store.select(CRDS))

    async def _serve_openapi_v3(self, request: rendering.Request) -> rendering.Payload:
        documents = self._openapi_documents()
        wanted = request.url.path.removeprefix("/openapi/v3").strip("/")
        if not wanted:
            return openapi.v3_index(documents)
        for gv, document in documents.items():
            if openapi.path_of(*gv) == wanted:
                return document
        raise ApiError(404, "NotFound", f"no OpenAPI v3 document for {wanted!r}")

    async def _serve_openapi_v2(self, request: rendering.Request) -> rendering.Payload:
        return openapi.v2_document(self._openapi_documents())

    # --- the fallback reactions: what a cluster answers -------------------------

    def _resource(self, request: rendering.Request) -> kmock.resource:
        assert request.resource is not None
        self.store.info(request.resource)
        return request.resource

    def _printer(self, resource: kmock.resource) -> tables.Printer:
        """The Table printer of a resource: built-in, its CRD's columns, or the default."""
        found = core_printers.PRINTERS.get((str(resource.group), str(resource.plural)))
        if found is not None:
            return found
        for crd in self.store.select(CRDS):
            spec = crd.get("spec") or {}
            names = spec.get("names") or {}
            if (spec.get("group"), names.get("plural")) == (resource.group, resource.plural):
                return tables.crd_printer(crd, str(resource.version))
        return tables.DEFAULT_PRINTER

    def _presenter(
        self, request: rendering.Request, resource: kmock.resource
    ) -> Callable[[list[dict[str, Any]], dict[str, Any]], dict[str, Any]] | None:
        """How to answer objects when the client asks for a Table (None: as they are)."""
        version = tables.table_version(header(request, "Accept"))
        if version is None:
            return None
        include = tables.include_object(request.params)
        print_with = self._printer(resource)
        now = self.store.clock()

        def present(objects: list[dict[str, Any]], list_meta: dict[str, Any]) -> dict[str, Any]:
            return tables.table(
                objects, print_with, now, version=version, include=include, list_meta=list_meta
            )

        return present

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        labels, fields = _selectors(request)
        body = self.store.list_body(resource, request.namespace, labels, fields)
        present = self._presenter(request, resource)
        return body if present is None else present(body["items"], body["metadata"])

    async def _serve_fetch(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        assert request.name is not None
        if resource == PODS and request.subresource == "log":
            self._serve_log(str(request.namespace), request.name, request.params)
        if request.subresource not in (None, "status"):
            raise ApiError(404, "NotFound", f"subresource {request.subresource!r} is not emulated")
        found = self.store.find(resource, request.namespace, request.name)
        present = self._presenter(request, resource) if request.subresource is None else None
        if present is None:
            return found
        return present([found], {"resourceVersion": found["metadata"].get("resourceVersion")})

    def _serve_log(self, namespace: str, name: str, params: Mapping[str, str]) -> NoReturn:
        """``GET pods/NAME/log``: the container's output from the node, as plain text."""
        pod = self.store.find(PODS, namespace, name)  # 404 for an unknown pod
        options = podlogs.parse_options(pod, params)
        if self.log_source is None:
            raise ApiError(
                400,
                "BadRequest",
                f"pod {name}: no node serves container logs in this emulated cluster "
                "(start a process kubelet: Cluster.start_kubelet)",
            )
        try:
            served = str(podspec.first_container(pod).get("name"))
        except podspec.ContainerConfigError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        if options.container != served:
            raise ApiError(
                400,
                "BadRequest",
                f"container {options.container!r} in pod {name!r} is not run by the process "
                f"kubelet: it runs only the first container ({served!r})",
            )
        try:
            text = self.log_source.container_log(namespace, name, previous=options.previous)
        except podlogs.LogUnavailable as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        shown = podlogs.tail(text, options.tail_lines)
        if not options.follow or options.previous:
            raise replies.Reply(shown, content_type=LOG_TYPE)
        follow = self._follow_log(namespace, name, shown, len(text), podlogs.restart_count(pod))
        raise replies.Reply(stream=follow, content_type=LOG_TYPE)

    async def _follow_log(
        self, namespace: str, name: str, shown: str, sent: int, restarts: int
    ) -> AsyncGenerator[str, None]:
        """``kubectl logs -f``: the tail, then what the container writes, until it ends."""
        yield shown
        while not self._watches_ended and self.log_source is not None:
            await asyncio.sleep(LOG_POLL_SECONDS)
            found = self.store.select(PODS, namespace, (), (_name_is(name),))
            ended = podlogs.container_ended(found[0] if found else None, restarts)
            try:
                text = self.log_source.container_log(namespace, name)
            except podlogs.LogUnavailable:
                return
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
            if ended:
                return

    async def _serve_create(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        if request.name is None:
            warnings = writes.field_warnings(self.store, resource, request.params, request.data)
            with self._writing(request):
                created = self.store.create(resource, request.namespace, request.data)
            raise replies.Reply(created, status=201, warnings=warnings)
        if resource == PODS and request.subresource == "binding":
            return self.store.bind_pod(str(request.namespace), request.name, request.data)
        if resource == PODS and request.subresource == "eviction":
            return self.store.evict_pod(str(request.namespace), request.name, request.data)
        raise ApiError(405, "MethodNotAllowed", f"POST is not supported on {request.url.path}")

    async def _serve_update(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        if request.name is None:
            raise ApiError(405, "MethodNotAllowed", "PATCH and PUT need an object name")
        namespace, name, body = request.namespace, request.name, request.data
        warnings = writes.field_warnings(self.store, resource, request.params, body)
        content_type = header(request, "Content-Type") or patches.MERGE
        with self._writing(request):
            if request.method == "PUT":
                written = self.store.replace(resource, namespace, name, body, request.subresource)
            elif patches.media_type(content_type) == patches.APPLY and not request.subresource:
                written = writes.server_side_apply(
                    self.store, resource, namespace, name, request.params, body
                )
            else:
                written = self.store.patch(
                    resource, namespace, name, content_type, body, request.subresource
                )
        raise replies.Reply(written, warnings=warnings)

    async def _serve_delete(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        options = DeleteOptions.parse(request.data, request.params)
        with self._writing(request):
            if request.name is not None:
                return self.store.delete(resource, request.namespace, request.name, options)
            labels, fields = _selectors(request)  # deletecollection
            for obj in self.store.select(resource, request.namespace, labels, fields):
                meta = obj["metadata"]
                with contextlib.suppress(ApiError):
                    self.store.delete(resource, meta.get("namespace"), meta["name"], options)
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}

    @contextlib.contextmanager
    def _writing(self, request: rendering.Request) -> Iterator[None]:
        """The store as the write asks: stored, or (``dryRun=All``) answered only."""
        options = request.data if request.method == "DELETE" else None  # DeleteOptions
        if writes.dry_run(request.params, options):
            with self.store.dry_running():
                yield
        else:
            yield

    def _bookmark(self, resource: kmock.resource) -> dict[str, Any]:
        """A BOOKMARK event: the current version, so that the client resumes from it."""
        group, version = resource.group, resource.version
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": self.store.info(resource).kind,
                "apiVersion": f"{group}/{version}" if group else str(version),
                "metadata": {"resourceVersion": str(self.store.revision)},
            },
        }

    def _serve_watch(self, request: rendering.Request) -> NoReturn:
        """A watch: one JSON event a line, as ``application/json`` (as kubectl reads it)."""
        resource = self._resource(request)
        labels, fields = _selectors(request)
        since = request.params.get("resourceVersion") or "0"
        if not since.isdigit():
            raise ApiError(400, "BadRequest", f"resourceVersion: invalid value {since!r}")
        timeout_text = request.params.get("timeoutSeconds")
        timeout = float(timeout_text) if timeout_text else None
        present = self._presenter(request, resource)
        bookmarks = podlogs.parse_bool(
            "allowWatchBookmarks", request.params.get("allowWatchBookmarks") or "false"
        )
        stream = self._stream(
            resource, request.namespace, labels, fields, int(since), timeout, bookmarks
        )
        if present is not None:
            stream = _presented(stream, present)
        raise replies.Reply(stream=stream)

    async def _stream(
        self,
        resource: kmock.resource,
        namespace: str | None,
        labels: Sequence[selectors.Requirement],
        fields: Sequence[selectors.Requirement],
        since: int,
        timeout: float | None,
        bookmarks: bool = False,
    ) -> AsyncGenerator[Any, None]:
        # The snapshot and the subscription happen with no await between them: nothing is lost.
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        if self._watches_ended:
            queue.put_nowait(None)  # the server is shutting down: the stream ends at once
        if since == 0:  # "any version": the current objects as ADDED, then the changes
            backlog = [
                {"type": "ADDED", "object": obj}
                for obj in self.store.select(resource, namespace, labels, fields)
            ]
        else:
            try:
                changes = self.store.events_since(since, resource)
            except ApiError as exc:
                if exc.status != 410:
                    raise
                # Older than the window: an API server answers 200 with one ERROR event.
                yield replies.OPEN
                yield {"type": "ERROR", "object": exc.as_status()}
                return
            backlog = [
                view
                for event in changes
                if (view := view_event(event, namespace, labels, fields)) is not None
            ]
        listener: Callable[[WatchEvent], None] = queue.put_nowait
        self.store.listeners.append(listener)
        self._watch_queues.add(queue)
        try:
            yield replies.OPEN  # send the headers now: a quiet watch is still an open watch
            for item in backlog:
                yield item
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                tick = loop.time() + self.bookmark_interval if bookmarks else None
                wake = min((t for t in (deadline, tick) if t is not None), default=None)
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation (the client
                # went away, the server shuts down) that comes with an event, and the stream
                # then waits on for the next one. asyncio.timeout_at never swallows it.
                try:
                    async with asyncio.timeout_at(wake):
                        event = await queue.get()
                except TimeoutError:
                    if bookmarks:  # also just before the watch ends, as an API server does
                        yield self._bookmark(resource)
                    if deadline is not None and loop.time() >= deadline:
                        return  # timeoutSeconds: the server ends the watch; the client resumes
                    continue
                if event is None:
                    return  # end_watches(): the server is shutting down
                seen = self.store.view_of(resource, event)
                if seen is None:
                    continue
                view = view_event(seen, namespace, labels, fields)
                if view is not None:
                    yield view
        finally:
            self.store.listeners.remove(listener)
            self._watch_queues.discard(queue)


async def _presented(
    stream: AsyncGenerator[Any, None],
    present: Callable[[list[dict[str, Any]], dict[str, Any]], dict[str, Any]],
) -> AsyncGenerator[Any, None]:
    """A watch whose events carry each object as a one-row Table (``kubectl get -w``)."""
    try:
        async for event in stream:
            changed = isinstance(event, dict) and event.get("type") in CHANGES
            if changed and isinstance(event.get("object"), dict):
                obj = event["object"]
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                yield {**event, "object": present([obj], {"resourceVersion": rv})}
            else:
                yield event
    finally:
        await stream.aclose()


def _yaml_body(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ApiError(400, "BadRequest", f"the applied configuration is not YAML: {exc}") from None


def _name_is(name: str) -> selectors.Requirement:
    return selectors.Requirement("metadata.name", "=", (name,))


def header(request: rendering.Request, name: str) -> str:
    """A request header by its case-insensitive name ("" when absent)."""
    wanted = name.lower()
    return next((v for k, v in request.headers.items() if k.lower() == wanted), "")


def object_summary(obj: Mapping[str, Any]) -> str:
    """``kind namespace/name`` of an object, for messages."""
    meta = obj.get("metadata", {})
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')} {where}{meta.get('name', '?')}"
