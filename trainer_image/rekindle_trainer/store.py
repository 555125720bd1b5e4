"""The checkpoint store on the job's volume folder: atomic publish, checksums, retention.

A checkpoint is a folder ``ckpt-<epoch>-<step>`` holding ``state.bin`` (every
array, back to back) and ``manifest.json`` (format version, position,
metrics, early-stopping and data state, each array's name/dtype/shape/offset,
and the CRC-32 and size of every file). It is written under ``.tmp-…``,
flushed to disk, then published by one ``rename``; a reader never sees a
half-written one. A checkpoint whose manifest or checksums fail is skipped for
the one before it. The checksum is there to catch torn writes and bit rot, not
tampering: CRC-32 (zlib's, at several GB/s) costs the writer about half of what
SHA-256 did, which matters when training and writer share the CPU; manifests of
format 1 (SHA-256) still verify. Retention keeps the newest N valid checkpoints plus the best
one and never removes the checkpoint just published.

This module needs NumPy only: snapshots arrive as host arrays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from rekindle_trainer import contract

log = logging.getLogger(__name__)

STATE_FILE: Final = "state.bin"
FINISHED_FILE: Final = "finished.json"
_NAME: Final = re.compile(rf"^{re.escape(contract.CHECKPOINT_PREFIX)}(\d{{6}})-(\d{{10}})$")
_CHUNK: Final = 1 << 20
#: Manifest formats this store reads: 1 has a SHA-256 per file, 2 a CRC-32.
READABLE_FORMATS: Final = frozenset({1, contract.MANIFEST_FORMAT_VERSION})


class CorruptCheckpoint(ValueError):
    """A checkpoint folder failed verification; the message says how."""


@dataclass
class Snapshot:
    """Host copies of the training state plus what the manifest records about it.

    Attributes:
        groups: named lists of ``(name, array)``: ``model``, ``optimizer``, ``metrics``.
        meta: position and state for the manifest (JSON-ready): ``epoch`` (epochs
            completed), ``step`` (global step), ``step_in_epoch``, ``trigger``, ``logs``,
            ``early_stopping``, ``data``…
    """

    groups: dict[str, list[tuple[str, np.ndarray]]]
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        """The folder name this snapshot is published under."""
        return contract.checkpoint_name(int(self.meta["epoch"]), int(self.meta["step"]))

    @property
    def nbytes(self) -> int:
        """Bytes of array data."""
        return sum(a.nbytes for arrays in self.groups.values() for _, a in arrays)


@dataclass(frozen=True)
class Loaded:
    """A verified checkpoint read back from the volume."""

    name: str
    manifest: dict[str, Any]
    groups: dict[str, list[tuple[str, np.ndarray]]]


@dataclass(frozen=True)
class Published:
    """What one save wrote."""

    name: str
    path: Path
    nbytes: int
    seconds: float


def parse_name(name: str) -> tuple[int, int] | None:
    """``(epoch, step)`` of a published checkpoint folder name, else ``None``."""
    match = _NAME.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


class _ChecksummingWriter:
    """Writes to a file while taking the CRC-32 and the size of what passes through."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.crc = 0
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.handle.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    @property
    def checksum(self) -> str:
        """The CRC-32 so far, as the manifest records it (8 hex digits)."""
        return _crc_hex(self.crc)


def _crc_hex(crc: int) -> str:
    return f"{crc & 0xFFFFFFFF:08x}"


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _file_checksum(path: Path, *, sha256: bool) -> str:
    """The file's CRC-32 (format 2) or SHA-256 (format 1), read a chunk at a time."""
    digest = hashlib.sha256() if sha256 else None
    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if digest is not None:
                digest.update(chunk)
            else:
                crc = zlib.crc32(chunk, crc)
    return digest.hexdigest() if digest is not None else _crc_hex(crc)


