"""The process kubelet: runs each pod of the emulated cluster as a local process.

It works through the API as a kubelet does: it lists and watches pods, binds
unscheduled ones to its node (``pods/binding``, standing in for the scheduler),
runs the first container's command with its environment, mounts mapped to
folders (claims by name under ``volumes/``, ``emptyDir`` per pod) and its
termination message file, and patches ``pods/status`` with the phase and
``containerStatuses`` a kubelet would report. A pod being deleted gets SIGTERM,
then SIGKILL after its grace period; then the kubelet removes the pod object
(a delete with grace 0). A pod with scheduling gates waits, unbound and
``SchedulingGated``, until they are removed. Pods named under a headless Service
(``hostname`` and ``subdomain``) reach each other through :attr:`dns` (test-only
cluster DNS: their ports and ``TF_CONFIG`` addresses map to loopback). Faults are
injected from tests with :meth:`kill`, :meth:`oom_kill`, :meth:`evict`,
:meth:`lose_node`, :meth:`fail_node` (a whole node, its ReadWriteOnce claims held), and
:attr:`unpullable`.

Every method that tests call is synchronous and thread-safe: the kubelet lives
on the emulated cluster's event loop and the calls are passed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.kube import dns, podlogs, podspec, podstatus
from tests.kube.kopf_process import free_port

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: Bytes of a termination message that a kubelet keeps.
MESSAGE_LIMIT = 4096
#: The trainer's metrics port (``/metrics``, ``/progress``), as the operator's pods declare it.
METRICS_PORT = 9102
#: What FallbackToLogsOnError takes from the log: the last lines, at most this many bytes.
LOG_FALLBACK_LINES, LOG_FALLBACK_BYTES = 80, 2048
#: The attach/detach controller's events and its Multi-Attach message (Kubernetes' words).
FAILED_ATTACH, SUCCESSFUL_ATTACH = "FailedAttachVolume", "SuccessfulAttachVolume"
MULTI_ATTACH = (
    'Multi-Attach error for volume "{volume}" Volume is already exclusively attached to one '
    "node and can't be attached to another"
)
#: The taint an administrator applies to a dead node: its pods go, its volumes detach.
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
MERGE_PATCH = "application/merge-patch+json"


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


class KubeletError(RuntimeError):
    """A fault or query the kubelet cannot carry out (no such pod, no process yet…)."""


@dataclass(frozen=True)
class ProcessInfo:
    """A running container process, for assertions."""

    pid: int
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    log: Path
    termination_log: Path
    #: Host port of each container port (``info.ports[9102]`` to scrape metrics).
    ports: dict[int, int]


def read_message(plan: podspec.LaunchPlan, log: Path, exit_code: int) -> str:
    """The termination message: the file, or with FallbackToLogsOnError the log's tail."""
    message = ""
    with contextlib.suppress(OSError):
        message = plan.termination_log.read_bytes()[:MESSAGE_LIMIT].decode("utf-8", "replace")
    if not message and exit_code != 0 and plan.termination_policy == "FallbackToLogsOnError":
        with contextlib.suppress(OSError):
            lines = log.read_bytes().splitlines()[-LOG_FALLBACK_LINES:]
            message = b"\n".join(lines)[-LOG_FALLBACK_BYTES:].decode("utf-8", "replace")
    return message


