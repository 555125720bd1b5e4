"""Issue 14's data-loss scenario, end to end: keep 1, the newest checkpoint corrupted.

The first attempt dies right after its last epoch's save; that save is then
damaged. The next attempt finds no valid checkpoint, says so, trains again from
epoch 0 and saves the same positions: its saves must replace the corrupt folder,
and ``restoreBestWeights`` must load a valid best, not crash on the corrupt one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import pytest

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import STATE_FILE, CheckpointStore
from rekindle_trainer.contract import Outcome, ProgressKind
from tests.trainer import helpers
from tests.trainer.training.test_resume import attempt

DOC = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 3,
    "batchSize": 64,
    "hyperparameters": {"units": 8},
    "checkpoint": {"everyEpochs": 1, "keep": 1, "keepBest": True},
    "earlyStopping": {"monitor": "val_loss", "patience": 5, "restoreBestWeights": True},
}


class CrashAtEpochEnd(keras.callbacks.Callback):  # type: ignore[misc]
    """Raises at the end of 0-based ``epoch``, after Rekindle's callback queued its save."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError(f"injected crash at the end of epoch {epoch + 1}")


@pytest.mark.slow
def test_a_corrupt_newest_checkpoint_is_replaced_and_never_restored(tmp_path: Path) -> None:
    first = attempt(tmp_path, DOC, callbacks=(CrashAtEpochEnd(2),))
    assert first.exit_code == 1
    root = tmp_path / "ckpt"
    newest = contract.checkpoint_name(3, 69)
    # val_loss improved every epoch: the best is the newest, the only one kept.
    assert CheckpointStore(root).names() == [newest]
    state = root / newest / STATE_FILE
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))

    second = attempt(tmp_path, DOC, number=2)
    message = second.message
    assert message is not None
    assert second.exit_code == 0, message.error
    assert message.outcome is Outcome.COMPLETED
    assert message.best_epoch == 3
    assert message.note == (
        f"no valid checkpoint in {root}: {newest} corrupt ({STATE_FILE}: crc32 mismatch); "
        "starting from epoch 0"
    )
    assert second.metrics.corrupt._value.get() == 1
    started = [e for e in helpers.progress(tmp_path) if e.kind is ProgressKind.STARTED]
    assert started[-1].data["note"] == message.note
    # The re-trained save took the corrupt folder's place; that one was moved aside.
    store = CheckpointStore(root)
    assert store.names() == [newest]
    assert message.checkpoint == newest
    best = store.load(newest)
    aside = [p.name for p in root.iterdir() if p.name.startswith(contract.QUARANTINE_PREFIX)]
    assert len(aside) == 1
    exported = keras.saving.load_model(root / "model.keras")
    for variable, (_, array) in zip(exported.variables, best.groups["model"], strict=True):
        if variable.name != "seed_generator_state":  # not part of a .keras file
            assert variable.numpy().tobytes() == array.tobytes(), variable.path
