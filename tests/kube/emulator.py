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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps, dsl, rendering

from tests.kube import paths, podlogs, podspec, resources, selectors
from tests.kube.store import (
    NAMESPACES,
    PODS,
    ApiError,
    DeleteOptions,
    Store,
    WatchEvent,
)

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
        fields += (selectors.Requirement("metadata.name", "=", (request.name,)),)
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

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
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
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None
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
            token = None if slices_the_log(self._payloads) else _MATCHING.set((self, request))
            try:
                return await self._handle(request)
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
        response = await apps.RawHandler._handle(self, request)
        if (
            request.subresource == "log"
            and not response.prepared
            and response.content_type == "application/octet-stream"
        ):
            response.content_type = "text/plain"  # logs are text, as the API server sends them
            response.charset = "utf-8"
        return response

    # --- the fallback reactions: what a cluster answers -------------------------

    def _resource(self, request: rendering.Request) -> kmock.resource:
        assert request.resource is not None
        self.store.info(request.resource)
        return request.resource

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        labels, fields = _selectors(request)
        return self.store.list_body(resource, request.namespace, labels, fields)

    async def _serve_fetch(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        assert request.name is not None
        if resource == PODS and request.subresource == "log":
            return self._serve_log(str(request.namespace), request.name, request.params)
        if request.subresource not in (None, "status"):
            raise ApiError(404, "NotFound", f"subresource {request.subresource!r} is not emulated")
        return self.store.find(resource, request.namespace, request.name)

    def _serve_log(self, namespace: str, name: str, params: Mapping[str, str]) -> bytes:
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
        return podlogs.tail(text, options.tail_lines).encode()

    async def _serve_create(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        if request.name is None:
            return self.store.create(resource, request.namespace, request.data)
        if resource == PODS and request.subresource == "binding":
            return self.store.bind_pod(str(request.namespace), request.name, request.data)
        if resource == PODS and request.subresource == "eviction":
            return self.store.evict_pod(str(request.namespace), request.name, request.data)
        raise ApiError(405, "MethodNotAllowed", f"POST is not supported on {request.url.path}")

    async def _serve_update(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        if request.name is None:
            raise ApiError(405, "MethodNotAllowed", "PATCH and PUT need an object name")
        if request.method == "PUT":
            return self.store.replace(
                resource, request.namespace, request.name, request.data, request.subresource
            )
        content_type = request.headers.get("Content-Type", "application/merge-patch+json")
        return self.store.patch(
            resource,
            request.namespace,
            request.name,
            content_type,
            request.data,
            request.subresource,
        )

    async def _serve_delete(self, request: rendering.Request) -> rendering.Payload:
        resource = self._resource(request)
        options = DeleteOptions.parse(request.data, request.params)
        if request.name is not None:
            return self.store.delete(resource, request.namespace, request.name, options)
        labels, fields = _selectors(request)  # deletecollection
        for obj in self.store.select(resource, request.namespace, labels, fields):
            meta = obj["metadata"]
            with contextlib.suppress(ApiError):
                self.store.delete(resource, meta.get("namespace"), meta["name"], options)
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}

    def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        resource = self._resource(request)
        labels, fields = _selectors(request)
        since = request.params.get("resourceVersion") or "0"
        if not since.isdigit():
            raise ApiError(400, "BadRequest", f"resourceVersion: invalid value {since!r}")
        timeout_text = request.params.get("timeoutSeconds")
        timeout = float(timeout_text) if timeout_text else None
        return self._stream(resource, request.namespace, labels, fields, int(since), timeout)

    async def _stream(
        self,
        resource: kmock.resource,
        namespace: str | None,
        labels: Sequence[selectors.Requirement],
        fields: Sequence[selectors.Requirement],
        since: int,
        timeout: float | None,
    ) -> AsyncIterator[rendering.Payload]:
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
            backlog = [
                view
                for event in self.store.events_since(since, resource)
                if (view := view_event(event, namespace, labels, fields)) is not None
            ]
        listener: Callable[[WatchEvent], None] = queue.put_nowait
        self.store.listeners.append(listener)
        self._watch_queues.add(queue)
        try:
            yield b""  # send the headers now: a quiet watch is still an open watch
            for item in backlog:
                yield item
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation (the client
                # went away, the server shuts down) that comes with an event, and the stream
                # then waits on for the next one. asyncio.timeout_at never swallows it.
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await queue.get()
                except TimeoutError:
                    return  # timeoutSeconds: the server ends the watch; the client resumes
                if event is None:
                    return  # end_watches(): the server is shutting down
                if event.resource != resource:
                    continue
                view = view_event(event, namespace, labels, fields)
                if view is not None:
                    yield view
        finally:
            self.store.listeners.remove(listener)
            self._watch_queues.discard(queue)


def object_summary(obj: Mapping[str, Any]) -> str:
    """``kind namespace/name`` of an object, for messages."""
    meta = obj.get("metadata", {})
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')} {where}{meta.get('name', '?')}"
