"""Every field read from a manifest is covered by a checksum and checked for sense."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.manifest import CHECKSUM_KEY
from rekindle_trainer.checkpoint.store import STATE_FILE, CheckpointStore, CorruptCheckpoint
from tests.trainer.checkpoint.test_store import snap

Edit = Callable[[dict[str, Any]], None]


def _written(tmp_path: Path, **meta: Any) -> Path:
    """Two checkpoints (epochs 1 and 2 of a 3-epoch budget); the path of the newest."""
    store = CheckpointStore(tmp_path)
    for epoch in (1, 2):
        shot = snap(epoch, epoch * 10, best_epoch=epoch - 1)
        shot.meta.update(
            {"epochs_budget": 3, "data": {"steps_per_epoch": 10}, "replicas": 1, **meta}
        )
        published = store.write(shot)
    return published.path


def _edit(folder: Path, edit: Edit, *, keep_checksum: bool = False) -> None:
    path = folder / contract.MANIFEST_NAME
    doc = json.loads(path.read_text())
    edit(doc)
    if not keep_checksum:
        doc.pop(CHECKSUM_KEY, None)
        doc["format_version"] = 2  # as the current release writes them: no manifest checksum
    path.write_text(json.dumps(doc))


def _as_format_2(doc: dict[str, Any]) -> None:
    del doc


def _set(key: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        doc[key] = value

    return edit


def _set_in(outer: str, key: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        doc[outer][key] = value

    return edit


def _first_array(key: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        doc["arrays"]["model"][0][key] = value

    return edit


def _file(key: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        doc["files"][STATE_FILE][key] = value

    return edit


def _rename_file(doc: dict[str, Any]) -> None:
    doc["files"] = {"../../outside": doc["files"][STATE_FILE], STATE_FILE: doc["files"][STATE_FILE]}


def _both(doc: dict[str, Any]) -> None:
    doc["epoch"] = 1e9
    doc["step"] = -5


def _consistent_far_epoch(doc: dict[str, Any]) -> None:
    doc["epoch"] = 10**9
    doc["name"] = contract.checkpoint_name(10**6, doc["step"])


def test_the_manifest_checksum_catches_any_edit(tmp_path: Path) -> None:
    newest = _written(tmp_path)
    _edit(newest, _both, keep_checksum=True)
    with pytest.raises(CorruptCheckpoint, match="manifest checksum mismatch"):
        CheckpointStore(tmp_path).verify(newest.name)


def test_a_manifest_without_its_checksum_at_format_3_is_corrupt(tmp_path: Path) -> None:
    newest = _written(tmp_path)
    path = newest / contract.MANIFEST_NAME
    doc = json.loads(path.read_text())
    assert doc["format_version"] == contract.MANIFEST_FORMAT_VERSION == 3
    del doc[CHECKSUM_KEY]
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptCheckpoint, match="no manifest checksum"):
        CheckpointStore(tmp_path).verify(newest.name)


def test_format_2_manifests_of_the_current_release_still_load(tmp_path: Path) -> None:
    newest = _written(tmp_path)
    _edit(newest, _as_format_2)
    loaded, skipped = CheckpointStore(tmp_path).latest_valid()
    assert skipped == []
    assert loaded is not None
    assert loaded.name == newest.name
    assert loaded.manifest["format_version"] == 2


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_both, "epoch"),
        (_set("step", -5), "step"),
        (_set("epoch", 10**9), "epoch"),
        (_consistent_far_epoch, "name"),
        (_set("epoch", True), "epoch"),
        (_set("step_in_epoch", 11), "step_in_epoch"),
        (_set("step_in_epoch", -1), "step_in_epoch"),
        (_set("step", 1), "step"),
        (_set("replicas", 0), "replicas"),
        (_set_in("data", "steps_per_epoch", 0), "steps_per_epoch"),
        (_set_in("early_stopping", "best_epoch", 7), "best_epoch"),
        (_set_in("early_stopping", "wait", -3), "wait"),
        (_set_in("early_stopping", "best", "low"), "best"),
        (_set("early_stopping", [1]), "early_stopping"),
        (_first_array("offset", 10**12), "offset"),
        (_first_array("offset", -8), "offset"),
        (_first_array("shape", [-1, 3]), "shape"),
        (_first_array("dtype", "|O"), "dtype"),
        (_first_array("dtype", "not-a-dtype"), "dtype"),
        (_file("bytes", -1), "bytes"),
        (_rename_file, "outside"),
    ],
)
def test_a_format_2_manifest_whose_fields_make_no_sense_is_skipped(
    tmp_path: Path, edit: Edit, reason: str
) -> None:
    newest = _written(tmp_path)
    _edit(newest, edit)
    with pytest.raises(CorruptCheckpoint, match=reason):
        CheckpointStore(tmp_path, epochs=3).verify(newest.name)
    seen: list[str] = []
    store = CheckpointStore(tmp_path, epochs=3, on_corrupt=lambda name, why: seen.append(why))
    loaded, skipped = store.latest_valid()
    assert loaded is not None
    assert loaded.name == contract.checkpoint_name(1, 10)
    assert [name for name, _ in skipped] == [newest.name]
    assert len(seen) == 1
    assert reason in seen[0]


def test_the_epoch_may_exceed_todays_budget_if_it_was_within_its_own(tmp_path: Path) -> None:
    """A user who lowers `epochs` keeps the checkpoints trained under the old budget."""
    newest = _written(tmp_path)
    loaded, skipped = CheckpointStore(tmp_path, epochs=1).latest_valid()
    assert skipped == []
    assert loaded is not None
    assert loaded.name == newest.name


def test_an_epoch_beyond_every_budget_is_corrupt(tmp_path: Path) -> None:
    newest = _written(tmp_path, epochs_budget=1)
    with pytest.raises(CorruptCheckpoint, match="epoch 2 is beyond the budget of 1"):
        CheckpointStore(tmp_path, epochs=1).verify(newest.name)
