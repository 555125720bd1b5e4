"""What a job's folder on the checkpoint volume holds, as one JSON document.

A user checks a run by looking at its volume: which checkpoints were published,
what triggered each one (``epoch``, ``sigterm``, ``final``…), where training
stood, and the trainer's ``finished.json``. :func:`describe` reads all that
and a SHA-256 of each checkpoint's model weights (so that two runs can be
compared bitwise without copying the arrays).

The module needs only the standard library, NumPy and
:mod:`rekindle_trainer.store`, all of which the trainer image has: on a real
cluster its source runs as ``python -c SOURCE FOLDER`` inside a helper pod that
mounts the claim, and prints the document; on the emulated one it runs here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from rekindle_trainer import store


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
        "position": _json_file(folder / store.POSITION_FILE),
    }


if __name__ == "__main__":
    print(json.dumps(describe(Path(sys.argv[1])), sort_keys=True))
