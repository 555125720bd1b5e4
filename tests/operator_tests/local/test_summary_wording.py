"""The run's summary counts in English: "1 epoch"."""

from __future__ import annotations

from rekindle_operator.local import summary


def test_the_summary_says_1_epoch() -> None:
    lines = summary.summary_lines(
        epoch_budget=1, status={"phase": "Succeeded", "currentEpoch": 1}, stats=summary.RunStats()
    )
    assert not any("1 epochs" in line for line in lines), lines


def test_the_goodput_line_names_the_share_and_the_largest_causes_first() -> None:
    goodput = {
        "productiveSeconds": 150.0,
        "badputSeconds": {"startup": 41.2, "checkpointStall": 8.8, "restore": 0.0},
    }
    line = summary.goodput_line(goodput)
    assert line == "75% of 3m20s productive; badput: startup 41s, checkpoint stall 8.8s"
    lines = summary.summary_lines(
        epoch_budget=3, status={"phase": "Succeeded", "goodput": goodput}, stats=summary.RunStats()
    )
    assert any(row.split() == ["goodput", *line.split()] for row in lines), lines


def test_no_goodput_line_before_any_time_was_attributed() -> None:
    assert summary.goodput_line(None) is None
    assert summary.goodput_line({"productiveSeconds": 0.0, "badputSeconds": {}}) is None
