"""Read a checkpoint file once while a second thread checksums what was read.

A restore is bounded by the read plus the checksum when both run on one core: zlib's
CRC-32 runs at about 1 GB/s, a read from the page cache at several, so a warm restore
took about 1.5 times a plain read (docs/benchmarks.md, "Save and restore"). Here the
checksum of chunk *n* runs on a helper thread while the calling thread reads chunk
*n + 1*: both ``readinto`` and ``zlib.crc32`` / ``hashlib`` release the GIL on large
buffers, so the two overlap on two cores and the restore takes about the longer of
the two, not their sum. The checksum is still taken over the bytes in order, so the
format and every check are unchanged.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np

from rekindle_trainer.checkpoint.manifest import crc_hex

#: Bytes read (and checksummed) at a time: large enough that system calls and the hand-over
#: between threads cost nothing, small enough that a chunk is still in the shared cache when
#: the checksum thread reaches it.
CHUNK: Final = 1 << 22
#: Chunk buffers in flight when the bytes are not kept (the read fills one while the
#: checksum runs over another).
_SPARES: Final = 3


class _Checksum:
    """CRC-32 (or SHA-256, format 1) over chunks, in the order they were read."""

    def __init__(self, *, sha256: bool) -> None:
        self._digest = hashlib.sha256() if sha256 else None
        self._crc = 0

    def update(self, chunk: memoryview) -> None:
        if self._digest is not None:
            self._digest.update(chunk)
        else:
            self._crc = zlib.crc32(chunk, self._crc)

    def hexdigest(self) -> str:
        return self._digest.hexdigest() if self._digest is not None else crc_hex(self._crc)


class _Behind:
    """Runs a :class:`_Checksum` on its own thread, fed chunk by chunk."""

    def __init__(self, checksum: _Checksum) -> None:
        self._checksum = checksum
        self._work: queue.SimpleQueue[tuple[memoryview, Callable[[], None]] | None] = (
            queue.SimpleQueue()
        )
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rekindle-checksum", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            chunk, done = item
            try:
                if self._failed is None:
                    self._checksum.update(chunk)
            except BaseException as exc:  # handed to the caller by finish()
                self._failed = exc
            finally:
                done()

    def feed(self, chunk: memoryview, done: Callable[[], None]) -> None:
        """Checksum ``chunk`` after those fed before; call ``done`` when it is no longer read."""
        self._work.put((chunk, done))

    def finish(self) -> None:
        """Wait for every chunk fed so far; raise what the checksum raised."""
        self._work.put(None)
        self._thread.join()
        if self._failed is not None:
            raise self._failed


def _nothing() -> None:
    return None


def read_verified(path: Path, size: int, *, sha256: bool, keep: bool) -> tuple[str, np.ndarray]:
    """Read ``path`` once, front to back; return its checksum and its bytes.

    The checksum is the CRC-32 as the manifest writes it (the SHA-256 for format 1).
    With ``keep`` the bytes land in one buffer of ``size`` bytes (a restore's arrays are
    views of it); without, a few chunk-sized buffers are reused and the returned array
    holds no meaningful bytes. A file of one chunk or less is checksummed on the calling
    thread: there is nothing to overlap. Raises :class:`OSError` when the file cannot be
    read or its size is not ``size``.
    """
    checksum = _Checksum(sha256=sha256)
    behind = _Behind(checksum) if size > CHUNK else None
    if keep:
        buffer = np.empty(size, dtype=np.uint8)
        spares: queue.SimpleQueue[memoryview] | None = None
    else:
        step, count = min(size, CHUNK), _SPARES if behind else 1
        buffer = np.empty(step * count, dtype=np.uint8)
        spares = queue.SimpleQueue()
        for index in range(count):
            spares.put(buffer.data[index * step : (index + 1) * step])
    done = 0
    try:
        with path.open("rb", buffering=0) as handle:
            while True:
                target = buffer.data[done : done + CHUNK] if spares is None else spares.get()
                got = handle.readinto(target) if len(target) else 0
                if not got:
                    break
                chunk = target[:got]
                if behind is None:
                    checksum.update(chunk)
                    if spares is not None:
                        spares.put(target)
                else:
                    behind.feed(chunk, _nothing if spares is None else _put(spares, target))
                done += got
    finally:
        if behind is not None:
            behind.finish()
    if done != size:
        raise OSError(0, f"read {done} bytes, expected {size} (changed while read)")
    return checksum.hexdigest(), buffer


def _put(spares: queue.SimpleQueue[memoryview], target: memoryview) -> Callable[[], None]:
    """The callback that hands ``target`` back to the reader once it is checksummed."""
    return lambda: spares.put(target)
