"""Optional test dependencies: skip with a reason locally, fail under ``CI=true``.

CI must never go green by skipping: a test that needs Prometheus, ``../shared``
or another tool calls :func:`need` and, where ``CI`` is set, fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to a true value)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(available: bool, reason: str) -> None:
    """Skip (or fail under CI) unless ``available``; ``reason`` says what is missing and how."""
    if available:
        return
    if in_ci():
        pytest.fail(f"missing test dependency under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def need_tool(name: str) -> str:
    """The path of executable ``name``, or skip/fail naming the Debian package to install."""
    path = shutil.which(name)
    need(
        path is not None,
        f"{name} not found on PATH; install Debian's 'prometheus' package "
        "(`make system-deps` does it when root on Debian)",
    )
    assert path is not None
    return path


def shared_testdata(*parts: str) -> Path:
    """A path under ``../shared/testdata``, or skip/fail when ``../shared`` is absent."""
    path = SHARED.joinpath("testdata", *parts)
    need(path.exists(), f"{path} not found: ../shared must sit beside the checkout")
    return path
