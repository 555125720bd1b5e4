"""The disk-speed benchmark: its throughput figures and verdicts, and a smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import disk_speed


def test_ratios_are_plain_seconds_over_rekindle_seconds_per_repetition() -> None:
    figures = disk_speed.throughput_figures(1_000_000, [0.5, 1.0, 0.4], [1.0, 1.0, 0.5])
    assert figures["ratios"] == [0.5, 1.0, 0.8]
    assert figures["ratio"] == {"median": 0.8, "min": 0.5, "max": 1.0}
    assert figures["plain_bytes_per_second"]["median"] == 2_000_000
    assert figures["rekindle_bytes_per_second"]["max"] == 2_000_000


def test_each_repetition_needs_both_sides() -> None:
    with pytest.raises(ValueError, match="one figure each per repetition"):
        disk_speed.throughput_figures(1, [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        disk_speed.throughput_figures(1, [], [])


def test_the_model_is_sized_to_the_state_asked_for() -> None:
    layers = disk_speed.layer_sizes(2.0)
    state = len(layers) * 4096 * 4097 * disk_speed.STATE_BYTES_PER_PARAMETER
    assert 1.8e9 < state < 2.2e9
    assert disk_speed.layer_sizes(0.001) == [4096]  # one layer at least
    with pytest.raises(ValueError, match="gigabytes and width must be positive"):
        disk_speed.layer_sizes(0)


def test_plain_write_then_read_moves_every_byte(tmp_path: Path) -> None:
    import numpy as np

    arrays = [np.arange(10, dtype=np.float32), np.ones((3, 3), dtype=np.int64)]
    written = disk_speed.plain_write(tmp_path / "state.bin", arrays)
    assert written == 40 + 72
    assert disk_speed.plain_read(tmp_path) == written


def test_quick_run_writes_its_figures_and_verdicts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A few MB, one repetition: the run completes and judges nothing on one draw."""
    from bench import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert disk_speed.main(["--quick", "--dir", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "disk_speed_quick.json").read_text())
    assert doc["state_bytes"] > 0
    for key in ("restore_read_cold", "restore_read_warm"):
        assert doc[key]["verdict"].startswith("not resolved (1 repetition(s)")
        assert doc[key]["goal_ratio"] == 0.8
    assert doc["save"]["ratio"]["median"] > 0
    assert doc["save_on_calling_thread"]["ratio"]["median"] > 0
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # nothing left behind


def test_a_second_repetition_runs_the_sides_in_the_other_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two repetitions: every side in both orders, and the ratios are judged."""
    from bench import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert disk_speed.main(["--quick", "--reps", "2", "--dir", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "disk_speed_quick.json").read_text())
    assert doc["repetitions"] == 2
    for key in ("save", "save_on_calling_thread", "restore_read_cold", "restore_read_warm"):
        assert len(doc[key]["ratios"]) == 2
    assert doc["restore_read_cold"]["verdict"] in {"met", "not met"}
