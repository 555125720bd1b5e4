"""Corrupt checkpoints: moved aside, never counted, named or kept in place of a good save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import (
    STATE_FILE,
    CheckpointStore,
    Snapshot,
    no_valid_checkpoint_line,
)
from tests.trainer.checkpoint.test_store import snap


def _damage(folder: Path) -> None:
    """Flip one byte of the state file (bit rot): the manifest no longer matches."""
    state = folder / STATE_FILE
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))


def _retrained(epoch: int, step: int) -> Snapshot:
    """A save of the same position as ``snap(epoch, step)`` with other weights."""
    other = snap(epoch, step)
    other.groups["model"][0] = ("w", np.full((4, 3), 0.5, dtype="float32"))
    return other


def _aside(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(contract.QUARANTINE_PREFIX))


def _resumed_from(root: Path, expected: str) -> CheckpointStore:
    """A keep-1 store of a new attempt, after its fallback to ``expected``."""
    store = CheckpointStore(root, keep=1)
    loaded, _ = store.latest_valid()
    assert loaded is not None
    assert loaded.name == expected
    return store


def _assert_only_valid(root: Path, name: str) -> None:
    """``name`` is all that is listed, and the next attempt takes it without skipping any."""
    assert CheckpointStore(root).names() == [name]
    fresh, skipped = CheckpointStore(root, keep=1).latest_valid()
    assert fresh is not None
    assert fresh.name == name
    assert skipped == []


def test_a_save_replaces_a_corrupt_folder_of_the_same_name(tmp_path: Path) -> None:
    first = CheckpointStore(tmp_path)
    first.write(snap(1, 10))
    newest = first.write(snap(2, 20)).path
    _damage(newest)
    # The next attempt falls back to the one before, re-trains and saves the same position.
    store = CheckpointStore(tmp_path)
    loaded, skipped = store.latest_valid()
    assert loaded is not None
    assert loaded.name == contract.checkpoint_name(1, 10)
    assert [name for name, _ in skipped] == [newest.name]
    again = _retrained(2, 20)
    published = store.write(again)
    assert published.name == newest.name
    reloaded = CheckpointStore(tmp_path).load(newest.name)
    assert reloaded.groups["model"][0][1].tobytes() == again.groups["model"][0][1].tobytes()
    (aside,) = _aside(tmp_path)
    assert aside.startswith(f"{contract.QUARANTINE_PREFIX}{newest.name}-")
    fresh, skipped = CheckpointStore(tmp_path).latest_valid()
    assert fresh is not None
    assert fresh.name == newest.name
    assert skipped == []


def test_a_save_never_yields_to_an_unverified_corrupt_folder(tmp_path: Path) -> None:
    """No reader marked it: the writer verifies what is there before keeping it."""
    store = CheckpointStore(tmp_path)
    _damage(store.write(snap(2, 20)).path)
    seen: list[tuple[str, str]] = []
    store = CheckpointStore(tmp_path, on_corrupt=lambda name, why: seen.append((name, why)))
    published = store.write(_retrained(2, 20))
    assert store.load(published.name).groups["model"][0][1][0, 0] == np.float32(0.5)
    assert [name for name, _ in seen] == [published.name]
    assert "crc32 mismatch" in seen[0][1]
    assert len(_aside(tmp_path)) == 1


def test_a_verified_identical_folder_is_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    published = store.write(snap(2, 20))
    manifest = (published.path / contract.MANIFEST_NAME).read_text()
    again = store.write(snap(2, 20))  # e.g. SIGTERM right after a save: the same state
    assert again.path == published.path
    assert (published.path / contract.MANIFEST_NAME).read_text() == manifest
    assert _aside(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == [published.name]


def test_a_valid_but_different_folder_is_replaced(tmp_path: Path) -> None:
    """The run goes on from the new state: the save of the same position must be that one."""
    store = CheckpointStore(tmp_path)
    store.write(snap(2, 20))
    again = _retrained(2, 20)
    published = store.write(again)
    loaded = store.load(published.name)
    assert loaded.groups["model"][0][1].tobytes() == again.groups["model"][0][1].tobytes()
    assert _aside(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == [published.name]


@pytest.mark.parametrize(
    ("written", "saved"),
    [
        # The issue: keep 1, newest corrupted, resume from the one before, re-train to the
        # same position.
        ([(1, 10), (2, 20), (3, 30)], _retrained(3, 30)),
        # A corrupt newer one the new saves have not reached: never listed nor counted.
        ([(2, 20), (4, 40)], snap(3, 30)),
    ],
)
def test_with_keep_1_the_newest_corrupt_gives_way_to_the_next_valid_save(
    tmp_path: Path, written: list[tuple[int, int]], saved: Snapshot
) -> None:
    first = CheckpointStore(tmp_path, keep=5)
    for epoch, step in written:
        first.write(snap(epoch, step))
    _damage(tmp_path / contract.checkpoint_name(*written[-1]))
    store = _resumed_from(tmp_path, contract.checkpoint_name(*written[-2]))
    assert store.names() == [contract.checkpoint_name(*w) for w in written[:-1]]
    published = store.write(saved)
    store.prune(published.name, None)
    _assert_only_valid(tmp_path, published.name)


def test_pruning_never_deletes_the_only_valid_checkpoint_for_corrupt_ones(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    valid = store.write(snap(1, 10))
    for epoch in (2, 3):
        _damage(store.write(snap(epoch, epoch * 10)).path)
    store.prune(valid.name, None)  # nobody has read them yet: they are unverified
    loaded, skipped = CheckpointStore(tmp_path, keep=2).latest_valid()
    assert loaded is not None
    assert loaded.name == valid.name
    assert len(skipped) == 2


def test_moved_aside_folders_are_never_read_and_go_once_older_than_every_kept(
    tmp_path: Path,
) -> None:
    store = CheckpointStore(tmp_path, keep=1)
    store.write(snap(1, 10))
    _damage(store.write(snap(2, 20)).path)
    reader = CheckpointStore(tmp_path, keep=1)
    reader.latest_valid()
    (aside,) = _aside(tmp_path)
    assert reader.names() == [contract.checkpoint_name(1, 10)]
    # Still newer than every kept checkpoint: left for inspection.
    reader.prune(contract.checkpoint_name(1, 10), None)
    assert _aside(tmp_path) == [aside]
    for epoch in (3, 4):
        reader.prune(reader.write(snap(epoch, epoch * 10)).name, None)
    assert _aside(tmp_path) == []
    assert reader.names() == [contract.checkpoint_name(4, 40)]


def test_find_epoch_end_skips_a_checkpoint_whose_manifest_fails(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    published = store.write(snap(3, 30))
    manifest = published.path / contract.MANIFEST_NAME
    doc = json.loads(manifest.read_text())
    doc["logs"] = {"loss": 0.1}  # any edit breaks the manifest's own checksum
    manifest.write_text(json.dumps(doc))
    assert store.find_epoch_end(2) is None


def test_load_epoch_end_gives_none_for_a_corrupt_best(tmp_path: Path) -> None:
    """restoreBestWeights must keep the last weights, never crash on a corrupt best."""
    seen: list[str] = []
    store = CheckpointStore(tmp_path, on_corrupt=lambda name, why: seen.append(name))
    store.write(snap(2, 20))
    store.write(snap(3, 30))
    assert store.load_epoch_end(1) is not None
    _damage(tmp_path / contract.checkpoint_name(2, 20))
    assert store.load_epoch_end(1) is None
    assert seen == [contract.checkpoint_name(2, 20)]
    assert store.names() == [contract.checkpoint_name(3, 30)]


def test_no_valid_checkpoint_is_said_in_one_line(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    _damage(store.write(snap(3, 30)).path)
    loaded, skipped = CheckpointStore(tmp_path).latest_valid()
    assert loaded is None
    line = no_valid_checkpoint_line(tmp_path, skipped)
    assert "\n" not in line
    assert line.startswith(f"no valid checkpoint in {tmp_path}: ")
    assert f"{contract.checkpoint_name(3, 30)} corrupt (" in line
    assert "crc32 mismatch" in line
    assert line.endswith("; starting from epoch 0")


@pytest.mark.parametrize("count", [1, 12])
def test_the_no_valid_line_stays_short(tmp_path: Path, count: int) -> None:
    skipped = [
        (contract.checkpoint_name(i, i), f"{contract.checkpoint_name(i, i)}: " + "x" * 400)
        for i in range(count)
    ]
    line = no_valid_checkpoint_line(tmp_path, skipped)
    assert len(line) < 700
    assert line.endswith("; starting from epoch 0")
    if count > 3:
        assert f"and {count - 3} more" in line
