"""The floors are enforced: ``lint-imports`` fails on a copy of the source with bad imports.

The contracts in ``pyproject.toml`` name folders, never a hand-kept list of
modules, so a new module is guarded by where it lives. This test copies both
packages, plants one violation per rule (and a module outside every floor),
and checks that each contract it targets is reported broken; the clean copy
passes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: file to create or append to -> the line planted there.
VIOLATIONS = {
    "operator/rekindle_operator/core/engine.py": "import kopf",
    "operator/rekindle_operator/resources/pods.py": "import rekindle_operator.cluster.kubeapi",
    "operator/rekindle_operator/local/runner.py": "import rekindle_operator.cluster.reconcile",
    "operator/rekindle_operator/stray_module.py": "X = 1",
    "operator/rekindle_operator/cluster/jobs.py": "import rekindle_trainer.training.loop",
    "trainer_image/rekindle_trainer/checkpoint/store.py": "import tensorflow",
    "trainer_image/rekindle_trainer/core/config.py": "import rekindle_trainer.checkpoint.store",
}
#: The contracts the violations above must break (names as in pyproject.toml).
BROKEN = (
    "Operator floors: cli -> cluster | local -> resources -> core",
    "Trainer floors: cli | examples -> training -> checkpoint | reporting -> core -> contract",
    "The operator's pure floors import no kopf, Kubernetes client, aiohttp or TensorFlow",
    "The operator imports only the trainer's contract",
    "The trainer's contract, core, checkpoint and reporting floors import no TensorFlow, "
    "Keras or Kubernetes",
)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for top, package in (("operator", "rekindle_operator"), ("trainer_image", "rekindle_trainer")):
        shutil.copytree(REPO / top / package, root / top / package, ignore=ignore, symlinks=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "operator"), str(root / "trainer_image")])
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _broken(output: str) -> str:
    """The report's section of broken contracts, with its line wrapping undone."""
    tail = output.split("Broken contracts", 1)[-1]
    return re.sub(r"\s+", " ", tail)


def test_a_clean_copy_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_each_planted_violation_breaks_its_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    for relative, line in VIOLATIONS.items():
        path = root / relative
        text = path.read_text() if path.exists() else '"""Planted by a test."""\n'
        path.write_text(f"{text}\n{line}  # planted\n")
    result = _lint(root)
    assert result.returncode != 0
    report = _broken(result.stdout)
    for name in BROKEN:
        assert re.sub(r"\s+", " ", name) in report, f"not reported broken: {name}"
    assert "rekindle_operator.stray_module" in report
    assert "rekindle_operator.core.engine -> kopf" in report
