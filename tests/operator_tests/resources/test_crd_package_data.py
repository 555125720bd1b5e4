"""The CRD ships inside the wheel, byte for byte the chart's, and the loader finds it there.

``rekindle run`` validates manifests against the CRD; a ``rekindle`` installed
from a wheel has no source tree beside it, so the wheel must carry the file
(``operator/rekindle_operator/`` holds a symlink to the chart's, packed as a
plain file) and :func:`rekindle_operator.resources.crd.crd_file` must fall back to it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rekindle_operator.resources import crd

REPO = Path(__file__).resolve().parents[3]
CHART_CRD = REPO / crd.CHART_CRD_PATH
PACKED_NAME = f"{crd.PACKAGE}/{crd.CRD_FILE_NAME}"
# What a wheel is built from: the files the operator image copies, plus the chart's CRD.
BUILD_INPUTS = (
    "pyproject.toml",
    "README.md",
    "operator",
    "trainer_image/rekindle_trainer",
    "charts/rekindle/crds",
)


def _copy_build_inputs(destination: Path) -> None:
    """Copy what a wheel is built from, keeping symlinks as symlinks (as git and Docker do)."""
    for name in BUILD_INPUTS:
        source, target = REPO / name, destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(source, target, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built by pip from a copy of the build inputs (the shared tree stays clean)."""
    source = tmp_path_factory.mktemp("source")
    _copy_build_inputs(source)
    out = tmp_path_factory.mktemp("wheelhouse")
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    (built,) = out.glob("rekindle-*.whl")
    return built


@pytest.fixture
def installed(wheel: Path, tmp_path: Path) -> Path:
    """The wheel unpacked as a site directory, far from any source tree."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _run_installed(site: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with only ``site`` (and the virtualenv's dependencies) importable."""
    clean = {k: v for k, v in os.environ.items() if k not in {crd.ENV_CRD_FILE, "PYTHONPATH"}}
    clean.update(env, PYTHONPATH=str(site))
    command = [sys.executable, "-P", "-c", code]
    return subprocess.run(
        command, cwd=site, env=clean, capture_output=True, text=True, timeout=120, check=False
    )


FIND_AND_VALIDATE = """
import json
from pathlib import Path
import rekindle_operator
from rekindle_operator.resources import crd, validation
found = crd.crd_file()
loaded = validation.load(Path({example!r}))
print(json.dumps({{
    "package": rekindle_operator.__file__,
    "found": str(found),
    "crd": crd.load_crd()["metadata"]["name"],
    "job": loaded.name,
}}))
"""


@pytest.mark.slow
def test_the_wheel_packs_the_chart_crd_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry = archive.getinfo(PACKED_NAME)
        packed = archive.read(entry)
    assert not stat.S_ISLNK(entry.external_attr >> 16), "packed as a symlink, not as the file"
    assert packed == CHART_CRD.read_bytes()


@pytest.mark.slow
def test_an_installed_package_finds_its_crd_without_the_source_tree(installed: Path) -> None:
    example = REPO / "examples" / "digits.yaml"
    done = _run_installed(installed, FIND_AND_VALIDATE.format(example=str(example)))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert Path(seen["package"]).is_relative_to(installed), "imported from the source tree"
    assert seen["found"] == str(installed / PACKED_NAME)
    assert seen["crd"] == "trainingjobs.rekindle.dev"
    assert seen["job"] == "digits"


@pytest.mark.slow
def test_an_installed_package_without_its_crd_says_where_it_looked(installed: Path) -> None:
    (installed / PACKED_NAME).unlink()
    done = _run_installed(installed, "from rekindle_operator.resources import crd; crd.crd_file()")
    assert done.returncode != 0
    assert "FileNotFoundError" in done.stderr
    assert str(installed / PACKED_NAME) in done.stderr
    assert crd.ENV_CRD_FILE in done.stderr


def test_a_source_checkout_reads_the_chart_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crd.ENV_CRD_FILE, raising=False)
    assert crd.crd_file() == CHART_CRD


def test_the_package_symlink_points_at_the_chart() -> None:
    link = REPO / "operator" / PACKED_NAME
    assert link.is_symlink(), f"{link} must be a symlink to the chart's CRD, not a copy"
    assert link.resolve() == CHART_CRD.resolve()


def test_the_environment_overrides_the_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "crd.yaml"
    copy.write_bytes(CHART_CRD.read_bytes())
    monkeypatch.setenv(crd.ENV_CRD_FILE, str(copy))
    assert crd.crd_file() == copy


def test_a_missing_override_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "absent.yaml"
    monkeypatch.setenv(crd.ENV_CRD_FILE, str(missing))
    with pytest.raises(FileNotFoundError, match=f"{crd.ENV_CRD_FILE}={missing}: no such file"):
        crd.crd_file()
