"""The ``rekindle-train`` command (filled in by the trainer runner)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the trainer image."""
    del argv
    print("rekindle-train: the trainer runner is not built yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
