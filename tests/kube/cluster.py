"""An emulated cluster on its own thread: the API server, a kubeconfig, and a handle for tests.

:class:`Cluster` runs :class:`~tests.kube.emulator.ClusterEmulator` behind
``kmock.Server`` on 127.0.0.1 in a background thread with its own event loop,
so that synchronous tests, asynchronous tests and subprocesses (``kopf run``,
``kubectl``-like clients) all reach it the same way, and nothing a test does
on its own loop can stall the API. Its methods read and write objects
directly (no HTTP), with the same rules and watch events as API requests.

Stopping is prompt: open watch streams are ended, and a request handler that
does not finish within :data:`SHUTDOWN_GRACE` seconds (a watch whose client
stopped reading, a client that never sent its body) is cancelled and its
connection closed; aiohttp's default would wait 60 seconds for each.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import copy
import hashlib
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp.test_utils
import aiohttp.web
import kmock
import yaml

from tests.kube import patches, rbac
from tests.kube.emulator import ClusterEmulator
from tests.kube.kubelet import ProcessKubelet
from tests.kube.store import NAMESPACES, DeleteOptions, Store

T = TypeVar("T")
ResourceRef = str | kmock.resource

#: Seconds a stopping server waits for a request handler to finish before cancelling it
#: (and again for the cancelled one to end): handlers answer in milliseconds, and a watch
#: ends as soon as it is told to, so only a stuck one waits this long.
SHUTDOWN_GRACE = 0.5


class HarnessError(AssertionError):
    """The test harness itself failed (a pod worker of the process kubelet raised)."""


class PromptServer(aiohttp.test_utils.RawTestServer):
    """kmock's aiohttp test server, with a shutdown grace of :data:`SHUTDOWN_GRACE` seconds."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web.ServerRunner:
        server = aiohttp.web.Server(self._handler, loop=self._loop, debug=debug, **kwargs)
        return aiohttp.web.ServerRunner(
            server, debug=debug, shutdown_timeout=SHUTDOWN_GRACE, **kwargs
        )


def resolve(resources: kmock.ResourcesArray, ref: ResourceRef) -> kmock.resource:
    """A declared resource from ``pods``, ``tj``, ``TrainingJob``, ``v1/pods`` or a resource.

    Raises:
        KeyError: no declared resource has that name; the message lists how to name one.
    """
    if isinstance(ref, kmock.resource) and ref.group is not None and ref.version is not None:
        return ref
    text = ref if isinstance(ref, str) else str(ref.plural)
    if "/" in text:
        wanted = kmock.resource(text)
        for resource in resources:
            if wanted.check(resource):
                return resource
    candidates = []
    for resource in resources:
        info = resources[resource]
        names = {resource.plural, info.singular, (info.kind or "").lower(), *info.shortnames}
        if text.lower() in names:
            candidates.append(resource)
    if candidates:
        # Prefer the core group, then the shortest group (as kubectl prefers v1 pods to metrics).
        return sorted(candidates, key=lambda r: (r.group != "", len(r.group or "")))[0]
    raise KeyError(
        f"no resource named {text!r} is declared in the emulator; use a plural ('pods'), "
        "a short name ('tj'), a kind ('TrainingJob') or 'group/version/plural'"
    )


def resource_of(resources: kmock.ResourcesArray, obj: Mapping[str, Any]) -> kmock.resource:
    """The resource of a manifest, from its ``apiVersion`` and ``kind``."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version or not kind:
        raise ValueError("the manifest needs apiVersion and kind (e.g. v1 and Pod)")
    group, _, version = api_version.rpartition("/")
    for resource in resources:
        info = resources[resource]
        if (resource.group, resource.version, info.kind) == (group, version, kind):
            return resource
    raise KeyError(f"no resource of kind {kind!r} in {api_version!r} is declared in the emulator")


def kubeconfig_text(
    server_url: str,
    namespace: str = "default",
    token: str = "emulated-cluster-token",
    identity: rbac.Identity | None = None,
) -> str:
    """A kubeconfig whose only context points at ``server_url`` (plain HTTP, a bearer token;
    with ``identity``, also kubectl's impersonation of it)."""
    user: dict[str, Any] = {"token": token}
    if identity is not None:
        user["as"] = identity.user
        user["as-groups"] = [g for g in identity.groups if g != rbac.AUTHENTICATED]
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": server_url}}],
            "users": [{"name": "tester", "user": user}],
            "contexts": [
                {
                    "name": "emulated",
                    "context": {"cluster": "emulated", "user": "tester", "namespace": namespace},
                },
            ],
            "current-context": "emulated",
        }
    )


