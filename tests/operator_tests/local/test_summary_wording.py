"""The run's summary counts in English: "1 epoch"."""

from __future__ import annotations

from rekindle_operator.local import summary


def test_the_summary_says_1_epoch() -> None:
    lines = summary.summary_lines(
        epoch_budget=1, status={"phase": "Succeeded", "currentEpoch": 1}, stats=summary.RunStats()
    )
    assert not any("1 epochs" in line for line in lines), lines
