"""The last step each attempt reached, kept in a memory-mapped file on the volume.

Work lost to a SIGKILL is the steps between the newest checkpoint and the last
step the killed process finished. Writing that step to a file every step would
cost a system call per step; instead the file is mapped into memory and each
step overwrites 24 bytes of it. A killed process's writes are already in the
kernel's page cache, so the next attempt reads the exact step (only a crash of
the whole node can lose them, and then the count is a lower bound).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

POSITION_FILE: Final = "position.bin"
_FORMAT: Final = "<qqq"  # attempt, epoch, global step
_SIZE: Final = struct.calcsize(_FORMAT)


@dataclass(frozen=True)
class Reached:
    """Where an attempt had got to."""

    attempt: int
    epoch: int
    step: int


def read(folder: Path) -> Reached | None:
    """The position recorded in ``folder``, or ``None`` when there is none."""
    try:
        data = (folder / POSITION_FILE).read_bytes()
    except OSError:
        return None
    if len(data) < _SIZE:
        return None
    return Reached(*struct.unpack_from(_FORMAT, data))


class PositionRecord:
    """The mapped file; :meth:`update` is cheap enough to call every step.

    Args:
        folder: the job's checkpoint folder (created if missing).
        attempt: this attempt's number.
    """

    def __init__(self, folder: Path, attempt: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / POSITION_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self.attempt = attempt

    def update(self, epoch: int, step: int) -> None:
        """Record that ``step`` (global) of 0-based ``epoch`` is done."""
        struct.pack_into(_FORMAT, self._map, 0, self.attempt, epoch, step)

    def close(self) -> None:
        """Unmap (the kernel writes the page back)."""
        self._map.close()
