"""The one-pass read of a checkpoint file with its checksum taken on a second thread."""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rekindle_trainer.checkpoint import verified_read
from rekindle_trainer.checkpoint.manifest import crc_hex
from rekindle_trainer.checkpoint.verified_read import read_verified

CHUNK = 1024  # the module's chunk, shrunk so that a file of a few KB spans many


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verified_read, "CHUNK", CHUNK)


def _file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "state.bin"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK + 3])
@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("sha256", [False, True])
def test_checksum_and_bytes_match_the_file(
    tmp_path: Path, size: int, keep: bool, sha256: bool
) -> None:
    path, data = _file(tmp_path, size)
    checksum, buffer = read_verified(path, size, sha256=sha256, keep=keep)
    expected = hashlib.sha256(data).hexdigest() if sha256 else crc_hex(zlib.crc32(data))
    assert checksum == expected
    if keep:
        assert buffer.tobytes() == data


@pytest.mark.parametrize("keep", [True, False])
def test_a_file_of_another_size_is_an_os_error(tmp_path: Path, keep: bool) -> None:
    path, _ = _file(tmp_path, 5 * CHUNK)
    with pytest.raises(OSError, match="expected"):
        read_verified(path, 5 * CHUNK + 8, sha256=False, keep=keep)


class _Recorded:
    """zlib with a slow ``crc32`` that records the thread it ran on."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.threads: set[str] = set()

    def crc32(self, data: Any, value: int = 0) -> int:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return zlib.crc32(data, value)


@pytest.mark.parametrize("keep", [True, False])
def test_the_checksum_of_a_large_file_runs_beside_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    """A slow checksum off the reading thread; reused buffers wait for it, never overwritten."""
    recorded = _Recorded(delay=0.01)
    monkeypatch.setattr(verified_read, "zlib", recorded)
    path, data = _file(tmp_path, 20 * CHUNK + 5)
    checksum, _ = read_verified(path, len(data), sha256=False, keep=keep)
    assert checksum == crc_hex(zlib.crc32(data)), "every chunk checksummed before reuse"
    assert recorded.threads == {"rekindle-checksum"}


def test_a_single_chunk_is_checksummed_on_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = _Recorded(delay=0.0)
    monkeypatch.setattr(verified_read, "zlib", recorded)
    path, _ = _file(tmp_path, CHUNK)
    read_verified(path, CHUNK, sha256=False, keep=True)
    assert recorded.threads == {threading.current_thread().name}


def test_a_failed_checksum_is_raised_and_its_thread_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def crc32(self, data: Any, value: int = 0) -> int:
            raise MemoryError("no room")

    monkeypatch.setattr(verified_read, "zlib", Broken())
    path, data = _file(tmp_path, 4 * CHUNK)
    before = threading.active_count()
    with pytest.raises(MemoryError):
        read_verified(path, len(data), sha256=False, keep=False)
    assert threading.active_count() == before
