"""CI=true never lets a test skip, except cluster tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.deps import REPO_ROOT


def _run_pytest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "tests" / "probe"
    suite.mkdir(parents=True)
    (suite / "test_probe.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_skips():
                pytest.skip("tool missing")

            @pytest.mark.cluster
            def test_cluster_skips():
                pytest.skip("no cluster")
            """
        )
    )
    env = {**os.environ, "CI": ci}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(REPO_ROOT / "pyproject.toml"),
            "-p",
            "tests.conftest",
            str(suite / "test_probe.py"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_skip_fails_under_ci_but_cluster_tests_may_skip(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, "true")
    assert "1 failed, 1 skipped" in result.stdout, result.stdout
    assert "allows no skips" in result.stdout


def test_skip_is_a_skip_outside_ci(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, "")
    assert "2 skipped" in result.stdout, result.stdout
