"""The real-cluster backend: the scenarios against the cluster of ``REKINDLE_E2E_KUBECONFIG``.

Everything goes through the Kubernetes API with the ``kubernetes`` client, as
``kubectl`` would: jobs are created, patched and deleted; a preemption is the
scheduler's ``DisruptionTarget`` condition followed by a graceful delete; a
crash is a SIGKILL of the trainer process sent from a short-lived privileged
pod on the same node (``hostPID``), because nothing inside a container can
SIGKILL its own PID 1; the volume is read by a short-lived pod that mounts the
claim and runs :mod:`tests.e2e.volume_report` with the trainer image's Python.

The operator is either the one the chart deployed (``REKINDLE_E2E_OPERATOR=deployed``,
the default: killed by deleting its pod with grace 0, brought back by its
Deployment) or a ``rekindle operator`` process that this test runs against
the cluster (``REKINDLE_E2E_OPERATOR=local``). Settings, all optional but the first:

=============================== ==========================================================
``REKINDLE_E2E_KUBECONFIG``     the cluster's kubeconfig (the suite is skipped without it)
``REKINDLE_E2E_IMAGE``          trainer image (default ``rekindle-trainer:e2e``)
``REKINDLE_E2E_OPERATOR``       ``deployed`` or ``local``
``REKINDLE_E2E_OPERATOR_NAMESPACE`` where the chart runs it (default ``rekindle-system``)
``REKINDLE_E2E_OPERATOR_SELECTOR``  its pods' labels (default the chart's)
``REKINDLE_E2E_NAMESPACE``      namespace for the scenarios (default a fresh one, deleted after)
=============================== ==========================================================
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e import volume_report
from tests.e2e.backend import JOB_LABEL, E2ECluster, wait_until
from tests.support.kubectl import Kubectl
from tests.support.operator_process import OperatorProcess

GROUP, VERSION, PLURAL = "rekindle.dev", "v1alpha1", "trainingjobs"
#: The label that names a gang worker's index.
WORKER_LABEL = "rekindle.dev/worker"
#: The condition the taint manager sets on a pod of a lost node before deleting it.
NODE_LOST = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByTaintManager",
    "message": "Taint manager: deleting due to NoExecute taint",
}
#: Where the helper pod mounts the claim.
DATA = "/data"
#: Finds the trainer process of one attempt by its environment and SIGKILLs it (run as root
#: with the host's PID namespace); exits 1 when no such process runs. A fourth argument, a
#: worker index, picks one worker of a gang (its ``TF_CONFIG`` task index).
KILL_SCRIPT = """
import json, os, signal, sys
wanted = {b"REKINDLE_JOB_NAMESPACE=" + sys.argv[1].encode(),
          b"REKINDLE_JOB_NAME=" + sys.argv[2].encode(),
          b"REKINDLE_ATTEMPT=" + sys.argv[3].encode()}
worker = int(sys.argv[4]) if len(sys.argv) > 4 else None
def index(env):
    for item in env:
        if item.startswith(b"TF_CONFIG="):
            return json.loads(item[len(b"TF_CONFIG="):])["task"]["index"]
    return None
killed = []
for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    try:
        with open(f"/proc/{entry}/environ", "rb") as handle:
            env = set(handle.read().split(b"\\0"))
    except OSError:
        continue
    if wanted <= env and (worker is None or index(env) == worker):
        os.kill(int(entry), signal.SIGKILL)
        killed.append(entry)
