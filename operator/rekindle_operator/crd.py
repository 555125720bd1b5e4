"""Find and read the TrainingJob CRD, the single source of truth for the resource's schema.

The file lives in the Helm chart (``charts/rekindle/crds/``). ``rekindle run``
validates manifests against it; the tests compare the typed spec with it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Final

import yaml

from rekindle_operator import spec

CRD_FILE_NAME: Final = f"{spec.PLURAL}.{spec.API_GROUP}.yaml"
#: Overrides where the CRD file is read from (an installed copy of the chart).
ENV_CRD_FILE: Final = "REKINDLE_CRD_FILE"
#: Where the CRD sits in a source checkout, relative to the repository root.
CHART_CRD_PATH: Final = Path("charts") / "rekindle" / "crds" / CRD_FILE_NAME


def crd_path() -> Path:
    """The CRD file: ``$REKINDLE_CRD_FILE``, else the chart in this source checkout.

    Raises:
        FileNotFoundError: saying where it looked and how to point at the file.
    """
    override = os.environ.get(ENV_CRD_FILE)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{ENV_CRD_FILE}={override}: no such file")
        return path
    repo = Path(__file__).resolve().parents[2]
    path = repo / CHART_CRD_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"the TrainingJob CRD was not found at {path}; set {ENV_CRD_FILE} to the path of "
            f"charts/rekindle/crds/{CRD_FILE_NAME}"
        )
    return path


@functools.cache
def load_crd(path: Path | None = None) -> dict[str, Any]:
    """The CRD as a dict (cached; treat it as read-only)."""
    with (path or crd_path()).open(encoding="utf-8") as handle:
        doc: dict[str, Any] = yaml.safe_load(handle)
    return doc


def version_schema(crd: dict[str, Any], version: str = spec.API_VERSION) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``version``.

    Raises:
        KeyError: when the CRD does not serve that version.
    """
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"the CRD serves no version {version!r}")
