"""pytest fixtures for an emulated cluster: import them into a suite's conftest.

``from tests.kube.fixtures import kube_api, kubelet, kopf_runner  # noqa: F401``

* ``kube_api``: a started :class:`~tests.kube.cluster.Cluster` (``.url``,
  ``.kubeconfig``, direct ``create/get/find/list/patch/delete/wait_for``),
  namespaces ``default`` and ``kube-system``, the chart's CRDs
  (``charts/rekindle/crds/``) installed, a fresh one per test.
* ``kubelet_options``: keyword arguments for the kubelet (default: ``env`` passing
  ``TF_CPP_MIN_LOG_LEVEL``/``CUDA_VISIBLE_DEVICES``/``PYTHONHASHSEED`` through);
  a suite overrides this fixture to add environment or change timings.
* ``kubelet``: a :class:`~tests.kube.kubelet.ProcessKubelet` running the pods
  of ``kube_api`` under ``tmp_path/node`` (faults: ``kill``, ``oom_kill``,
  ``evict``, ``lose_node``, ``fail_node``; ``unpullable``; ``volume_path``).
* ``kubectl``: the real ``kubectl`` (:class:`~tests.support.kubectl.Kubectl`) with a
  kubeconfig for ``kube_api`` (skipped without kubectl locally, failed under ``CI=true``).
* ``kopf_runner``: a function ``(args, env=None) -> KopfProcess`` that starts
  ``kopf run ARGS`` against ``kube_api`` (stopped at teardown; its log is
  printed when the test fails).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.kube.cluster import Cluster
from tests.kube.kopf_process import KopfProcess
from tests.kube.kubelet import ProcessKubelet
from tests.support.deps import REPO_ROOT
from tests.support.kubectl import Kubectl

KopfRunner = Callable[..., KopfProcess]


#: The chart's CRDs, installed into every emulated cluster (the source of truth for the resource).
CHART_CRDS = REPO_ROOT / "charts" / "rekindle" / "crds"


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh emulated API server for this test, with the chart's CRDs installed."""
    cluster = Cluster(tmp_path / "cluster").start()
    try:
        cluster.install_crds(CHART_CRDS)
        yield cluster
    finally:
        cluster.stop()


#: Host variables every container inherits (quiet, CPU-only TensorFlow as the test run has it).
PASSED_THROUGH_ENV = ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED")


@pytest.fixture
def kubelet_options() -> dict[str, Any]:
    """Keyword arguments of the ``kubelet`` fixture's ProcessKubelet; override it in a suite."""
    env = {name: os.environ[name] for name in PASSED_THROUGH_ENV if name in os.environ}
    return {"env": env}


@pytest.fixture
def kubelet(kube_api: Cluster, tmp_path: Path, kubelet_options: dict[str, Any]) -> ProcessKubelet:
    """A process kubelet on ``kube_api`` (stopped, with its processes, when the cluster stops)."""
    return kube_api.start_kubelet(tmp_path / "node", **kubelet_options)


@pytest.fixture
def kubectl(kube_api: Cluster, tmp_path: Path) -> Kubectl:
    """``kubectl`` against ``kube_api``, as a user runs it (its own discovery cache)."""
    return Kubectl(kube_api.kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
def kopf_runner(kube_api: Cluster, tmp_path: Path) -> Iterator[KopfRunner]:
    """Start ``kopf run`` processes against ``kube_api``; all are stopped at teardown."""
    started: list[KopfProcess] = []

    def run(args: Sequence[str], env: Mapping[str, str] | None = None) -> KopfProcess:
        log = tmp_path / f"kopf-{len(started)}.log"
        process = KopfProcess(args, kubeconfig=kube_api.kubeconfig, log=log, env=env)
        started.append(process)
        return process.start()

    yield run
    for process in started:
        process.stop()
        # Captured output: pytest shows it only when the test fails.
        print(f"--- {process.log} ---\n{process.log_text()[-20000:]}")
