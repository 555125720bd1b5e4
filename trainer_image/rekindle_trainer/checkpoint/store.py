"""The checkpoint store on the job's volume folder: atomic publish, checksums, retention.

A checkpoint is a folder ``ckpt-<epoch>-<step>`` holding ``state.bin`` (every
array, back to back) and ``manifest.json`` (format version, position,
metrics, early-stopping and data state, each array's name/dtype/shape/offset,
the CRC-32 and size of every file, and the CRC-32 of the manifest itself: see
:mod:`~rekindle_trainer.checkpoint.manifest`). It is written under ``.tmp-…``,
flushed to disk, then published by one ``rename``; a reader never sees a
half-written one. The checksum is there to catch torn writes and bit rot, not
tampering: CRC-32 (zlib's, about 1 GB/s on one core) costs the writer about half of what
SHA-256 did, which matters when training and writer share the CPU; manifests of
format 1 (SHA-256) and 2 (no manifest checksum) still verify.

A checkpoint whose manifest, sense checks or checksums fail is corrupt: it is
moved aside to ``.corrupt-<name>-<id>`` (kept for inspection; never read, never
counted, never named) and the one before it is used. A save of a position
whose folder already exists never yields to it unless that folder verifies and
holds the same state. Retention keeps the newest N valid checkpoints plus the
best one and never removes the checkpoint just published.

This module needs NumPy only: snapshots arrive as host arrays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from rekindle_trainer import contract
from rekindle_trainer.checkpoint import manifest
from rekindle_trainer.checkpoint.manifest import (
    READABLE_FORMATS,
    STATE_FILE,
    CorruptCheckpoint,
    crc_hex,
    parse_name,
)
from rekindle_trainer.checkpoint.verified_read import read_verified

__all__ = [
    "FINISHED_FILE",
    "READABLE_FORMATS",
    "STATE_FILE",
    "CheckpointStore",
    "CorruptCheckpoint",
    "Loaded",
    "Published",
    "ReadOnlyStore",
    "Snapshot",
    "no_valid_checkpoint_line",
    "parse_name",
]

log = logging.getLogger(__name__)

FINISHED_FILE: Final = "finished.json"
_ASIDE: Final = re.compile(
    rf"^{re.escape(contract.QUARANTINE_PREFIX)}"
    rf"({re.escape(contract.CHECKPOINT_PREFIX)}\d{{6}}-\d{{10}})-[0-9a-f]{{8}}$"
)
#: How many corrupt checkpoints the "no valid checkpoint" line names, and how long a reason.
_SHOWN: Final = 3
_REASON_CHARS: Final = 120


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
        return crc_hex(self.crc)


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ReadOnlyStore(RuntimeError):
    """A write to the store of a worker that is not the chief."""


@dataclass
class CheckpointStore:
    """The job's folder on the checkpoint volume.

    Args:
        root: the folder (``REKINDLE_CHECKPOINT_DIR``); created on first use.
        keep: how many of the newest valid checkpoints to keep (at least 1).
        corrupt: corrupt checkpoints that could not be moved aside (left out all the same).
        epochs: the epoch budget, for the manifests' sense check (``None``: not checked).
        on_corrupt: called with ``(name, reason)`` for each corrupt checkpoint found.
        read_only: a gang's worker other than the chief: it reads the same checkpoints
            but changes nothing in the folder (corrupt ones are only left out, every
            write raises :class:`ReadOnlyStore`), so that the chief alone publishes.
    """

    root: Path
    keep: int = 3
    corrupt: set[str] = field(default_factory=set)
    epochs: int | None = None
    on_corrupt: Callable[[str, str], None] | None = None
    read_only: bool = False

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError(f"keep must be >= 1. Received: keep={self.keep}")

    def _writing(self, what: str) -> None:
        """Refuse ``what`` on a read-only store (a bug: the callers check the role first)."""
        if self.read_only:
            raise ReadOnlyStore(f"{what} in {self.root}: only the gang's chief writes there")

    # ---------------------------------------------------------------- reading

    def names(self) -> list[str]:
        """Published checkpoint names, oldest first (no temporary, set-aside or corrupt ones)."""
        if not self.root.is_dir():
            return []
        return sorted(
            e.name
            for e in os.scandir(self.root)
            if e.is_dir() and parse_name(e.name) and e.name not in self.corrupt
        )

    def read_manifest(self, name: str) -> dict[str, Any]:
        """The manifest of checkpoint ``name``, its own checksum and its sense checked.

        Raises :class:`CorruptCheckpoint` saying what is wrong. Cheap: the state file is
        not read (see :meth:`verify`).
        """
        try:
            text = (self.root / name / contract.MANIFEST_NAME).read_text()
        except (OSError, ValueError) as exc:
            raise CorruptCheckpoint(f"{name}: manifest unreadable ({exc})") from exc
        return manifest.parse(name, text, epochs=self.epochs)

    def verify(self, name: str) -> dict[str, Any]:
        """The manifest of checkpoint ``name`` if it and every file it lists are intact.

        Raises :class:`CorruptCheckpoint` saying what is wrong.
        """
        doc = self.read_manifest(name)
        self._check_files(name, doc, keep=None)
        return doc

    def _check_files(self, name: str, doc: dict[str, Any], keep: str | None) -> np.ndarray | None:
        """Check the size and checksum of every file ``doc`` lists; the bytes of file ``keep``.

        Each file is read once; the bytes kept are returned only once their checksum held.
        """
        kind = "sha256" if doc["format_version"] == 1 else "crc32"
        kept = None
        for filename, expected in doc["files"].items():
            path = self.root / name / filename
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise CorruptCheckpoint(f"{name}/{filename}: missing ({exc.strerror})") from exc
            if size != expected["bytes"]:
                raise CorruptCheckpoint(
                    f"{name}/{filename}: {size} bytes, manifest says {expected['bytes']}"
                )
            try:
                checksum, data = read_verified(
                    path, size, sha256=kind == "sha256", keep=filename == keep
                )
            except OSError as exc:
                raise CorruptCheckpoint(f"{name}/{filename}: unreadable ({exc.strerror})") from exc
            if checksum != expected[kind]:
                raise CorruptCheckpoint(f"{name}/{filename}: {kind} mismatch")
            if filename == keep:
                kept = data
        return kept

    def load(self, name: str) -> Loaded:
        """Verify and read checkpoint ``name``; raise :class:`CorruptCheckpoint`.

        The state file is read once; its arrays are views of that one buffer (copied
        only where a view would be misaligned for its dtype).
        """
        doc = self.read_manifest(name)
        data = self._check_files(name, doc, keep=STATE_FILE)
        assert data is not None  # the manifest's sense check requires the state file
        groups: dict[str, list[tuple[str, np.ndarray]]] = {}
        try:
            for group, entries in doc["arrays"].items():
                arrays: list[tuple[str, np.ndarray]] = []
                for entry in entries:
                    dtype = np.dtype(entry["dtype"])
                    count = int(np.prod(entry["shape"], dtype=np.int64))
                    start = int(entry["offset"])
                    raw = data[start : start + count * dtype.itemsize]
                    array = raw.view(dtype).reshape(entry["shape"])
                    arrays.append((entry["name"], array if array.flags.aligned else array.copy()))
                groups[group] = arrays
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpoint(f"{name}: array table inconsistent ({exc})") from exc
        return Loaded(name=name, manifest=doc, groups=groups)

    def latest_valid(self) -> tuple[Loaded | None, list[tuple[str, str]]]:
        """The newest intact checkpoint, and ``(name, reason)`` of newer ones set aside."""
        skipped: list[tuple[str, str]] = []
        for name in reversed(self.names()):
            try:
                loaded = self.load(name)
            except CorruptCheckpoint as exc:
                self.set_aside(name, str(exc))
                skipped.append((name, str(exc)))
                continue
            return loaded, skipped
        return None, skipped

    def find_epoch_end(self, epoch: int) -> str | None:
        """The newest checkpoint taken at the end of 0-based ``epoch`` whose manifest holds."""
        for name in reversed(self.names()):
            parsed = parse_name(name)
            if parsed is None or parsed[0] != epoch + 1:
                continue
            try:
                doc = self.read_manifest(name)
            except CorruptCheckpoint as exc:
                self.set_aside(name, str(exc))
                continue
            if doc.get("step_in_epoch") == 0:
                return name
        return None

    def load_epoch_end(self, epoch: int) -> Loaded | None:
        """The verified checkpoint of the end of 0-based ``epoch``; ``None`` if none is left."""
        while (name := self.find_epoch_end(epoch)) is not None:
            try:
                return self.load(name)
            except CorruptCheckpoint as exc:
                self.set_aside(name, str(exc))
        return None

    def set_aside(self, name: str, reason: str) -> None:
        """Move corrupt checkpoint ``name`` out of the listing, kept for inspection; report it.

        It goes to ``.corrupt-<name>-<id>``, a name this store never reads nor counts; where
        it cannot be renamed it is marked in :attr:`corrupt` and left out all the same.
        """
        aside = self.root / f"{contract.QUARANTINE_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        try:
            if self.read_only:
                raise OSError(0, "read-only: the chief moves it")
            (self.root / name).rename(aside)
        except OSError as exc:
            self.corrupt.add(name)
            where = f"left in place ({exc.strerror})"
        else:
            _fsync_dir(self.root)
            where = f"moved aside to {aside.name}"
        log.warning("corrupt checkpoint %s (%s): %s", name, reason, where)
        if self.on_corrupt is not None:
            self.on_corrupt(name, reason)

    # ---------------------------------------------------------------- writing

    def remove_unfinished(self) -> list[str]:
        """Delete ``.tmp-…`` folders left by a writer that was killed; their names."""
        if self.read_only or not self.root.is_dir():
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
        self._writing(f"writing {snapshot.name}")
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
        doc = manifest.seal(
            {
                "format_version": contract.MANIFEST_FORMAT_VERSION,
                "name": name,
                "created": time.time(),
                **snapshot.meta,
                "arrays": table,
                "files": {STATE_FILE: {"crc32": writer.checksum, "bytes": writer.size}},
            }
        )
        with (temp / contract.MANIFEST_NAME).open("w") as handle:
            json.dump(doc, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(temp)
        final = self._publish(temp, name, {"crc32": writer.checksum, "bytes": writer.size})
        nbytes = writer.size + (final / contract.MANIFEST_NAME).stat().st_size
        return Published(name, final, nbytes, time.perf_counter() - started)

    def _publish(self, temp: Path, name: str, state: dict[str, Any]) -> Path:
        """Rename ``temp`` to ``name``; a folder already there yields unless it is the same.

        A position is saved twice when a SIGTERM save follows a periodic one at the same
        step, or when a run that fell back to an older checkpoint trains to the same
        position again. The folder already there is verified first. Corrupt, it is set
        aside. Valid with the same state file (checksum and size: a deterministic run
        saved the same state twice), it is kept and the new copy dropped: nothing would
        change but the manifest's time and trigger. Valid with other state (data that
        cannot be replayed exactly), it is replaced: the run goes on from the new state,
        and its best epoch must be read back from the same history.
        """
        final = self.root / name
        trash = None
        if os.path.lexists(final):
            try:
                existing = self.verify(name)
            except CorruptCheckpoint as exc:
                self.set_aside(name, str(exc))
            else:
                if existing["files"][STATE_FILE] == state:
                    shutil.rmtree(temp, ignore_errors=True)
                    return final
                log.info("replacing %s: saved again with other state", name)
                trash = self._trash(name)
        temp.rename(final)
        _fsync_dir(self.root)
        self.corrupt.discard(name)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return final

    def _trash(self, entry: str) -> Path | None:
        """Rename ``entry`` to a temporary name (never taken for a checkpoint); that path."""
        trash = self.root / f"{contract.TEMP_PREFIX}delete-{entry}-{uuid.uuid4().hex[:8]}"
        try:
            (self.root / entry).rename(trash)
        except OSError:
            return None
        return trash

    def prune(self, newest: str, best: str | None) -> list[str]:
        """Keep the newest ``keep`` valid checkpoints, ``best`` and ``newest``; delete the rest.

        Corrupt checkpoints never count (they are set aside when found); those newer
        than the oldest kept one are left for inspection, older ones are deleted.
        """
        self._writing("pruning")
        valid = self.names()
        kept = set(valid[-self.keep :]) | {newest}
        if best is not None:
            kept.add(best)
        oldest_kept = min(kept)
        doomed = [n for n in valid if n not in kept]
        doomed += [n for n in sorted(self.corrupt) if n < oldest_kept]
        doomed += [entry for entry, name in self._set_aside() if name < oldest_kept]
        removed = []
        for entry in doomed:
            trash = self._trash(entry)
            if trash is None:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            self.corrupt.discard(entry)
            removed.append(entry)
        return removed

    def _set_aside(self) -> list[tuple[str, str]]:
        """``(folder, checkpoint name)`` of each corrupt checkpoint set aside."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in os.scandir(self.root):
            match = _ASIDE.match(entry.name)
            if match:
                found.append((entry.name, match.group(1)))
        return sorted(found)

    # ------------------------------------------------------- small JSON files

    def write_json(self, filename: str, doc: dict[str, Any]) -> None:
        """Replace ``filename`` in the job folder atomically."""
        self._writing(f"writing {filename}")
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


def no_valid_checkpoint_line(root: Path, skipped: list[tuple[str, str]]) -> str:
    """One line for the log and the termination message: nothing valid is left, and why."""
    parts = [f"{name} corrupt ({_reason(name, why)})" for name, why in skipped[:_SHOWN]]
    if len(skipped) > _SHOWN:
        parts.append(f"and {len(skipped) - _SHOWN} more")
    return f"no valid checkpoint in {root}: {', '.join(parts)}; starting from epoch 0"


def _reason(name: str, why: str) -> str:
    """``why`` without the checkpoint's name in front, shortened to one short clause."""
    text = why.removeprefix(name).lstrip(":/ ")
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
