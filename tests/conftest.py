"""Settings shared by every test suite, and CI's rule that nothing skips and nothing is rewritten.

Under ``CI=true`` (see :func:`tests.support.deps.in_ci`):

* a test that skips fails, unless it is marked ``cluster`` (CI has no cluster);
* a module that skips while it is collected (``pytest.importorskip`` at module
  level, ``pytest.skip(allow_module_level=True)``) fails too: otherwise a
  missing dependency would pass as "skipped" before any test runs;
* ``REKINDLE_UPDATE_SNAPSHOTS`` is refused: it makes snapshot tests rewrite
  their snapshot and pass, which must never happen unattended.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from tests.support.deps import in_ci

# TensorFlow: quiet logs, CPU only, deterministic ops where the trainer asks for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

#: Markers whose tests may skip even under CI=true: they need a real cluster,
#: which CI does not have (REKINDLE_E2E_KUBECONFIG is unset there).
CI_MAY_SKIP = frozenset({"cluster"})
#: The variable that lets snapshot tests rewrite their snapshots (tests/chart/test_render.py).
SNAPSHOT_UPDATE_VARIABLE = "REKINDLE_UPDATE_SNAPSHOTS"


def pytest_configure(config: pytest.Config) -> None:
    """Under ``CI=true``, refuse to run with the snapshot-update variable set."""
    if in_ci() and os.environ.get(SNAPSHOT_UPDATE_VARIABLE):
        raise pytest.UsageError(
            f"{SNAPSHOT_UPDATE_VARIABLE} is set under CI=true: snapshot tests would rewrite "
            "their snapshots and pass; unset it (update snapshots locally and commit them)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under ``CI=true``, turn a skip into a failure unless the test is marked ``cluster``."""
    report = yield
    if (
        in_ci()
        and report.skipped
        and not hasattr(report, "wasxfail")
        and not any(item.get_closest_marker(name) for name in CI_MAY_SKIP)
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which allows no skips: {report.longrepr}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Under ``CI=true``, a module (or class) that skips while collected is a failure."""
    report = yield
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.nodeid} skipped while collected under CI=true, which allows no "
            f"skips: {report.longrepr}"
        )
    return report
