"""CI's rules hold: nothing skips, at collection or in a test, and no snapshot rewrites itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deps import REPO_ROOT
from tests.support.kubectl import need_kubectl

SKIPPING_MODULE = """
import pytest
pytest.importorskip("rekindle_no_such_module")

def test_never_runs():
    pass
"""
SKIPPING_TEST = """
import pytest

def test_skips():
    pytest.skip("a missing tool")
"""
PASSING = "def test_passes():\n    pass\n"


def run_pytest(folder: Path, test_source: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest on one test module under the repository's own conftest.py."""
    (folder / "conftest.py").write_text((REPO_ROOT / "tests" / "conftest.py").read_text())
    (folder / "test_it.py").write_text(test_source)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "REKINDLE_UPDATE_SNAPSHOTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env={**clean, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_module_skipped_at_collection_fails_under_ci(tmp_path: Path) -> None:
    local = run_pytest(tmp_path, SKIPPING_MODULE)
    assert local.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, local.stdout
    assert "1 skipped" in local.stdout
    ci = run_pytest(tmp_path, SKIPPING_MODULE, CI="true")
    assert ci.returncode == pytest.ExitCode.INTERRUPTED, ci.stdout  # a collection error
    assert "skipped while collected under CI=true" in ci.stdout


def test_a_skipping_test_fails_under_ci(tmp_path: Path) -> None:
    ci = run_pytest(tmp_path, SKIPPING_TEST, CI="true")
    assert ci.returncode == 1, ci.stdout
    assert "skipped under CI=true, which allows no skips" in ci.stdout


def test_the_snapshot_update_variable_is_refused_under_ci(tmp_path: Path) -> None:
    local = run_pytest(tmp_path, PASSING, REKINDLE_UPDATE_SNAPSHOTS="1")
    assert local.returncode == 0, local.stdout + local.stderr
    ci = run_pytest(tmp_path, PASSING, CI="true", REKINDLE_UPDATE_SNAPSHOTS="1")
    assert ci.returncode != 0
    assert "REKINDLE_UPDATE_SNAPSHOTS is set under CI=true" in ci.stdout + ci.stderr


def test_a_missing_kubectl_fails_under_ci_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no kubectl there
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="kubectl not found on PATH"):
        need_kubectl()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="kubectl not found on PATH"):
        need_kubectl()
