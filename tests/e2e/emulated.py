"""The emulated backend: tests/kube's API server, its process kubelet, a real operator process.

Pods run as local processes (``rekindle-train`` from this virtualenv; the
image name is not pulled), claims are folders under the kubelet's root, and
the operator is the real ``rekindle operator`` command watching the emulated
API through a kubeconfig, as the chart's service account: the chart's rendered
RBAC is in the cluster, and a call it does not grant is a 403 that fails the
test. Faults are the kubelet's and the API's own: a preemption (kubectl)
marks ``DisruptionTarget`` (PreemptionByScheduler) and deletes the pod
gracefully, so the trainer gets SIGTERM and saves; a crash is a SIGKILL of
the container process; a lost node is the kubelet's own (the process killed
unreported, the pod ``Unknown``, then deleted by the taint manager). The
kubelet resolves a gang's ``TF_CONFIG`` names to loopback ports
(:mod:`tests.kube.dns`), so the workers of a gang find each other.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

from rekindle_operator.cluster.live import ENV_ADDRESS_DIR
from tests.e2e import volume_report
from tests.e2e.backend import JOB_LABEL, E2ECluster
from tests.kube import chart_rbac
from tests.kube.cluster import Cluster
from tests.kube.fixtures import CHART_CRDS, PASSED_THROUGH_ENV
from tests.kube.kubelet import ProcessKubelet
from tests.support.kubectl import Kubectl
from tests.support.operator_process import OperatorProcess

#: The image the scenario manifests name; the process kubelet runs the command, not the image.
TRAINER_IMAGE = "ghcr.io/rekindle-dev/trainer:0.1.0"


class EmulatedCluster(E2ECluster):
    """An emulated cluster with one node (the process kubelet) and the operator process."""

    kind = "emulated"

    def __init__(self, workdir: Path, namespace: str = "e2e") -> None:
        self.workdir = workdir
        self.namespace = namespace
        self.trainer_image = TRAINER_IMAGE
        self.cluster = Cluster(workdir / "cluster")
        self.kubelet: ProcessKubelet | None = None
        self.operator: OperatorProcess | None = None
        self.operator_log = workdir / "operator.log"
        self.recorders = []
        self._reported_node_errors = 0
        self.operator_kubeconfig = self.cluster.kubeconfig
        self.kubectl = Kubectl(self.cluster.kubeconfig, workdir / "kubectl-cache", namespace)

    def start(self) -> EmulatedCluster:
        """API server with the chart's CRDs, the namespace, a node, then the operator."""
        self.cluster.start()
        self.cluster.install_crds(CHART_CRDS)
        self.cluster.ensure_namespace(self.namespace)
        env = {name: os.environ[name] for name in PASSED_THROUGH_ENV if name in os.environ}
        self.kubelet = self.cluster.start_kubelet(self.workdir / "node", env=env)
        # The operator runs as the chart's service account: a call its RBAC does not grant
        # is a 403, and fails the test (harness_errors).
        identity = chart_rbac.install(self.cluster)
        self.operator_kubeconfig = self.cluster.kubeconfig_for(identity)
        self.start_operator()
        return self

    def stop(self) -> None:
        """Stop the operator, then the node (its processes are killed) and the API server."""
        if self.operator is not None:
            self.operator.stop()
        try:
            self.cluster.stop(timeout=15)
        except TimeoutError as exc:  # a watch stream that will not close says nothing of Rekindle
            warnings.warn(f"emulated cluster did not stop cleanly: {exc}", stacklevel=2)

    def harness_errors(self) -> list[str]:
        """The recorders' errors and the process kubelet's pod workers' since the last call."""
        found = super().harness_errors()
        denied = self.cluster.emulator.denied
        found += [f"RBAC denied the operator: {message}" for message in denied]
        denied.clear()
        if self.kubelet is not None:
            new = self.kubelet.errors[self._reported_node_errors :]
            self._reported_node_errors = len(self.kubelet.errors)
            found += [f"process kubelet: {type(e).__name__}: {e}" for e in new]
        return found

    def operator_log_text(self) -> str:
        """The operator's output so far (all its restarts)."""
        return self.operator_log.read_text(errors="replace") if self.operator_log.exists() else ""

    # --- objects -------------------------------------------------------------------------

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        return self.cluster.find(plural, self.namespace, name)

    def pods(self, job: str) -> list[dict[str, Any]]:
        return self.cluster.list("pods", self.namespace, f"{JOB_LABEL}={job}")

    def pod_history(self, pod: str) -> list[dict[str, Any]]:
        return self.cluster.history("pods", self.namespace, pod)

    def volume_report(self, claim: str, job: str) -> dict[str, Any]:
        return volume_report.describe(self.node.volume_path(self.namespace, claim) / job)

    @property
    def node(self) -> ProcessKubelet:
        """The process kubelet (started by :meth:`start`)."""
        if self.kubelet is None:
            raise RuntimeError("the emulated cluster is not started")
        return self.kubelet

    def trainer_log(self, pod: str) -> str:
        """Everything the pod's trainer printed (read from the node, also after the pod went)."""
        root = self.node.root / "pods"
        logs = sorted(root.glob(f"{self.namespace}_{pod}_*/containers/*/log"))
        return "".join(path.read_text(errors="replace") for path in logs)

    # --- faults and the operator -----------------------------------------------------------

    def crash(self, pod: str) -> None:
        self.node.kill(self.namespace, pod)

    def lose_node(self, pod: str) -> None:
        self.node.lose_node(self.namespace, pod)

    def kill_operator(self) -> None:
        if self.operator is not None:
            self.operator.kill()

    def start_operator(self) -> None:
        with contextlib.suppress(Exception):
            if self.operator is not None:
                self.operator.kill()
        # Every pod runs on this host: the kubelet says where each trainer's /progress is.
        env = {ENV_ADDRESS_DIR: str(self.node.address_dir)}
        self.operator = OperatorProcess(
            self.operator_kubeconfig, self.operator_log, ["-A", "--standalone"], env=env
        ).start()
