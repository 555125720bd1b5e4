"""The position record: exact when intact, ignored (lost steps 0, logged) when not."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from rekindle_trainer.checkpoint import position_file
from rekindle_trainer.checkpoint.position_file import (
    POSITION_FILE,
    LostWork,
    PositionRecord,
    Reached,
)


def _recorded(tmp_path: Path, epoch: int, step: int, attempt: int = 2, lost: int = 0) -> None:
    record = PositionRecord(tmp_path, attempt, lost_before=lost)
    record.update(epoch, step)
    record.close()


def _account(tmp_path: Path, resumed_step: int) -> LostWork:
    return position_file.account(tmp_path, resumed_step, epochs=3, steps_per_epoch=23)


def test_the_record_round_trips(tmp_path: Path) -> None:
    _recorded(tmp_path, 2, 57, lost=4)
    assert position_file.read(tmp_path) == Reached(attempt=2, epoch=2, step=57, lost_before=4)
    assert _account(tmp_path, 50) == LostWork(lost=7, total=11)
    assert _account(tmp_path, 60) == LostWork(lost=0, total=4)


def test_no_record_no_lost_steps(tmp_path: Path) -> None:
    assert _account(tmp_path, 0) == LostWork(lost=0, total=0)


def test_the_total_carries_every_attempt_that_trained(tmp_path: Path) -> None:
    """Each attempt counts the one before it on top of the total that one started with.

    An attempt killed before it wrote a record leaves the previous record: the next
    attempt counts the same loss once, from the same record.
    """
    _recorded(tmp_path, 0, 17, attempt=1)  # killed at step 17; saved at 15
    second = _account(tmp_path, 15)
    assert second == LostWork(lost=2, total=2)
    _recorded(tmp_path, 1, 29, attempt=2, lost=second.total)  # killed at 29; saved at 25
    third = _account(tmp_path, 25)
    assert third == LostWork(lost=4, total=6)
    assert _account(tmp_path, 25) == third  # attempt 3 died before its first step


@pytest.mark.parametrize("size", [24, 40, 100])
def test_random_bytes_give_no_lost_steps(
    tmp_path: Path, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(size)
    (tmp_path / POSITION_FILE).write_bytes(rng.bytes(size))
    with caplog.at_level(logging.WARNING):
        work = _account(tmp_path, 46)
    assert work == LostWork(lost=0, total=0)
    assert POSITION_FILE in caplog.text


def test_a_record_whose_checksum_fails_is_ignored(tmp_path: Path) -> None:
    _recorded(tmp_path, 2, 57)
    data = bytearray((tmp_path / POSITION_FILE).read_bytes())
    data[16] ^= 0x40  # the step
    (tmp_path / POSITION_FILE).write_bytes(bytes(data))
    assert position_file.read(tmp_path) is None


@pytest.mark.parametrize(
    ("epoch", "step", "lost"),
    [(-1, 10, 0), (2, -4, 0), (7, 100, 0), (1, 1116254594818908547, 0), (2, 1, 0), (1, 30, -9)],
)
def test_an_implausible_record_gives_no_lost_steps(
    tmp_path: Path, epoch: int, step: int, lost: int
) -> None:
    _recorded(tmp_path, epoch, step, lost=lost)
    assert _account(tmp_path, 0) == LostWork(lost=0, total=0)


def test_a_record_of_the_previous_release_still_counts(tmp_path: Path) -> None:
    """24 bytes (attempt, epoch, step) without a checksum: read, checked for sense."""
    (tmp_path / POSITION_FILE).write_bytes(struct.pack("<qqq", 1, 1, 40))
    assert position_file.read(tmp_path) == Reached(attempt=1, epoch=1, step=40)
    assert _account(tmp_path, 23) == LostWork(lost=17, total=17)


def test_a_new_record_over_an_old_file_is_checksummed(tmp_path: Path) -> None:
    (tmp_path / POSITION_FILE).write_bytes(struct.pack("<qqq", 1, 1, 40))
    _recorded(tmp_path, 1, 41, attempt=2)
    assert position_file.read(tmp_path) == Reached(attempt=2, epoch=1, step=41)
