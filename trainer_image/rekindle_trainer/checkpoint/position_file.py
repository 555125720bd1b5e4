"""The last step each attempt reached, kept in a memory-mapped file on the volume.

Work lost to a SIGKILL is the steps between the newest checkpoint and the last
step the killed process finished. Writing that step to a file every step would
cost a system call per step; instead the file is mapped into memory and each
step overwrites 36 bytes of it. A killed process's writes are already in the
kernel's page cache, so the next attempt reads the exact step (only a crash of
the whole node can lose them, and then the count is a lower bound).

The record also holds the job's lost steps counted before its attempt, so
that the total survives attempts that never wrote a termination message
(SIGKILL): each attempt adds the steps the one before it trained past the
checkpoint it resumes from, and reports the total (:func:`account`).

The record carries a CRC-32 of its fields, and what it says must make sense
(an epoch within the budget, a step an epoch's length at most past it): a
damaged record counts no lost steps (logged) rather than an absurd number.
Records of the previous release (24 bytes, no checksum, no total) are still read.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

POSITION_FILE: Final = "position.bin"
_FIELDS: Final = struct.Struct("<qqqq")  # attempt, epoch, global step, lost before
_LEGACY: Final = struct.Struct("<qqq")  # the previous release: attempt, epoch, global step
_CHECKSUM: Final = struct.Struct("<I")  # CRC-32 of the fields
_SIZE: Final = _FIELDS.size + _CHECKSUM.size


@dataclass(frozen=True)
class Reached:
    """Where an attempt had got to."""

    attempt: int
    epoch: int
    step: int
    #: The job's lost steps counted when this attempt started (earlier attempts').
    lost_before: int = 0


@dataclass(frozen=True)
class LostWork:
    """What an attempt finds lost: ``lost`` by the attempt before it, ``total`` for the job."""

    lost: int
    total: int


def read(folder: Path) -> Reached | None:
    """The position recorded in ``folder``, or ``None`` when there is none or it is damaged."""
    try:
        data = (folder / POSITION_FILE).read_bytes()
    except OSError:
        return None
    if len(data) == _LEGACY.size:  # the previous release's record: no checksum
        return Reached(*_LEGACY.unpack(data))
    if len(data) != _SIZE:
        return None
    fields = data[: _FIELDS.size]
    (crc,) = _CHECKSUM.unpack_from(data, _FIELDS.size)
    if zlib.crc32(fields) != crc:
        return None
    return Reached(*_FIELDS.unpack(fields))


def _implausible(reached: Reached, epochs: int, steps_per_epoch: int) -> str | None:
    """Why ``reached`` cannot be a position of this run, or ``None``."""
    if min(reached.attempt, reached.epoch, reached.step, reached.lost_before) < 0:
        return "negative numbers"
    if reached.epoch > epochs:
        return f"epoch {reached.epoch} is beyond the budget of {epochs}"
    if reached.step < reached.epoch:
        return f"step {reached.step} is fewer than the {reached.epoch} epochs done"
    if reached.step > (reached.epoch + 1) * steps_per_epoch:
        return f"step {reached.step} is past the end of epoch {reached.epoch + 1}"
    return None


def account(folder: Path, resumed_step: int, *, epochs: int, steps_per_epoch: int) -> LostWork:
    """The steps lost since the newest record, and the job's total with them.

    The record is that of the last attempt that trained a step; the steps it
    trained past ``resumed_step`` are lost. An attempt killed before its first
    step leaves that record as it was, so the next one counts the same loss
    once, not twice. An unusable record counts nothing (logged).

    Args:
        folder: the job's checkpoint folder.
        resumed_step: the global step this attempt starts from (0 without a checkpoint).
        epochs: the epoch budget.
        steps_per_epoch: the most steps an epoch has had (now or when the checkpoint was
            written), to bound the record.
    """
    reached = read(folder)
    if reached is None:
        if (folder / POSITION_FILE).exists():
            log.warning(
                "%s in %s is damaged: lost steps unknown, counted as 0", POSITION_FILE, folder
            )
        return LostWork(0, 0)
    problem = _implausible(reached, epochs, steps_per_epoch)
    if problem is not None:
        log.warning(
            "%s in %s makes no sense (%s): lost steps unknown, counted as 0",
            POSITION_FILE,
            folder,
            problem,
        )
        return LostWork(0, 0)
    lost = max(0, reached.step - resumed_step)
    return LostWork(lost, reached.lost_before + lost)


class PositionRecord:
    """The mapped file; :meth:`update` is cheap enough to call every step.

    Args:
        folder: the job's checkpoint folder (created if missing).
        attempt: this attempt's number.
        lost_before: the job's lost steps counted when this attempt started.
    """

    def __init__(self, folder: Path, attempt: int, lost_before: int = 0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / POSITION_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size != _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self.attempt = attempt
        self.lost_before = lost_before

    def update(self, epoch: int, step: int) -> None:
        """Record that ``step`` (global) of 0-based ``epoch`` is done."""
        fields = _FIELDS.pack(self.attempt, epoch, step, self.lost_before)
        self._map[:_SIZE] = fields + _CHECKSUM.pack(zlib.crc32(fields))

    def close(self) -> None:
        """Unmap (the kernel writes the page back)."""
        self._map.close()
