"""The checkpoint store: atomic publish, checksums, fallback, retention."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import (
    STATE_FILE,
    CheckpointStore,
    CorruptCheckpoint,
    Snapshot,
    parse_name,
)


def snap(
    epoch: int, step: int, *, step_in_epoch: int = 0, best_epoch: int | None = None
) -> Snapshot:
    rng = np.random.default_rng(step)
    return Snapshot(
        groups={
            "model": [("w", rng.normal(size=(4, 3)).astype("float32")), ("s", np.array([7, 0]))],
            "optimizer": [("iteration", np.array(step, dtype="int64"))],
            "metrics": [],
        },
        meta={
            "epoch": epoch,
            "step": step,
            "step_in_epoch": step_in_epoch,
            "trigger": "epoch",
            "early_stopping": {"best_epoch": best_epoch},
        },
    )


def test_write_then_load_round_trips_every_array(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    original = snap(2, 40)
    published = store.write(original)
    assert published.name == contract.checkpoint_name(2, 40)
    assert published.nbytes > original.nbytes
    loaded = store.load(published.name)
    for group, arrays in original.groups.items():
        for (name, a), (name2, b) in zip(arrays, loaded.groups[group], strict=True):
            assert name == name2
            assert a.dtype == b.dtype
            assert a.shape == b.shape
            assert a.tobytes() == b.tobytes()
    manifest = loaded.manifest
    assert manifest["format_version"] == contract.MANIFEST_FORMAT_VERSION
    assert (manifest["epoch"], manifest["step"]) == (2, 40)
    assert set(manifest["files"]) == {STATE_FILE}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(contract.TEMP_PREFIX)]


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-manifest", "bad-json", "version"])
def test_corrupt_newest_is_skipped_for_the_one_before(tmp_path: Path, damage: str) -> None:
    store = CheckpointStore(tmp_path)
    store.write(snap(1, 10))
    newest = store.write(snap(2, 20)).path
    state = newest / STATE_FILE
    manifest = newest / contract.MANIFEST_NAME
    if damage == "flip":
        data = bytearray(state.read_bytes())
        data[3] ^= 1
        state.write_bytes(bytes(data))
    elif damage == "truncate":
        state.write_bytes(state.read_bytes()[:-5])
    elif damage == "no-manifest":
        manifest.unlink()
    elif damage == "bad-json":
        manifest.write_text("{")
    else:
        doc = json.loads(manifest.read_text())
        doc["format_version"] = 99
        manifest.write_text(json.dumps(doc))
    with pytest.raises(CorruptCheckpoint):
        store.verify(newest.name)
    loaded, skipped = CheckpointStore(tmp_path).latest_valid()
    assert loaded is not None
    assert loaded.name == contract.checkpoint_name(1, 10)
    assert [name for name, _ in skipped] == [newest.name]


def test_manifest_records_the_crc32_and_size_of_the_state_file(tmp_path: Path) -> None:
    published = CheckpointStore(tmp_path).write(snap(1, 10))
    data = (published.path / STATE_FILE).read_bytes()
    manifest = json.loads((published.path / contract.MANIFEST_NAME).read_text())
    assert manifest["files"][STATE_FILE] == {
        "crc32": f"{zlib.crc32(data):08x}",
        "bytes": len(data),
    }


def _as_format_1(folder: Path, *, sha256: str | None = None) -> None:
    """Rewrite a checkpoint's manifest as format 1 wrote it (a SHA-256 per file)."""
    manifest_path = folder / contract.MANIFEST_NAME
    doc = json.loads(manifest_path.read_text())
    data = (folder / STATE_FILE).read_bytes()
    doc["format_version"] = 1
    doc["files"] = {
        STATE_FILE: {"sha256": sha256 or hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    }
    manifest_path.write_text(json.dumps(doc))


def test_format_1_checkpoints_with_sha256_still_load(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    original = snap(3, 30)
    published = store.write(original)
    _as_format_1(published.path)
    loaded, skipped = CheckpointStore(tmp_path).latest_valid()
    assert skipped == []
    assert loaded is not None
    assert loaded.manifest["format_version"] == 1
    assert loaded.groups["model"][0][1].tobytes() == original.groups["model"][0][1].tobytes()


def test_format_1_checkpoint_with_a_wrong_sha256_is_skipped(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.write(snap(1, 10))
    newest = store.write(snap(2, 20)).path
    _as_format_1(newest, sha256="0" * 64)
    with pytest.raises(CorruptCheckpoint, match="sha256 mismatch"):
        store.verify(newest.name)
    loaded, _ = CheckpointStore(tmp_path).latest_valid()
    assert loaded is not None
    assert loaded.name == contract.checkpoint_name(1, 10)


def test_unfinished_writes_are_never_read_and_are_cleaned(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.write(snap(1, 10))
    half = tmp_path / f"{contract.TEMP_PREFIX}{contract.checkpoint_name(2, 20)}-dead"
    half.mkdir()
    (half / STATE_FILE).write_bytes(b"partial")
    loaded, skipped = store.latest_valid()
    assert loaded is not None
    assert loaded.name == contract.checkpoint_name(1, 10)
    assert skipped == []
    assert store.remove_unfinished() == [half.name]
    assert not half.exists()


def test_keeps_newest_n_plus_best(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for epoch in range(1, 7):
        published = store.write(snap(epoch, epoch * 10))
        best = store.find_epoch_end(1)  # epoch index 1 = the checkpoint after 2 epochs
        store.prune(published.name, best)
    assert store.names() == [
        contract.checkpoint_name(2, 20),
        contract.checkpoint_name(5, 50),
        contract.checkpoint_name(6, 60),
    ]


def test_never_deletes_the_only_valid_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=1)
    valid = store.write(snap(1, 10))
    # Newer ones exist but are corrupt (e.g. a bad disk): the valid one stays.
    for epoch in (2, 3):
        path = store.write(snap(epoch, epoch * 10)).path
        (path / STATE_FILE).write_bytes(b"garbage")
    loaded, _ = store.latest_valid()
    assert loaded is not None
    assert loaded.name == valid.name
    store.prune(valid.name, None)
    assert valid.name in store.names()


def test_mid_epoch_checkpoints_are_not_taken_for_epoch_ends(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.write(snap(3, 35, step_in_epoch=5))
    assert store.find_epoch_end(2) is None
    store.write(snap(3, 30))
    assert store.find_epoch_end(2) == contract.checkpoint_name(3, 30)


def test_names_parse_and_others_are_ignored(tmp_path: Path) -> None:
    assert parse_name(contract.checkpoint_name(12, 345)) == (12, 345)
    assert parse_name("ckpt-1-2") is None
    (tmp_path / "notes").mkdir()
    assert CheckpointStore(tmp_path).names() == []


def test_keep_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        CheckpointStore(tmp_path, keep=0)


def test_load_reads_the_state_file_once_into_one_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restore at disk speed: one pass checksums and reads; the arrays are views, not copies."""
    from rekindle_trainer.checkpoint import verified_read

    store = CheckpointStore(tmp_path)
    published = store.write(snap(2, 40))
    opened: list[str] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == STATE_FILE:
            opened.append(str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", counting_open)
    monkeypatch.setattr(verified_read, "CHUNK", 16)  # many chunks: the checksum spans them
    loaded = store.load(published.name)
    assert len(opened) == 1
    w, s = (a for _, a in loaded.groups["model"])
    assert w.base is s.base  # both views of the one buffer read
    assert all(a.flags.aligned for arrays in loaded.groups.values() for _, a in arrays)
    assert w.tobytes() == snap(2, 40).groups["model"][0][1].tobytes()


def test_a_misaligned_array_is_copied_aligned(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    odd = Snapshot(
        groups={"model": [("b", np.array([1, 2, 3], dtype="int8")), ("w", np.arange(3.0))]},
        meta={"epoch": 1, "step": 1, "step_in_epoch": 0, "trigger": "epoch"},
    )
    loaded = store.load(store.write(odd).name)
    w = loaded.groups["model"][1][1]
    assert w.flags.aligned
    assert w.tolist() == [0.0, 1.0, 2.0]


def test_a_state_file_that_changes_size_while_read_is_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rekindle_trainer.checkpoint import store as store_module
    from rekindle_trainer.checkpoint.verified_read import read_verified

    store = CheckpointStore(tmp_path)
    published = store.write(snap(2, 40))
    real_read = read_verified

    def shrinking(path: Path, size: int, **kwargs: bool) -> tuple[str, np.ndarray]:
        path.write_bytes(path.read_bytes()[:-8])  # truncated after the size check
        return real_read(path, size, **kwargs)

    monkeypatch.setattr(store_module, "read_verified", shrinking)
    with pytest.raises(CorruptCheckpoint, match=r"unreadable .*expected"):
        store.load(published.name)
