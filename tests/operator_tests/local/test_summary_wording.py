"""The run's summary counts in English: "1 epoch"."""

from __future__ import annotations

from rekindle_operator.local import summary


def test_the_summary_says_1_epoch() -> None:
    lines = summary.summary_lines(
        epoch_budget=1, status={"phase": "Succeeded", "currentEpoch": 1}, stats=summary.RunStats()
    )
    assert not any("1 epochs" in line for line in lines), lines


def test_the_summary_says_what_is_left_of_the_failure_budget() -> None:
    budget = {"failuresUsed": 1, "failuresLeft": 2, "progressEpoch": 9, "resets": 1}
    status = {"phase": "Succeeded", "currentEpoch": 12, "restartBudget": budget}
    lines = summary.summary_lines(epoch_budget=20, status=status, stats=summary.RunStats())
    assert (
        "  retries left  2 of 3 failures (the budget started afresh 1 time after progress)" in lines
    ), lines


def test_without_a_failure_counted_there_is_no_retries_line() -> None:
    untouched = {"failuresUsed": 0, "failuresLeft": 3, "progressEpoch": 0, "resets": 0}
    for status in ({"phase": "Running"}, {"phase": "Running", "restartBudget": untouched}):
        lines = summary.summary_lines(epoch_budget=20, status=status, stats=summary.RunStats())
        assert not any("retries left" in line for line in lines), lines


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
