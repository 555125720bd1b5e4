"""A checkpoint's manifest: sealed by a checksum of its own, and checked for sense when read.

The per-file checksums cover ``state.bin``; from format 3 on, the manifest
carries the CRC-32 of its own canonical body (every other key, sorted, compact
JSON) under :data:`CHECKSUM_KEY`, so that an edited or rotted manifest is
caught too. Formats 1 and 2 (written by earlier releases) have no such
checksum and are still read. Every manifest, whatever its format, must also
make sense: its position matches its folder name, steps and epochs are
non-negative integers, the epoch is within the budget, the position within
the epoch, the early-stopping state within the epochs done, and the array
table inside the state file. A manifest that fails any of this is corrupt.

Pure: JSON and arithmetic only.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from pathlib import PurePosixPath
from typing import Any, Final

import numpy as np

from rekindle_trainer import contract

STATE_FILE: Final = "state.bin"
#: The key under which format 3+ manifests carry the CRC-32 of the rest of the manifest.
CHECKSUM_KEY: Final = "manifest_crc32"
#: Manifest formats this trainer reads: 1 has a SHA-256 per file, 2 a CRC-32, 3 also
#: a CRC-32 of the manifest itself.
READABLE_FORMATS: Final = frozenset({1, 2, contract.MANIFEST_FORMAT_VERSION})
_NAME: Final = re.compile(rf"^{re.escape(contract.CHECKPOINT_PREFIX)}(\d{{6}})-(\d{{10}})$")


class CorruptCheckpoint(ValueError):
    """A checkpoint folder failed verification; the message says how."""


def parse_name(name: str) -> tuple[int, int] | None:
    """``(epoch, step)`` of a published checkpoint folder name, else ``None``."""
    match = _NAME.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def crc_hex(crc: int) -> str:
    """A CRC-32 as manifests record it (8 hex digits)."""
    return f"{crc & 0xFFFFFFFF:08x}"


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the checksum of its canonical body added."""
    return {**doc, CHECKSUM_KEY: crc_hex(zlib.crc32(_canonical(doc)))}


