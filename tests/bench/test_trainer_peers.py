"""The Keras peers beside Rekindle in the checkpoint-overhead benchmark (issue #19, point 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import trainer


def _figures(wall: float, cpu: float) -> dict[str, Any]:
    spread = {"median": 1.0, "min": 1.0, "max": 1.0}
    return {
        "wall_ratio_to_no_saves": spread,
        "cpu_ratio_to_no_saves": spread,
        "wall_overhead_percent": wall,
        "cpu_overhead_percent": cpu,
        "stall_seconds_per_save": None,
    }


def test_each_variant_is_judged_against_its_own_trainers_baseline() -> None:
    variants = trainer._variants(40)
    assert list(variants) == [
        "no saves",
        "no saves (A/A control)",
        "every epoch",
        "every 10 steps",
        trainer.KERAS_NONE,
        trainer.KERAS_MODEL_CHECKPOINT,
        trainer.KERAS_BACKUP_AND_RESTORE,
    ]
    bases = {name: trainer.baseline_of(spec) for name, spec in variants.items()}
    assert bases["every epoch"] == bases["no saves (A/A control)"] == "no saves"
    assert bases[trainer.KERAS_MODEL_CHECKPOINT] == trainer.KERAS_NONE
    assert bases[trainer.KERAS_BACKUP_AND_RESTORE] == trainer.KERAS_NONE
    assert trainer.KERAS_NONE not in trainer._variants(40, peers=False)


def test_the_peer_table_puts_rekindle_beside_each_peer_with_verdicts() -> None:
    figures = {
        trainer.REKINDLE_EVERY_EPOCH: _figures(wall=1.0, cpu=0.5),
        trainer.KERAS_MODEL_CHECKPOINT: _figures(wall=9.7, cpu=8.0),
        trainer.KERAS_BACKUP_AND_RESTORE: _figures(wall=3.4, cpu=-2.0),
    }
    rows = trainer.peer_comparison(figures, wall_floor=3.0, cpu_floor=3.0, rounds=3)
    assert [r["variant"] for r in rows] == [
        trainer.REKINDLE_EVERY_EPOCH,
        trainer.KERAS_MODEL_CHECKPOINT,
        trainer.KERAS_BACKUP_AND_RESTORE,
    ]
    assert "rekindle_ahead_wall" not in rows[0]
    assert (rows[1]["rekindle_ahead_wall"], rows[1]["rekindle_ahead_cpu"]) == ("met", "met")
    assert rows[2]["rekindle_ahead_wall"].startswith("not resolved (difference 2.4 points")
    assert rows[2]["rekindle_ahead_cpu"].startswith("not resolved (difference -2.5 points")
    assert rows[1]["baseline"] == trainer.KERAS_NONE


def test_an_unknown_peer_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keras: unknown peer 'orbax'"):
        trainer._keras_callback("orbax", tmp_path)


def test_smoke_run_of_every_variant_and_peer() -> None:
    """A tiny model, one round: every variant runs, the peers' saves are timed, nothing judged."""
    overhead = trainer.checkpoint_overhead(quick=True, epoch_seconds=0.01, units=8)
    peers = {r["variant"]: r for r in overhead["peers"]}
    assert set(peers) == {
        trainer.REKINDLE_EVERY_EPOCH,
        trainer.KERAS_MODEL_CHECKPOINT,
        trainer.KERAS_BACKUP_AND_RESTORE,
    }
    for name in (trainer.KERAS_MODEL_CHECKPOINT, trainer.KERAS_BACKUP_AND_RESTORE):
        assert peers[name]["stall_seconds_per_save"]["median"] > 0
        assert peers[name]["rekindle_ahead_wall"].startswith("not resolved (1 round(s)")
    assert overhead["variants"][trainer.KERAS_NONE]["wall_ratio_to_no_saves"]["median"] == 1.0