print("killed", killed)
sys.exit(0 if killed else 1)
"""


@dataclass(frozen=True)
class Settings:
    """The ``REKINDLE_E2E_*`` settings (see the module docstring)."""

    kubeconfig: str
    image: str = "rekindle-trainer:e2e"
    operator: str = "deployed"
    operator_namespace: str = "rekindle-system"
    operator_selector: str = "app.kubernetes.io/name=rekindle,app.kubernetes.io/component=operator"
    namespace: str = ""

    @classmethod
    def from_environment(cls, kubeconfig: str) -> Settings:
        """Read the settings; a bad ``REKINDLE_E2E_OPERATOR`` raises naming the choices."""
        defaults = cls(kubeconfig)
        mode = os.environ.get("REKINDLE_E2E_OPERATOR", defaults.operator)
        if mode not in {"deployed", "local"}:
            raise ValueError(f"REKINDLE_E2E_OPERATOR must be 'deployed' or 'local', got {mode!r}")
        return cls(
            kubeconfig=kubeconfig,
            image=os.environ.get("REKINDLE_E2E_IMAGE", defaults.image),
            operator=mode,
            operator_namespace=os.environ.get(
                "REKINDLE_E2E_OPERATOR_NAMESPACE", defaults.operator_namespace
            ),
            operator_selector=os.environ.get(
                "REKINDLE_E2E_OPERATOR_SELECTOR", defaults.operator_selector
            ),
            namespace=os.environ.get("REKINDLE_E2E_NAMESPACE", ""),
        )


class RealCluster(E2ECluster):
    """A real cluster reached through a kubeconfig."""

    kind = "cluster"

    def __init__(self, settings: Settings, workdir: Path) -> None:
        from kubernetes import client, config

        self.settings = settings
        self.workdir = workdir
        self.trainer_image = settings.image
        self.own_namespace = not settings.namespace
        self.namespace = settings.namespace or f"rekindle-e2e-{uuid.uuid4().hex[:6]}"
        # Typed as Any: the client's generated models are read as plain attributes here.
        self.api: Any = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=settings.kubeconfig
        )
        self.core: Any = client.CoreV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.local_operator: OperatorProcess | None = None
        self.recorders = []
        self.kubectl = Kubectl(Path(settings.kubeconfig), workdir / "kubectl-cache", self.namespace)
        self.killed_operator_pods: set[str] = set()
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._history_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch_pods, name="e2e-pods", daemon=True)

    @classmethod
    def from_environment(cls, kubeconfig: str, workdir: Path) -> RealCluster:
        """The cluster of ``kubeconfig`` with the ``REKINDLE_E2E_*`` settings."""
        return cls(Settings.from_environment(kubeconfig), workdir)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> RealCluster:
        """Create the scenario namespace; start the local operator if asked to."""
        body = {"metadata": {"name": self.namespace, "labels": {"rekindle.dev/e2e": "true"}}}
        self._ignore(409, self.core.create_namespace, body)
        self._watcher.start()
        if self.settings.operator == "local":
            self.start_operator()
        return self

    def stop(self) -> None:
        """Stop the local operator; delete the namespace this run created."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(10)  # its watch ends within timeoutSeconds
        if self.local_operator is not None:
            self.local_operator.stop()
        if self.own_namespace:
            self._ignore(404, self.core.delete_namespace, self.namespace)

    def _watch_pods(self) -> None:
        """Record every state of every pod in the namespace (see :meth:`pod_history`)."""
        from kubernetes import watch

        while not self._stopping.is_set():
            stream: Any = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in stream.stream(
                    self.core.list_namespaced_pod, self.namespace, timeout_seconds=2
                ):
                    pod = self._plain(event["object"])
                    with self._history_lock:
                        self._history.setdefault(pod["metadata"]["name"], []).append(pod)
                    if self._stopping.is_set():
                        stream.stop()
            except Exception:  # a dropped watch is re-opened, as kubectl get -w would
                time.sleep(0.5)

    # --- plumbing ------------------------------------------------------------------------------

    def _plain(self, obj: Any) -> dict[str, Any]:
        """A client model as the JSON the API served (camelCase keys)."""
        result: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return result

    @staticmethod
    def _ignore(status: int, call: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            if exc.status != status:
                raise
            return None

    # --- objects -----------------------------------------------------------------------------

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        ns = self.namespace
        if plural == "trainingjobs":
            found = self._ignore(
                404, self.custom.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name
            )
            return None if found is None else dict(found)
        readers = {
            "pods": self.core.read_namespaced_pod,
            "persistentvolumeclaims": self.core.read_namespaced_persistent_volume_claim,
        }
        if plural not in readers:
            raise ValueError(f"get: {plural!r} is not used by the scenarios")
        obj = self._ignore(404, readers[plural], name, ns)
        return None if obj is None else self._plain(obj)

    def pods(self, job: str) -> list[dict[str, Any]]:
        found = self.core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_LABEL}={job}")
        return [self._plain(pod) for pod in found.items]

    # --- helper pods ---------------------------------------------------------------------------

    def _run_pod(self, name: str, spec: Mapping[str, Any], timeout: float = 180) -> str:
        """Run a one-off pod to its end; its log (raises if it failed)."""
        body: dict[str, Any] = {
            "metadata": {"name": name, "labels": {"rekindle.dev/e2e-helper": "true"}}
        }
        body["spec"] = {"restartPolicy": "Never", **spec}
        self.core.create_namespaced_pod(self.namespace, body)
        try:

            def ended() -> str | None:
                pod = self.core.read_namespaced_pod(name, self.namespace)
                phase = str(pod.status.phase)
                return phase if phase in {"Succeeded", "Failed"} else None

            phase = wait_until(ended, timeout, f"helper pod {name} to finish")
            log = self._pod_log(name)
            if phase != "Succeeded":
                raise RuntimeError(f"helper pod {name} failed:\n{log}")
            return log
        finally:
            self._ignore(
                404, self.core.delete_namespaced_pod, name, self.namespace, grace_period_seconds=0
            )

    def pod_history(self, pod: str) -> list[dict[str, Any]]:
        with self._history_lock:
            return list(self._history.get(pod, []))

    def _pod_log(self, name: str) -> str:
        """The pod's log (``kubectl logs``)."""
        log: str = self.core.read_namespaced_pod_log(name, self.namespace)
        return log

    def volume_report(self, claim: str, job: str) -> dict[str, Any]:
        return self._report(claim, job, [])

    def wait_checkpoint(
        self, claim: str, job: str, *, epoch: int, timeout: float
    ) -> dict[str, Any]:
        # One helper pod that watches the folder: a pod per look would start seconds late.
        return self._report(claim, job, [str(epoch), str(timeout)], timeout=timeout + 120)

    def _report(
        self, claim: str, job: str, wait: list[str], timeout: float = 180
    ) -> dict[str, Any]:
        source = Path(volume_report.__file__).read_text()
        container = {
            "name": "report",
            "image": self.trainer_image,
            "command": ["python3", "-c", source, f"{DATA}/{job}", *wait],
            "volumeMounts": [{"name": "claim", "mountPath": DATA, "readOnly": True}],
        }
        spec = {
            "containers": [container],
            "volumes": [{"name": "claim", "persistentVolumeClaim": {"claimName": claim}}],
        }
        log = self._run_pod(f"e2e-volume-{uuid.uuid4().hex[:8]}", spec, timeout)
        document: dict[str, Any] = json.loads(log.strip().splitlines()[-1])
        return document

    # --- faults and the operator -------------------------------------------------------------

    def crash(self, pod: str) -> None:
        found = self.core.read_namespaced_pod(pod, self.namespace)
        labels = found.metadata.labels or {}
        attempt = labels.get("rekindle.dev/attempt") or pod.rsplit("-", 1)[-1]
        worker = [labels[WORKER_LABEL]] if WORKER_LABEL in labels else []
        command = ["python3", "-c", KILL_SCRIPT, self.namespace, labels[JOB_LABEL], attempt]
        container = {
            "name": "kill",
            "image": self.trainer_image,
            "command": [*command, *worker],
            "securityContext": {"privileged": True, "runAsUser": 0, "runAsNonRoot": False},
        }
        spec = {"nodeName": found.spec.node_name, "hostPID": True, "containers": [container]}
        self._run_pod(f"e2e-crash-{uuid.uuid4().hex[:8]}", spec, timeout=60)

    def lose_node(self, pod: str) -> None:
        """What the cluster does to a pod of a lost node, through the API (the node stays up).

        The taint manager's mark (``DisruptionTarget``, DeletionByTaintManager) and a
        force delete: the kubelet then kills the container. Losing a real node (``docker
        stop`` of a kind node) takes minutes of the node controller's timeouts.
        """
        self.kubectl.run(
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=strategic",
            "-p",
            json.dumps({"status": {"conditions": [NODE_LOST]}}),
        )
        self.kubectl.run("delete", "pod", pod, "--grace-period=0", "--force", "--wait=false")

    def _operator_pods(self) -> list[Any]:
        found = self.core.list_namespaced_pod(
            self.settings.operator_namespace, label_selector=self.settings.operator_selector
        )
        return list(found.items)

    def kill_operator(self) -> None:
        if self.settings.operator == "local":
            if self.local_operator is not None:
                self.local_operator.kill()
            return
        pods = self._operator_pods()
        if not pods:
            raise RuntimeError(
                f"no operator pod matches {self.settings.operator_selector!r} in "
                f"{self.settings.operator_namespace}; install the chart (scripts/e2e-kind-up.sh) "
                "or set REKINDLE_E2E_OPERATOR=local"
            )
        for pod in pods:
            self.killed_operator_pods.add(pod.metadata.name)
            self._ignore(
                404,
                self.core.delete_namespaced_pod,
                pod.metadata.name,
                self.settings.operator_namespace,
                grace_period_seconds=0,
            )

    def start_operator(self) -> None:
        if self.settings.operator == "local":
            if self.local_operator is not None:
                self.local_operator.kill()
            self.local_operator = OperatorProcess(
                Path(self.settings.kubeconfig),
                self.workdir / "operator.log",
                ["-n", self.namespace, "--standalone"],
            ).start()
            return

        def replacement_ready() -> bool:
            for pod in self._operator_pods():
                if pod.metadata.name in self.killed_operator_pods:
                    continue
                conditions = pod.status.conditions or []
                if any(c.type == "Ready" and c.status == "True" for c in conditions):
                    return True
            return False

        wait_until(replacement_ready, 180, "a new operator pod Ready")
        time.sleep(1)  # its watches start right after the liveness probe passes
