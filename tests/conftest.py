"""Settings shared by every test suite, and CI's rule that nothing skips."""

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