def parse(name: str, text: str, *, epochs: int | None = None) -> dict[str, Any]:
    """The manifest of checkpoint ``name`` from its text, checked; raise :class:`CorruptCheckpoint`.

    Args:
        name: the checkpoint's folder name.
        text: the content of its ``manifest.json``.
        epochs: today's epoch budget, if known (an epoch within the budget the
            checkpoint was written under is accepted too: a user may lower it).
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CorruptCheckpoint(f"{name}: manifest unreadable ({exc})") from exc
    if not isinstance(doc, dict):
        raise CorruptCheckpoint(f"{name}: manifest is not an object")
    version = doc.get("format_version")
    if isinstance(version, bool) or version not in READABLE_FORMATS:
        raise CorruptCheckpoint(
            f"{name}: format_version {version!r}, expected one of {sorted(READABLE_FORMATS)}"
        )
    if version >= 3:
        body = {k: v for k, v in doc.items() if k != CHECKSUM_KEY}
        if CHECKSUM_KEY not in doc:
            raise CorruptCheckpoint(f"{name}: no manifest checksum ({CHECKSUM_KEY})")
        if doc[CHECKSUM_KEY] != crc_hex(zlib.crc32(_canonical(body))):
            raise CorruptCheckpoint(f"{name}: manifest checksum mismatch")
    try:
        _check(name, doc, epochs)
    except _Nonsense as exc:
        raise CorruptCheckpoint(f"{name}: {exc}") from None
    return doc


class _Nonsense(ValueError):
    """One field of a manifest that cannot be right."""


def _int(doc: dict[str, Any], key: str, minimum: int, default: int | None = None) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Nonsense(f"{key} {value!r} is not an integer")
    if value < minimum:
        raise _Nonsense(f"{key} {value} is below {minimum}")
    return value


def _optional_int(doc: dict[str, Any], key: str, minimum: int) -> int | None:
    return None if doc.get(key) is None else _int(doc, key, minimum)


def _object(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise _Nonsense(f"{key} is not an object")
    return value


def _check(name: str, doc: dict[str, Any], epochs: int | None) -> None:
    """Raise :class:`_Nonsense` for the first field that cannot be right."""
    if doc.get("name", name) != name:
        raise _Nonsense(f"manifest names {doc.get('name')!r}, its folder is {name}")
    epoch = _int(doc, "epoch", 0)
    step = _int(doc, "step", 0)
    if (epoch, step) != parse_name(name):
        raise _Nonsense(f"epoch {epoch} step {step} do not match the folder name")
    budget = max(_optional_int(doc, "epochs_budget", 1) or 0, epochs or 0)
    if budget and epoch > budget:
        raise _Nonsense(f"epoch {epoch} is beyond the budget of {budget}")
    in_epoch = _int(doc, "step_in_epoch", 0, default=0)
    per_epoch = _optional_int(_object(doc, "data"), "steps_per_epoch", 1)
    if per_epoch is not None and in_epoch > per_epoch:
        raise _Nonsense(f"step_in_epoch {in_epoch} is beyond the epoch's {per_epoch} steps")
    if step < epoch + in_epoch:  # every epoch done took one step at least
        raise _Nonsense(f"step {step} is fewer than {epoch} epochs and {in_epoch} steps take")
    _optional_int(doc, "replicas", 1)
    _check_early_stopping(_object(doc, "early_stopping"), epoch)
    sizes = _check_files(doc.get("files"), sha256=doc["format_version"] == 1)
    _check_arrays(doc.get("arrays"), sizes[STATE_FILE])


def _check_early_stopping(state: dict[str, Any], epoch: int) -> None:
    """Counts and epochs within the epochs done (0-based epochs, as Keras numbers them)."""
    wait = _int(state, "wait", 0, default=0)
    if wait > epoch:
        raise _Nonsense(f"early_stopping.wait {wait} exceeds the {epoch} epochs done")
    best = state.get("best")
    if best is not None and (isinstance(best, bool) or not isinstance(best, int | float)):
        raise _Nonsense(f"early_stopping.best {best!r} is not a number")
    for key in ("best_epoch", "stopped_epoch"):
        value = _optional_int(state, key, 0)
        if value is not None and value >= epoch:
            raise _Nonsense(f"early_stopping.{key} {value} is not among the {epoch} epochs done")


def _check_files(files: Any, *, sha256: bool) -> dict[str, int]:
    """Each listed file's size; names are plain file names inside the folder."""
    if not isinstance(files, dict) or STATE_FILE not in files:
        raise _Nonsense(f"manifest lists no {STATE_FILE}")
    kind = "sha256" if sha256 else "crc32"
    sizes: dict[str, int] = {}
    for filename, entry in files.items():
        if PurePosixPath(filename).name != filename or filename.startswith(".") or "\\" in filename:
            raise _Nonsense(f"file {filename!r} is outside the checkpoint folder")
        if not isinstance(entry, dict) or not isinstance(entry.get(kind), str):
            raise _Nonsense(f"file {filename!r} has no {kind}")
        sizes[filename] = _int(entry, "bytes", 0)
    return sizes


def _check_arrays(table: Any, size: int) -> None:
    """Every array a real dtype and shape, inside the state file, none overlapping."""
    if not isinstance(table, dict):
        raise _Nonsense("arrays is not an object")
    spans: list[tuple[int, int]] = []
    for group, entries in table.items():
        if not isinstance(entries, list):
            raise _Nonsense(f"arrays.{group} is not a list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise _Nonsense(f"an entry of arrays.{group} has no name")
            where = f"arrays.{group}[{entry['name']}]"
            try:
                dtype = np.dtype(entry.get("dtype"))
            except (TypeError, ValueError) as exc:
                raise _Nonsense(f"{where}: dtype {entry.get('dtype')!r} ({exc})") from None
            if dtype.hasobject or dtype.itemsize == 0:
                raise _Nonsense(f"{where}: dtype {dtype.str!r} cannot be read from bytes")
            shape = entry.get("shape")
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                raise _Nonsense(f"{where}: shape {shape!r} is not a list of sizes")
            offset = _int(entry, "offset", 0)
            end = offset + math.prod(shape) * dtype.itemsize
            if end > size:
                raise _Nonsense(f"{where}: offset {offset} to {end} is past {size} bytes")
            spans.append((offset, end))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise _Nonsense(f"arrays overlap at offset {start}")