class Cluster:
    """The emulated API server (and optionally more, see ``on_start``) on a background loop."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        """Prepare (``start`` serves): files under ``workdir``; ``port`` None picks a free one."""
        self.workdir = workdir
        self.port = port
        self.kubeconfig = workdir / "kubeconfig"
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._emulator: ClusterEmulator | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.kubelet: ProcessKubelet | None = None

    # --- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 30) -> Cluster:
        """Start the server thread and write the kubeconfig; returns self."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="emulated-cluster", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the emulated API server did not start within {timeout}s")
        if self._failure is not None:
            raise RuntimeError("the emulated API server failed to start") from self._failure
        self.kubeconfig.write_text(kubeconfig_text(self.url))
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() or logged by stop()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._emulator = ClusterEmulator()
        async with (
            self._emulator,
            kmock.Server(
                self._emulator, host="127.0.0.1", port=self.port, server_cls=PromptServer
            ) as server,
        ):
            self.url = str(server.url).rstrip("/")
            collector = asyncio.create_task(self._emulator.run_garbage_collector())
            self._ready.set()
            await self._stopping.wait()
            collector.cancel()
            self._emulator.end_watches()  # then the server closes connections and cancels the rest

    def kubeconfig_for(self, identity: rbac.Identity, namespace: str = "default") -> Path:
        """A kubeconfig whose calls are ``identity``'s, checked by RBAC (see rbac.py)."""
        token = "identity-" + hashlib.sha256(identity.user.encode()).hexdigest()[:24]
        self.emulator.identities[token] = identity
        safe = "".join(c if c.isalnum() else "-" for c in identity.user)
        path = self.workdir / f"kubeconfig-{safe}"
        path.write_text(kubeconfig_text(self.url, namespace, token, identity))
        return path

    def start_kubelet(self, root: Path, **options: Any) -> ProcessKubelet:
        """Start a :class:`ProcessKubelet` on the server's loop (options as its constructor's)."""
        kubelet = ProcessKubelet(self.url, root, **options)
        self.run(kubelet.start())
        self.kubelet = kubelet
        self.emulator.log_source = kubelet  # pods/NAME/log reads its containers' output
        return kubelet

    def stop(self, timeout: float = 30) -> None:
        """Stop the kubelet (its processes are killed), then the server, and join its thread.

        Raises:
            HarnessError: after stopping, when the kubelet's pod workers or the garbage
                collector failed during the run: a test must not pass over a broken node.
        """
        kubelet, emulator = self.kubelet, self._emulator
        self._stop(timeout)
        errors = [
            *(kubelet.errors if kubelet is not None else []),
            *(emulator.gc_errors if emulator is not None else []),
        ]
        if errors:
            raise HarnessError(
                f"the process kubelet or the garbage collector failed {len(errors)} time(s): "
                + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            )

    def _stop(self, timeout: float) -> None:
        if self.kubelet is not None and self._loop is not None and self._loop.is_running():
            self.run(self.kubelet.stop(), timeout)
            self.kubelet = None
            self.emulator.log_source = None
        if self._loop is not None and self._stopping is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the emulated API server did not stop within {timeout}s")

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- running things on the server's loop --------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop that serves the API (for tasks that must live beside it)."""
        if self._loop is None:
            raise RuntimeError("the cluster is not started: call start() first")
        return self._loop

    @property
    def emulator(self) -> ClusterEmulator:
        """The kmock emulator (its ``objects`` keep each object's history for assertions)."""
        if self._emulator is None:
            raise RuntimeError("the cluster is not started: call start() first")
        return self._emulator

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the server's loop (the store is not thread-safe)."""

        async def wrapper() -> T:
            return fn(self.emulator.store)

        return self.run(wrapper())

    # --- objects ----------------------------------------------------------------------

    def resource(self, ref: ResourceRef) -> kmock.resource:
        """Resolve ``pods``, ``tj``, ``v1/pods``… to a declared resource."""
        return resolve(self.emulator.resources, ref)

    def create(self, obj: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create a manifest (``apiVersion`` and ``kind`` pick the resource); 409 if it exists."""
        resource = resource_of(self.emulator.resources, obj)
        return self.call(lambda s: s.create(resource, namespace, obj))

    def create_from_file(
        self, path: Path, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Create every document of a YAML file, in order (``kubectl create -f``)."""
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        return [self.create(document, namespace) for document in documents]

    def install_crds(self, folder: Path) -> builtins.list[str]:
        """Create every CRD in ``folder/*.yaml`` (as ``helm install`` does with ``crds/``)."""
        names: builtins.list[str] = []
        for path in sorted(folder.glob("*.yaml")):
            names += [crd["metadata"]["name"] for crd in self.create_from_file(path)]
        return names

    def get_table(
        self, ref: ResourceRef, namespace: str | None = None, *, wide: bool = False
    ) -> builtins.list[dict[str, Any]]:
        """The rows ``kubectl get`` prints: NAME and the CRD's printer columns (AGE otherwise)."""
        from tests.kube import printer

        resource = self.resource(ref)
        crds = [
            crd
            for crd in self.list("customresourcedefinitions")
            if crd["spec"].get("group") == resource.group
            and crd["spec"].get("names", {}).get("plural") == resource.plural
        ]
        if crds:
            cols = printer.columns(crds[0], str(resource.version), wide=wide)
        else:
            cols = [
                printer.Column("Name", ".metadata.name"),
                printer.Column("Age", ".metadata.creationTimestamp", "date"),
            ]
        objects = sorted(self.list(resource, namespace), key=lambda o: o["metadata"]["name"])
        return printer.rows(objects, cols, self.call(lambda s: s.clock()))

    def ensure_namespace(self, name: str) -> None:
        """Create namespace ``name`` unless it exists."""

        def create(store: Store) -> None:
            names = {o["metadata"]["name"] for o in store.select(NAMESPACES)}
            if name not in names:
                store.create(NAMESPACES, None, {"metadata": {"name": name}})

        self.call(create)

    def get(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any]:
        """The object, or :class:`~tests.kube.store.ApiError` 404."""
        resource = self.resource(ref)
        return self.call(lambda s: s.find(resource, namespace, name))

    def find(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        resource = self.resource(ref)

        def lookup(store: Store) -> dict[str, Any] | None:
            found = store.select(resource, namespace)
            return next((o for o in found if o["metadata"]["name"] == name), None)

        return self.call(lookup)

    def list(
        self, ref: ResourceRef, namespace: str | None = None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Objects of a resource (in ``namespace`` if given), optionally by label selector."""
        from tests.kube import selectors

        resource = self.resource(ref)
        labels = selectors.parse_label_selector(label_selector)
        return self.call(lambda s: s.select(resource, namespace, labels))

    def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        content_type: str = patches.MERGE,
    ) -> dict[str, Any]:
        """Patch an object (merge patch unless told otherwise), or its ``status``."""
        resource = self.resource(ref)
        return self.call(
            lambda s: s.patch(resource, namespace, name, content_type, patch, subresource)
        )

    def delete(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
    ) -> dict[str, Any]:
        """Delete as ``kubectl delete`` does (graceful for pods on a node; background GC)."""
        resource = self.resource(ref)
        options = DeleteOptions(grace_period_seconds, propagation_policy)
        return self.call(lambda s: s.delete(resource, namespace, name, options))

    def history(
        self, ref: ResourceRef, namespace: str | None, name: str
    ) -> builtins.list[dict[str, Any]]:
        """Every state the object went through, oldest first (across deletion and re-creation)."""
        resource = self.resource(ref)
        key_ns = namespace if self.emulator.resources[resource].namespaced else None

        def states(store: Store) -> builtins.list[dict[str, Any]]:
            if (resource, key_ns, name) not in store.objects:
                return []
            versions = store.objects[resource, key_ns, name].history
            return [copy.deepcopy(v.raw) for v in versions if v is not None]

        return self.call(states)

    def events_for(self, obj: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
        """Core Events about ``obj`` (by uid), oldest first, as ``kubectl describe`` lists them."""
        uid = obj["metadata"]["uid"]
        namespace = obj["metadata"].get("namespace")
        events = self.list("v1/events", namespace)
        return [e for e in events if (e.get("involvedObject") or {}).get("uid") == uid]

    # --- waiting ----------------------------------------------------------------------

    def wait_for(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 30,
        what: str = "the condition",
        interval: float = 0.05,
    ) -> dict[str, Any]:
        """Poll until the object exists and ``predicate(obj)``; returns it.

        Raises:
            TimeoutError: naming ``what`` and the object's last state.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            last = self.find(ref, namespace, name)
            if last is not None and predicate(last):
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{ref} {namespace}/{name}: {what} not met within {timeout}s; "
                    f"last state: {last!r}"
                )
            time.sleep(interval)

    def wait_gone(
        self, ref: ResourceRef, namespace: str | None, name: str, *, timeout: float = 30
    ) -> None:
        """Poll until the object no longer exists."""
        deadline = time.monotonic() + timeout
        while self.find(ref, namespace, name) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ref} {namespace}/{name} still exists after {timeout}s")
            time.sleep(0.05)

    async def await_for(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 30,
        what: str = "the condition",
    ) -> dict[str, Any]:
        """:meth:`wait_for` for asynchronous tests (polls without blocking their loop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            last = await loop.run_in_executor(None, self.find, ref, namespace, name)
            if last is not None and predicate(last):
                return last
            if loop.time() > deadline:
                raise TimeoutError(
                    f"{ref} {namespace}/{name}: {what} not met within {timeout}s; "
                    f"last state: {last!r}"
                )
            await asyncio.sleep(0.05)
