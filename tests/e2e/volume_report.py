"""What a job's folder on the checkpoint volume holds, as one JSON document.

A user checks a run by looking at its volume: which checkpoints were published,
what triggered each one (``epoch``, ``sigterm``, ``final``…), where training
stood, and the trainer's ``finished.json``. :func:`describe` reads all that
and a SHA-256 of each checkpoint's model weights (so that two runs can be
compared bitwise without copying the arrays).

The module needs only the standard library, NumPy and
:mod:`rekindle_trainer.checkpoint.store`, all of which the trainer image has: on a real
cluster its source runs as ``python3 -c SOURCE FOLDER`` inside a helper pod that
mounts the claim, and prints the document (``python3 -c SOURCE FOLDER EPOCH TIMEOUT``
first waits for a checkpoint of that epoch, so that a fault lands right after
it); on the emulated one it runs here.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from rekindle_trainer.checkpoint import store


def model_digest(checkpoint: store.Loaded) -> str:
    """SHA-256 over the model arrays (name, dtype, shape, bytes) of one checkpoint."""
    digest = hashlib.sha256()
    for name, array in checkpoint.groups.get("model", []):
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def describe(folder: Path) -> dict[str, Any]:
    """The document: ``entries`` (every name in the folder), ``checkpoints``, ``finished``.

    Each checkpoint gives ``name``, ``epoch``, ``step``, ``step_in_epoch``,
    ``trigger``, ``attempt``, ``logs`` and ``model_sha256``; a corrupt one gives
    ``corrupt`` (the reason) instead.
    """
    checkpoints = store.CheckpointStore(folder)
    found: list[dict[str, Any]] = []
    for name in checkpoints.names():
        try:
            loaded = checkpoints.load(name)
        except (store.CorruptCheckpoint, OSError) as exc:
            # Also a checkpoint pruned by a running trainer while it was being read.
            found.append({"name": name, "corrupt": str(exc)})
            continue
        manifest = loaded.manifest
        found.append(
            {
                "name": name,
                "epoch": manifest.get("epoch"),
                "step": manifest.get("step"),
                "step_in_epoch": manifest.get("step_in_epoch"),
                "trigger": manifest.get("trigger"),
                "attempt": manifest.get("attempt"),
                "logs": manifest.get("logs"),
                "model_sha256": model_digest(loaded),
            }
        )
    try:
        entries = sorted(p.name for p in folder.iterdir())
    except OSError:
        entries = []
    return {
        "entries": entries,
        "checkpoints": found,
        "finished": _json_file(folder / store.FINISHED_FILE),
    }


def wait_for_epoch(folder: Path, epoch: int, timeout: float, interval: float = 0.1) -> bool:
    """Wait until a checkpoint of ``epoch`` or later is published; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    checkpoints = store.CheckpointStore(folder)
    while True:
        positions = [store.parse_name(name) for name in checkpoints.names()]
        if any(p is not None and p[0] >= epoch for p in positions):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def main(argv: list[str]) -> int:
    """``FOLDER [EPOCH TIMEOUT]``: print the document (after waiting for EPOCH, if given)."""
    folder = Path(argv[0])
    if len(argv) == 3 and not wait_for_epoch(folder, int(argv[1]), float(argv[2])):
        print(f"no checkpoint of epoch >= {argv[1]} in {folder} within {argv[2]}s", file=sys.stderr)
        return 1
    print(json.dumps(describe(folder), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
