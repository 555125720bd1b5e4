"""Find and read the TrainingJob CRD, the single source of truth for the resource's schema.

The file lives in the Helm chart (``charts/rekindle/crds/``). ``rekindle run``
validates manifests against it; the tests compare the typed spec with it.
Installed packages carry it too: ``rekindle_operator/`` holds a symlink to the
chart's file, which the wheel packs as a plain file, so an installed ``rekindle``
reads the same bytes through :mod:`importlib.resources` without a second copy
that could drift.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

import yaml

from rekindle_operator.core import job_spec

CRD_FILE_NAME: Final = f"{job_spec.PLURAL}.{job_spec.API_GROUP}.yaml"
#: Overrides where the CRD file is read from (another copy of the chart).
ENV_CRD_FILE: Final = "REKINDLE_CRD_FILE"
#: Where the CRD sits in a source checkout, relative to the repository root.
CHART_CRD_PATH: Final = Path("charts") / "rekindle" / "crds" / CRD_FILE_NAME
#: The package whose data holds the CRD in an installed ``rekindle``.
PACKAGE: Final = "rekindle_operator"


def crd_file() -> Traversable:
    """The CRD file: ``$REKINDLE_CRD_FILE``, else the chart, else the installed package's copy.

    The chart is found when this module runs from a source checkout (or an
    editable install); the package's copy when ``rekindle`` is installed from a
    wheel.

    Raises:
        FileNotFoundError: saying where it looked and how to point at the file.
    """
    override = os.environ.get(ENV_CRD_FILE)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{ENV_CRD_FILE}={override}: no such file")
        return path
    chart = Path(__file__).resolve().parents[3] / CHART_CRD_PATH
    if chart.is_file():
        return chart
    packaged = resources.files(PACKAGE) / CRD_FILE_NAME
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f"the TrainingJob CRD is neither in a source checkout ({chart}) nor in the installed "
        f"package ({packaged}); the wheel was built without charts/rekindle/crds/{CRD_FILE_NAME} "
        f"beside operator/ (rebuild it from a full checkout), or set {ENV_CRD_FILE} to the path "
        "of that file"
    )


@functools.cache
def load_crd(source: Traversable | None = None) -> dict[str, Any]:
    """The CRD as a dict (cached; treat it as read-only)."""
    doc: dict[str, Any] = yaml.safe_load((source or crd_file()).read_text(encoding="utf-8"))
    return doc


def version_schema(crd: dict[str, Any], version: str = job_spec.API_VERSION) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``version``.

    Raises:
        KeyError: when the CRD does not serve that version.
    """
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"the CRD serves no version {version!r}")