class _PodWorker:
    """One pod's life on the node, from binding to removal."""

    def __init__(self, kubelet: ProcessKubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.changed = asyncio.Event()
        self.gone = False
        self.lost = False
        self.oom = False
        self.process: asyncio.subprocess.Process | None = None
        self.info: ProcessInfo | None = None
        self.task: asyncio.Task[None] | None = None
        #: Size of the container's log when each instance started: where its output begins.
        self.log_starts: list[int] = []

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    @property
    def pod_dir(self) -> Path:
        meta = self.pod["metadata"]
        return self.kubelet.root / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.changed.set()

    def vanish(self) -> None:
        self.gone = True
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` holds after some pod change (or the timeout passes)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            self.changed.clear()
            if deadline is not None and deadline <= loop.time():
                return False
            # Not asyncio.wait_for: on Python 3.11 it can swallow the cancellation of stop().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self.changed.wait()
        return True

    def signal(self, signum: int) -> None:
        if self.process is None or self.process.returncode is not None:
            raise KubeletError(f"pod {self.namespace}/{self.name} has no running process")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    # --- the life cycle ---------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # kept for the test to see, never silently lost
            logger.exception("pod worker %s/%s failed", self.namespace, self.name)
            self.kubelet.errors.append(exc)

    async def _run(self) -> None:
        if not self.pod.get("spec", {}).get("nodeName"):
            if self.deleting or not await self.ungated():
                return
            wanted = self.pod["spec"].get("nodeSelector") or {}
            labels = self.kubelet.node_labels
            if any(labels.get(key) != value for key, value in wanted.items()):
                await self.report_unscheduled(
                    "Unschedulable",
                    "0/1 nodes are available: 1 node(s) didn't match Pod's node "
                    f"affinity/selector (node labels {labels})",
                )
                return  # stays Pending, as with no matching node
            if not await self.claims_bound():
                return  # deleted while waiting (an unbound pod goes at once)
            await self.kubelet.bind(self.namespace, self.name)
            await self.until(lambda: self.gone or bool(self.pod["spec"].get("nodeName")))
        if self.gone:
            return
        if self.deleting:
            await self.finalize()
            return
        container = podspec.first_container(self.pod)
        image = str(container.get("image", ""))
        if image in self.kubelet.unpullable:
            message = f'Back-off pulling image "{image}"'
            await self.report(podstatus.waiting(self.pod, "ImagePullBackOff", message, _now()))
            await self.until(lambda: self.gone or self.deleting)
            await self.finalize()
            return
        if not await self.attach_claims():
            await self.finalize()
            return
        try:
            plan = await self.prepare()
        except podspec.ContainerConfigError as exc:
            await self.report(
                podstatus.waiting(self.pod, "CreateContainerConfigError", str(exc), _now())
            )
            await self.until(lambda: self.gone or self.deleting)
            await self.finalize()
            return
        await self.run_container(plan)

    async def report_unscheduled(self, reason: str, message: str) -> None:
        """The scheduler's word on a pod it does not place: PodScheduled False."""
        status = dict(self.pod.get("status") or {})
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
        ]
        await self.report(status)

    async def ungated(self) -> bool:
        """As the scheduler: a pod with scheduling gates waits (SchedulingGated) until they go."""
        if not self.pod["spec"].get("schedulingGates"):
            return True
        await self.report_unscheduled(
            "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates"
        )
        await self.until(
            lambda: self.gone or self.deleting or not self.pod["spec"].get("schedulingGates")
        )
        return not (self.gone or self.deleting)

    async def claims_bound(self) -> bool:
        """As the scheduler: wait (Pending, Unschedulable) until every claim exists and is bound."""
        try:
            claims = [s.ref for s in podspec.volume_sources(self.pod).values() if s.kind == "claim"]
        except podspec.ContainerConfigError:
            return True  # reported once the pod is on the node
        while True:
            unbound = [c for c in claims if not await self.kubelet.claim_bound(self.namespace, c)]
            if not unbound:
                return True
            await self.report_unscheduled(
                "Unschedulable", f"persistentvolumeclaim {unbound[0]!r} not found or not bound"
            )
            if await self.until(lambda: self.gone or self.deleting, timeout=0.2):
                return False

    async def attach_claims(self) -> bool:
        """As the attach/detach controller: wait while a lost node holds a ReadWriteOnce claim.

        The pod stays ``ContainerCreating`` with one ``FailedAttachVolume`` event
        ("Multi-Attach error") until the claim is detached from the lost node
        (its out-of-service taint, or :attr:`ProcessKubelet.force_detach_after`);
        then ``SuccessfulAttachVolume``. False: the pod went meanwhile.
        """
        try:
            claims = [s.ref for s in podspec.volume_sources(self.pod).values() if s.kind == "claim"]
        except podspec.ContainerConfigError:
            return True  # reported by prepare()
        node = str(self.pod["spec"]["nodeName"])
        for claim in claims:
            volume = await self.kubelet.exclusive_volume(self.namespace, claim)
            if volume is None:
                continue  # ReadWriteMany (or no such claim): nothing to attach exclusively
            key = (self.namespace, claim)
            warned = False
            while self.kubelet.attachments.get(key, node) != node:
                if not warned:
                    message = MULTI_ATTACH.format(volume=volume)
                    await self.kubelet.post_event(self.pod, "Warning", FAILED_ATTACH, message)
                    warned = True
                stop = lambda: self.gone or self.deleting  # noqa: E731
                if await self.until(stop, timeout=self.kubelet.detach_poll):
                    return False
            self.kubelet.attachments[key] = node
            said = f'AttachVolume.Attach succeeded for volume "{volume}"'
            await self.kubelet.post_event(self.pod, "Normal", SUCCESSFUL_ATTACH, said)
        return True

    async def prepare(self) -> podspec.LaunchPlan:
        """Provision volumes and resolve ConfigMap and Secret references."""
        sources = podspec.volume_sources(self.pod)
        container_ports = podspec.container_ports(self.pod)
        objects: dict[tuple[str, str], dict[str, str]] = {}
        for kind, name in podspec.referenced_objects(self.pod):
            obj = await self.kubelet.get(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")
            if obj is not None:
                objects[(kind, name)] = podspec.object_data(kind, obj)
        volume_dirs: dict[str, Path] = {}
        for source in sources.values():
            if source.kind == "claim":
                path = self.kubelet.volume_path(self.namespace, source.ref)
            else:
                path = self.pod_dir / "volumes" / source.name
            path.mkdir(parents=True, exist_ok=True)
            if source.kind in ("configMap", "secret"):
                kind = "configmaps" if source.kind == "configMap" else "secrets"
                data = objects.get((kind, source.ref))
                if data is None and not source.optional:
                    raise podspec.ContainerConfigError(
                        f'{source.kind} "{source.ref}" not found (volume {source.name!r})'
                    )
                for key, value in (data or {}).items():
                    (path / key).write_text(value)
            volume_dirs[source.name] = path
        plan = podspec.plan(
            self.pod,
            pod_dir=self.pod_dir,
            volume_dirs=volume_dirs,
            objects=objects,
            base_env=self.kubelet.base_env(self.pod_dir),
            images=self.kubelet.images,
            ports={port: self.kubelet.pod_port(self.pod, port) for port in container_ports},
        )
        self.kubelet.publish_address(self.namespace, self.name, plan.ports)
        if dns.TF_CONFIG in plan.env:
            plan.env[dns.TF_CONFIG] = self.kubelet.dns.rewrite_tf_config(
                plan.env[dns.TF_CONFIG], self.namespace
            )
        plan.cwd.mkdir(parents=True, exist_ok=True)
        Path(plan.env.get("HOME", str(self.pod_dir / "home"))).mkdir(parents=True, exist_ok=True)
        plan.termination_log.parent.mkdir(parents=True, exist_ok=True)
        return plan

    async def run_container(self, plan: podspec.LaunchPlan) -> None:
        restarts = 0
        last_state: dict[str, Any] | None = None
        log = plan.termination_log.parent / "log"
        while True:
            plan.termination_log.write_bytes(b"")
            started = _now()
            self.log_starts.append(log.stat().st_size if log.exists() else 0)
            executable = shutil.which(plan.argv[0], path=plan.env.get("PATH")) or plan.argv[0]
            try:
                with log.open("ab") as log_file:
                    self.process = await asyncio.create_subprocess_exec(
                        executable,
                        *plan.argv[1:],
                        env=plan.env,
                        cwd=plan.cwd,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=log_file,
                        start_new_session=True,
                    )
            except OSError as exc:
                state = podstatus.terminated_state(128, "StartError", str(exc), started, _now())
                await self.report(podstatus.terminated(self.pod, state, phase="Failed", now=_now()))
                await self.until(lambda: self.gone or self.deleting)
                await self.finalize()
                return
            pid = self.process.pid
            self.info = ProcessInfo(
                pid, plan.argv, plan.env, plan.cwd, log, plan.termination_log, plan.ports
            )
            await self.report(podstatus.running(self.pod, pid, started, restarts, last_state))

            exit_code = await self.wait_exit_or_stop()
            if self.lost:
                return  # the node is gone: nobody reports for this pod any more
            message = read_message(plan, log, exit_code)
            reason = podstatus.end_reason(exit_code, self.oom)
            self.oom = False
            state = podstatus.terminated_state(exit_code, reason, message, started, _now(), pid)
            stopping = self.deleting or self.gone
            phase = podstatus.end_phase(self.pod["spec"].get("restartPolicy", "Always"), exit_code)
            if stopping or phase is not None:
                final = phase or ("Succeeded" if exit_code == 0 else "Failed")
                await self.report(
                    podstatus.terminated(
                        self.pod, state, phase=final, restarts=restarts, now=_now()
                    )
                )
                await self.until(lambda: self.gone or self.deleting)
                await self.finalize()
                return
            restarts += 1
            last_state = state
            await asyncio.sleep(self.kubelet.restart_backoff)

    async def wait_exit_or_stop(self) -> int:
        """Wait for the process to end; on deletion SIGTERM, then SIGKILL after the grace period."""
        assert self.process is not None
        exited = asyncio.ensure_future(self.process.wait())
        stop = asyncio.ensure_future(self.until(lambda: self.gone or self.deleting))
        try:
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                meta = self.pod["metadata"]
                default = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
                grace = meta.get("deletionGracePeriodSeconds", default)
                with contextlib.suppress(KubeletError):
                    self.signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(float(grace)):
                        await asyncio.shield(exited)
                except TimeoutError:
                    with contextlib.suppress(KubeletError):
                        self.signal(signal.SIGKILL)
            returncode = await exited
        finally:
            stop.cancel()
        return 128 - returncode if returncode < 0 else returncode

    async def report(self, status: Mapping[str, Any]) -> None:
        """Patch ``pods/status``, keeping conditions that other controllers own."""
        await self.kubelet.patch_status(self.namespace, self.name, status)

    async def finalize(self) -> None:
        """Remove the pod object once its containers are stopped (a delete with grace 0)."""
        uid = self.pod["metadata"]["uid"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        await self.kubelet.call("DELETE", self.kubelet.pod_path(self.namespace, self.name), body)


class ProcessKubelet:
    """A node that runs pods as processes; see the module docstring."""

    def __init__(
        self,
        api_url: str,
        root: Path,
        *,
        node_name: str = "emulated-node",
        env: Mapping[str, str] | None = None,
        restart_backoff: float = 0.2,
        node_lost_after: float = 0.3,
        node_labels: Mapping[str, str] | None = None,
        force_detach_after: float | None = None,
    ) -> None:
        """Create a kubelet for the API at ``api_url`` keeping its files under ``root``.

        Args:
            api_url: the emulated API server's URL.
            root: folder for volumes (``volumes/NS/CLAIM``) and pods (``pods/…``).
            node_name: the Node object it registers and binds pods to.
            env: extra environment of every container (e.g. ``PYTHONPATH``), under the pod's.
            restart_backoff: seconds between restarts of an ``Always``/``OnFailure`` container.
            node_lost_after: seconds a lost node's pod stays not ready before the taint
                manager deletes it (gracefully: it stays Terminating; Kubernetes: 300).
            force_detach_after: seconds after :meth:`fail_node` until the attach/detach
                controller detaches the dead node's ReadWriteOnce volumes by itself
                (Kubernetes: about 360); None: never, only the out-of-service taint does.
            node_labels: labels of the node, matched against pods' ``nodeSelector``
                (besides ``kubernetes.io/hostname``, ``kubernetes.io/os`` and ``…/arch``).
        """
        self.api_url = api_url.rstrip("/")
        self.root = root
        self.node_name = node_name
        self.extra_env = dict(env or {})
        self.restart_backoff = restart_backoff
        self.node_lost_after = node_lost_after
        self.force_detach_after = force_detach_after
        #: Seconds between looks at a dead node (for its out-of-service taint).
        self.detach_poll = 0.1
        #: ReadWriteOnce claims and the node each is attached to, by (namespace, claim).
        self.attachments: dict[tuple[str, str], str] = {}
        #: Nodes that :meth:`fail_node` killed, in order.
        self.lost_nodes: list[str] = []
        self.node_labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **(node_labels or {}),
        }
        #: Images whose pull fails: their pods stay Pending with ImagePullBackOff.
        self.unpullable: set[str] = set()
        #: ENTRYPOINT/CMD of images, for containers that give no command.
        self.images: dict[str, podspec.Image] = {}
        #: Exceptions raised inside pod workers (a test may assert it stays empty).
        self.errors: list[BaseException] = []
        self._workers: dict[str, _PodWorker] = {}
        self._session: aiohttp.ClientSession | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: Test-only cluster DNS: the host port behind each pod name under a headless Service.
        self.dns = dns.ClusterDns(free_port)

    # --- life cycle (on the cluster's loop) -----------------------------------------

    async def start(self) -> None:
        """Register the node and start watching pods."""
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()
        await self.register_node(self.node_name)
        listed = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.create_task(self._watch(listed))
        await listed

    async def stop(self) -> None:
        """Kill every container process (SIGKILL) and stop watching."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for worker in list(self._workers.values()):
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.process.pid, signal.SIGKILL)
            if worker.task is not None:
                worker.task.cancel()
        for worker in list(self._workers.values()):
            if worker.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
            if worker.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    await worker.process.wait()
        for task in list(self._background):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    async def register_node(self, name: str) -> None:
        """Create the Node object, ``Ready`` (its status through ``nodes/status``)."""
        body = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}
        await self.call("POST", "/api/v1/nodes", body, ok=(409,))
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady"}
        status = {"status": {"conditions": [ready]}}
        await self.call(
            "PATCH", f"/api/v1/nodes/{name}/status", status, content_type=MERGE_PATCH, ok=(404,)
        )

    # --- the API, as a client -----------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (404, 409),
    ) -> dict[str, Any] | None:
        """One API request; None for the statuses in ``ok`` (gone, conflict), errors raise."""
        assert self._session is not None
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type}
        async with self._session.request(
            method, self.api_url + path, data=data, headers=headers
        ) as response:
            if response.status in ok:
                return None
            payload = await response.json(content_type=None)
            if response.status >= 400:
                raise KubeletError(f"{method} {path}: HTTP {response.status}: {payload}")
            result: dict[str, Any] = payload
            return result

    async def get(self, path: str) -> dict[str, Any] | None:
        return await self.call("GET", path)

    @staticmethod
    def pod_path(namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{namespace}/pods/{name}"

    async def bind(self, namespace: str, name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        await self.call("POST", self.pod_path(namespace, name) + "/binding", body)

    async def exclusive_volume(self, namespace: str, claim: str) -> str | None:
        """The volume name of claim ``claim`` if it is ReadWriteOnce (one node at a time)."""
        found = await self.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        if found is None:
            return None
        modes = (found.get("spec") or {}).get("accessModes") or ["ReadWriteOnce"]
        if not {"ReadWriteOnce", "ReadWriteOncePod"} & set(modes):
            return None
        volume = (found.get("spec") or {}).get("volumeName")
        return str(volume or f"pvc-{found['metadata'].get('uid', claim)}")

    async def post_event(
        self, pod: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """A core Event about ``pod``, as a controller of the cluster posts it."""
        meta = pod["metadata"]
        stamp = podstatus.rfc3339(_now())
        body = {
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": "attachdetach-controller"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        await self.call("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body)

    async def claim_bound(self, namespace: str, claim: str) -> bool:
        found = await self.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        return bool(found and (found.get("status") or {}).get("phase") == "Bound")

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Write a pod's status with optimistic concurrency; foreign conditions are kept."""
        for _ in range(20):
            current = await self.get(self.pod_path(namespace, name))
            if current is None:
                return
            mine = {c.get("type") for c in status.get("conditions") or []}
            kept = [
                c
                for c in (current.get("status") or {}).get("conditions") or []
                if c.get("type") not in mine
            ]
            new_status = dict(status)
            new_status["conditions"] = [*kept, *(status.get("conditions") or [])]
            old_status = current.get("status") or {}
            patch = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "status": {
                    **{k: None for k in old_status if k not in new_status and k != "qosClass"},
                    **new_status,
                },
            }
            path = self.pod_path(namespace, name) + "/status"
            result = await self.call(
                "PATCH", path, patch, content_type="application/merge-patch+json"
            )
            if result is not None or await self.get(self.pod_path(namespace, name)) is None:
                return
            # 409: someone wrote in between; read again and retry
        raise KubeletError(f"pod {namespace}/{name}: status write kept conflicting")

    # --- watching pods ----------------------------------------------------------------

    async def _watch(self, listed: asyncio.Future[None]) -> None:
        assert self._session is not None
        while True:
            try:
                body = await self.call("GET", "/api/v1/pods", ok=())
                assert body is not None
                for pod in body["items"]:
                    self._on_pod(pod)
                if not listed.done():
                    listed.set_result(None)
                version = body["metadata"]["resourceVersion"]
                while True:
                    url = f"{self.api_url}/api/v1/pods"
                    params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "60"}
                    async with self._session.get(url, params=params) as response:
                        async for line in response.content:
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            if event["type"] == "ERROR":
                                raise KubeletError(f"pod watch failed: {event['object']}")
                            pod = event["object"]
                            version = pod["metadata"]["resourceVersion"]
                            if event["type"] == "DELETED":
                                self._on_gone(pod)
                            else:
                                self._on_pod(pod)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, KubeletError) as exc:
                logger.debug("pod watch interrupted (%s); listing again", exc)
                await asyncio.sleep(0.1)

    def _on_pod(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        node = pod.get("spec", {}).get("nodeName")
        if node and node != self.node_name:
            return
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        worker = _PodWorker(self, pod)
        self._workers[uid] = worker
        worker.task = asyncio.create_task(worker.run())

    def _on_gone(self, pod: dict[str, Any]) -> None:
        worker = self._workers.pop(pod["metadata"]["uid"], None)
        if worker is None:
            return
        worker.update(pod)
        worker.vanish()

    # --- for tests (thread-safe, synchronous) ---------------------------------------------

    def _sync(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        if self._loop is None:
            coro.close()
            raise KubeletError("the kubelet is not started")
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self._loop:
                coro.close()
                raise KubeletError("call the kubelet's test methods from the test, not its loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _worker(self, namespace: str, name: str) -> _PodWorker:
        for worker in self._workers.values():
            if (worker.namespace, worker.name) == (namespace, name) and not worker.gone:
                return worker
        raise KubeletError(f"pod {namespace}/{name} is not on this node (not created, or gone)")

    def base_env(self, pod_dir: Path) -> dict[str, str]:
        """What every container's environment starts with."""
        bin_dir = str(Path(sys.executable).parent)
        path = os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")])
        return {"PATH": path, "HOME": str(pod_dir / "home"), "LANG": "C.UTF-8", **self.extra_env}

    def pod_port(self, pod: Mapping[str, Any], port: int) -> int:
        """The host port for a container port: the pod's DNS name's, if it has one."""
        spec = pod.get("spec") or {}
        hostname, subdomain = spec.get("hostname"), spec.get("subdomain")
        if hostname and subdomain:
            namespace = str(pod["metadata"]["namespace"])
            return self.dns.host_port(namespace, str(subdomain), str(hostname), port)
        return self.dns.free_port()

    @property
    def address_dir(self) -> Path:
        """Where each pod's metrics address is written: the operator's
        ``REKINDLE_TRAINER_ADDRESS_DIR`` (every pod here shares one host)."""
        return self.root / "addresses"

    def publish_address(self, namespace: str, name: str, ports: Mapping[int, int]) -> None:
        """Write ``127.0.0.1:<host port>`` of the pod's metrics port, if it has one."""
        host_port = ports.get(METRICS_PORT)
        if host_port is None:
            return
        path = self.address_dir / namespace / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"127.0.0.1:{host_port}")

    def volume_path(self, namespace: str, claim: str) -> Path:
        """The folder that stands in for volume claim ``claim`` (it outlives pods)."""
        return self.root / "volumes" / namespace / claim

    def process(self, namespace: str, name: str) -> ProcessInfo | None:
        """The pod's current process, if one runs."""

        async def lookup() -> ProcessInfo | None:
            worker = self._worker(namespace, name)
            running = worker.process is not None and worker.process.returncode is None
            return worker.info if running else None

        return self._sync(lookup())

    def wait_running(self, namespace: str, name: str, timeout: float = 30) -> ProcessInfo:
        """Wait until the pod's container process runs; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(KubeletError):
                info = self.process(namespace, name)
                if info is not None:
                    return info
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name}: no running process within {timeout}s")
            time.sleep(0.05)

    def container_log(self, namespace: str, name: str, *, previous: bool = False) -> str:
        """What the container's current instance (or its ``previous`` one) wrote so far.

        Call on the cluster's loop (the API's ``pods/NAME/log`` does); tests call :meth:`logs`.

        Raises:
            podlogs.LogUnavailable: the pod is not on this node, its container has
                not started, or (``previous``) it has not restarted; the message is
                the API's answer.
        """
        try:
            worker = self._worker(namespace, name)
        except KubeletError:
            raise podlogs.LogUnavailable(
                f"pod {name} in namespace {namespace} has no container on node "
                f"{self.node_name} (not scheduled yet, or gone)"
            ) from None
        container = str(worker.pod["spec"]["containers"][0].get("name"))
        info = worker.info
        if info is None or not worker.log_starts:
            status = worker.pod.get("status") or {}
            waiting = [
                s.get("state", {}).get("waiting", {}).get("reason")
                for s in status.get("containerStatuses") or []
            ]
            reason = next((r for r in waiting if r), "ContainerCreating")
            raise podlogs.LogUnavailable(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        starts = worker.log_starts
        if previous and len(starts) < 2:
            raise podlogs.LogUnavailable(
                f'previous terminated container "{container}" in pod "{name}" not found '
                "(the container has not restarted)"
            )
        data = info.log.read_bytes()
        chunk = data[starts[-2] : starts[-1]] if previous else data[starts[-1] :]
        return chunk.decode("utf-8", errors="replace")

    def logs(self, namespace: str, name: str, *, previous: bool = False) -> str:
        """What the pod's container wrote to stdout and stderr (``kubectl logs [--previous]``).

        The current instance's output ("" before it starts); with ``previous``
        the instance before the last restart.

        Raises:
            KubeletError: the pod is not on this node; ``previous`` before any restart.
        """

        async def read() -> str:
            worker = self._worker(namespace, name)
            if worker.info is None and not previous:
                return ""
            try:
                return self.container_log(namespace, name, previous=previous)
            except podlogs.LogUnavailable as exc:
                raise KubeletError(str(exc)) from None

        return self._sync(read())

    def kill(self, namespace: str, name: str, signum: int = signal.SIGKILL) -> None:
        """Send a signal to the container (default SIGKILL: exit 137, reason Error)."""

        async def send() -> None:
            self._worker(namespace, name).signal(signum)

        self._sync(send())

    def oom_kill(self, namespace: str, name: str) -> None:
        """Kill the container as the kernel's OOM killer does: exit 137, reason OOMKilled."""

        async def send() -> None:
            worker = self._worker(namespace, name)
            worker.oom = True
            worker.signal(signal.SIGKILL)

        self._sync(send())

    def evict(self, namespace: str, name: str) -> None:
        """Evict through ``pods/eviction``: DisruptionTarget, then graceful deletion."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        path = self.pod_path(namespace, name) + "/eviction"
        self._sync(self.call("POST", path, body, ok=()))

    def lose_node(self, namespace: str, name: str) -> None:
        """As if the pod were alone on a node that died: its process dies unreported.

        As Kubernetes does it: the node controller marks the pod not ready
        (phase unchanged); after :attr:`node_lost_after` seconds the taint
        manager adds ``DisruptionTarget`` (DeletionByTaintManager) and deletes
        it gracefully, and the pod stays ``Terminating``: no kubelet will end it.
        The Node object is left as it is (other pods run on it); :meth:`fail_node`
        loses a whole node.
        """

        async def lose() -> None:
            worker = self._worker(namespace, name)
            worker.lost = True
            with contextlib.suppress(KubeletError):
                worker.signal(signal.SIGKILL)
            self._in_background(self._strand(worker))

        self._sync(lose())

    def fail_node(self) -> str:
        """The node dies; returns its name. New pods go to a fresh node (``<name>-2``…).

        Every container on it dies unreported; the Node turns ``Ready=Unknown``
        with the ``unreachable`` taints; each of its pods is stranded as
        :meth:`lose_node` strands one. Its ReadWriteOnce claims stay attached to
        it until it gets the ``node.kubernetes.io/out-of-service`` taint (then
        its pods are deleted at once and its volumes detached) or, if set,
        :attr:`force_detach_after` passes.
        """

        async def fail() -> str:
            lost = self.node_name
            self.lost_nodes.append(lost)
            workers = [w for w in self._workers.values() if w.pod["spec"].get("nodeName") == lost]
            for worker in workers:
                worker.lost = True
                with contextlib.suppress(KubeletError):
                    worker.signal(signal.SIGKILL)
            base = self.lost_nodes[0]
            self.node_name = f"{base}-{len(self.lost_nodes) + 1}"
            self.node_labels["kubernetes.io/hostname"] = self.node_name
            await self.register_node(self.node_name)
            node = await self.get(f"/api/v1/nodes/{lost}") or {}
            down = podstatus.node_down(node, _now())
            path = f"/api/v1/nodes/{lost}"
            await self.call("PATCH", path, {"spec": down["spec"]}, content_type=MERGE_PATCH)
            status = {"status": down["status"]}
            await self.call("PATCH", path + "/status", status, content_type=MERGE_PATCH)
            for worker in workers:
                self._in_background(self._strand(worker))
            self._in_background(self._detach_when_released(lost))
            return lost

        return self._sync(fail())

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _strand(self, worker: _PodWorker) -> None:
        """The node controller and the taint manager on a pod whose node stopped reporting."""
        namespace, name = worker.namespace, worker.name
        path = self.pod_path(namespace, name)
        current = await self.get(path)  # fresher than the watch's copy
        if current is None:
            return
        await self.patch_status(namespace, name, podstatus.node_lost(current, _now()))
        await asyncio.sleep(self.node_lost_after)
        current = await self.get(path)
        if current is None or current["metadata"].get("deletionTimestamp"):
            return  # deleted meanwhile (by the operator): the taint manager has nothing to do
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": podstatus.rfc3339(_now()),
        }
        status = dict(current.get("status") or {})
        status["conditions"] = [condition]
        await self.patch_status(namespace, name, status)
        await self.call("DELETE", path, {})  # graceful: it stays Terminating

    async def _detach_when_released(self, lost: str) -> None:
        """Detach a dead node's volumes on its out-of-service taint (or the force-detach timer).

        With the taint, the pod GC also deletes the node's pods at once (Kubernetes ≥ 1.26).
        """
        loop = asyncio.get_running_loop()
        wait = self.force_detach_after
        deadline = None if wait is None else loop.time() + wait
        while deadline is None or loop.time() < deadline:
            node = await self.get(f"/api/v1/nodes/{lost}")
            taints = ((node or {}).get("spec") or {}).get("taints") or []
            if node is None or any(t.get("key") == OUT_OF_SERVICE for t in taints):
                pods = await self.call("GET", f"/api/v1/pods?fieldSelector=spec.nodeName={lost}")
                for pod in (pods or {}).get("items") or []:
                    meta = pod["metadata"]
                    gone = {"gracePeriodSeconds": 0}
                    await self.call("DELETE", self.pod_path(meta["namespace"], meta["name"]), gone)
                break
            await asyncio.sleep(self.detach_poll)
        for key, holder in list(self.attachments.items()):
            if holder == lost:
                del self.attachments[key]