@dataclass
class CheckpointStore:
    """The job's folder on the checkpoint volume.

    Args:
        root: the folder (``REKINDLE_CHECKPOINT_DIR``); created on first use.
        keep: how many of the newest valid checkpoints to keep (at least 1).
    """

    root: Path
    keep: int = 3
    corrupt: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError(f"keep must be >= 1. Received: keep={self.keep}")

    # ---------------------------------------------------------------- reading

    def names(self) -> list[str]:
        """Published checkpoint names, oldest first (temporary folders excluded)."""
        if not self.root.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.root) if e.is_dir() and parse_name(e.name))

    def verify(self, name: str) -> dict[str, Any]:
        """The manifest of checkpoint ``name`` if its files are intact.

        Raises :class:`CorruptCheckpoint` saying what is wrong.
        """
        folder = self.root / name
        try:
            manifest = json.loads((folder / contract.MANIFEST_NAME).read_text())
        except (OSError, ValueError) as exc:
            raise CorruptCheckpoint(f"{name}: manifest unreadable ({exc})") from exc
        if not isinstance(manifest, dict):
            raise CorruptCheckpoint(f"{name}: manifest is not an object")
        version = manifest.get("format_version")
        if version not in READABLE_FORMATS:
            raise CorruptCheckpoint(
                f"{name}: format_version {version!r}, expected one of {sorted(READABLE_FORMATS)}"
            )
        kind = "sha256" if version == 1 else "crc32"
        files = manifest.get("files")
        if not isinstance(files, dict) or STATE_FILE not in files:
            raise CorruptCheckpoint(f"{name}: manifest lists no {STATE_FILE}")
        for filename, expected in files.items():
            path = folder / filename
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise CorruptCheckpoint(f"{name}/{filename}: missing ({exc.strerror})") from exc
            if size != expected.get("bytes"):
                raise CorruptCheckpoint(
                    f"{name}/{filename}: {size} bytes, manifest says {expected.get('bytes')}"
                )
            if _file_checksum(path, sha256=kind == "sha256") != expected.get(kind):
                raise CorruptCheckpoint(f"{name}/{filename}: {kind} mismatch")
        return manifest

    def load(self, name: str) -> Loaded:
        """Verify and read checkpoint ``name``; raise :class:`CorruptCheckpoint`."""
        manifest = self.verify(name)
        data = (self.root / name / STATE_FILE).read_bytes()
        groups: dict[str, list[tuple[str, np.ndarray]]] = {}
        try:
            for group, entries in manifest["arrays"].items():
                arrays: list[tuple[str, np.ndarray]] = []
                for entry in entries:
                    dtype = np.dtype(entry["dtype"])
                    count = int(np.prod(entry["shape"], dtype=np.int64))
                    flat = np.frombuffer(data, dtype=dtype, count=count, offset=entry["offset"])
                    arrays.append((entry["name"], flat.reshape(entry["shape"]).copy()))
                groups[group] = arrays
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpoint(f"{name}: array table inconsistent ({exc})") from exc
        return Loaded(name=name, manifest=manifest, groups=groups)

    def latest_valid(self) -> tuple[Loaded | None, list[tuple[str, str]]]:
        """The newest intact checkpoint, and ``(name, reason)`` of newer ones skipped as corrupt."""
        skipped: list[tuple[str, str]] = []
        for name in reversed(self.names()):
            try:
                loaded = self.load(name)
            except CorruptCheckpoint as exc:
                log.warning("skipping corrupt checkpoint %s", exc)
                self.corrupt.add(name)
                skipped.append((name, str(exc)))
                continue
            return loaded, skipped
        return None, skipped

    def find_epoch_end(self, epoch: int) -> str | None:
        """The newest valid checkpoint taken at the end of 0-based ``epoch``, if kept."""
        for name in reversed(self.names()):
            parsed = parse_name(name)
            if name in self.corrupt or parsed is None or parsed[0] != epoch + 1:
                continue
            try:
                manifest = json.loads((self.root / name / contract.MANIFEST_NAME).read_text())
            except (OSError, ValueError):
                continue
            if manifest.get("step_in_epoch") == 0:
                return name
        return None

    # ---------------------------------------------------------------- writing

    def remove_unfinished(self) -> list[str]:
        """Delete ``.tmp-…`` folders left by a writer that was killed; their names."""
        if not self.root.is_dir():
            return []
        removed = []
        for entry in os.scandir(self.root):
            if entry.name.startswith(contract.TEMP_PREFIX):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                removed.append(entry.name)
        return removed

    def write(self, snapshot: Snapshot) -> Published:
        """Write ``snapshot`` under a temporary name, flush it, and publish it by a rename."""
        started = time.perf_counter()
        self.root.mkdir(parents=True, exist_ok=True)
        name = snapshot.name
        temp = self.root / f"{contract.TEMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        table: dict[str, list[dict[str, Any]]] = {}
        with (temp / STATE_FILE).open("wb") as handle:
            writer = _ChecksummingWriter(handle)
            for group, arrays in snapshot.groups.items():
                entries = table.setdefault(group, [])
                for array_name, array in arrays:
                    contiguous = np.asarray(array, order="C")
                    entries.append(
                        {
                            "name": array_name,
                            "dtype": contiguous.dtype.str,
                            "shape": list(contiguous.shape),
                            "offset": writer.size,
                        }
                    )
                    writer.write(
                        contiguous.tobytes() if contiguous.ndim == 0 else contiguous.data.cast("B")
                    )
            handle.flush()
            os.fsync(handle.fileno())
        manifest = {
            "format_version": contract.MANIFEST_FORMAT_VERSION,
            "name": name,
            "created": time.time(),
            **snapshot.meta,
            "arrays": table,
            "files": {STATE_FILE: {"crc32": writer.checksum, "bytes": writer.size}},
        }
        with (temp / contract.MANIFEST_NAME).open("w") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(temp)
        final = self.root / name
        if final.exists():
            # The same position saved twice (e.g. SIGTERM right after a save): keep the first.
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.rename(final)
            _fsync_dir(self.root)
        self.corrupt.discard(name)
        nbytes = writer.size + (final / contract.MANIFEST_NAME).stat().st_size
        return Published(name, final, nbytes, time.perf_counter() - started)

    def prune(self, newest: str, best: str | None) -> list[str]:
        """Keep the newest ``keep`` valid checkpoints, ``best`` and ``newest``; delete the rest.

        Corrupt checkpoints newer than the oldest kept one are left for inspection.
        """
        valid = [n for n in self.names() if n not in self.corrupt]
        kept = set(valid[-self.keep :]) | {newest}
        if best is not None:
            kept.add(best)
        oldest_kept = min(kept)
        doomed = [
            n for n in self.names() if n not in kept and (n not in self.corrupt or n < oldest_kept)
        ]
        removed = []
        for name in doomed:
            # Rename first so that a half-deleted folder is never taken for a checkpoint.
            trash = self.root / f"{contract.TEMP_PREFIX}delete-{name}"
            try:
                (self.root / name).rename(trash)
            except OSError:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            self.corrupt.discard(name)
            removed.append(name)
        return removed

    # ------------------------------------------------------- small JSON files

    def write_json(self, filename: str, doc: dict[str, Any]) -> None:
        """Replace ``filename`` in the job folder atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f"{contract.TEMP_PREFIX}{filename}-{uuid.uuid4().hex[:8]}"
        temp.write_text(json.dumps(doc, sort_keys=True))
        temp.replace(self.root / filename)

    def read_json(self, filename: str) -> dict[str, Any] | None:
        """A JSON file of the job folder, or ``None`` when absent or unreadable."""
        try:
            doc = json.loads((self.root / filename).read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None
