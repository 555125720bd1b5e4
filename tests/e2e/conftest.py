"""The cluster every scenario runs on: emulated here, a real one with REKINDLE_E2E_KUBECONFIG.

``e2e`` is parametrized: ``emulated`` (tests/kube's API server, the process
kubelet and a real ``rekindle operator`` process; marked ``slow``) and
``cluster`` (the cluster that ``REKINDLE_E2E_KUBECONFIG`` points at; marked
``cluster`` and skipped, with the reason, when the variable is unset). One
cluster per module: each scenario uses its own job, so they can share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.backend import E2ECluster
from tests.e2e.emulated import EmulatedCluster

KUBECONFIG_ENV = "REKINDLE_E2E_KUBECONFIG"
SKIP_REASON = (
    f"set {KUBECONFIG_ENV} to the kubeconfig of a kind or k3s cluster prepared by "
    "scripts/e2e-kind-up.sh to run the end-to-end scenarios on it (docs/e2e-on-kind.md)"
)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("emulated", marks=pytest.mark.slow),
        pytest.param("cluster", marks=[pytest.mark.cluster, pytest.mark.slow]),
    ],
)
def e2e(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[E2ECluster]:
    """A started cluster with the operator running (module-scoped, shared by the scenarios)."""
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    if request.param == "cluster":
        kubeconfig = os.environ.get(KUBECONFIG_ENV)
        if not kubeconfig:
            pytest.skip(SKIP_REASON)
        from tests.e2e.real import RealCluster

        real = RealCluster.from_environment(kubeconfig, workdir).start()
        try:
            yield real
        finally:
            real.stop()
        return
    emulated = EmulatedCluster(workdir).start()
    try:
        yield emulated
    finally:
        emulated.stop()
        # Captured output: pytest shows it only for a failing test of this module.
        print(f"--- operator log (tail) ---\n{emulated.operator_log_text()[-30000:]}")


@pytest.fixture(autouse=True)
def harness_is_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on a cluster: nothing the harness caught (recorders, the node) is left."""
    yield
    if "e2e" not in request.fixturenames:
        return
    cluster: E2ECluster = request.getfixturevalue("e2e")
    errors = cluster.harness_errors()
    assert not errors, "the test harness failed during this test: " + "; ".join(errors)
