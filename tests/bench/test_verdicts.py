"""The verdicts on benchmark goals, by table: met, not met, not resolved, not measured."""

from __future__ import annotations

import pytest

from bench import verdicts

RESOLVED_GOAL = "not resolved (noise floor 6.9 % wider than goal 2 %)"


@pytest.mark.parametrize(
    ("overhead_percent", "noise_floor", "goal", "expected"),
    [
        # A negative median inside an A/A spread wider than the goal shows nothing.
        (-2.4, 6.9, 2.0, RESOLVED_GOAL),
        (-3.2, 6.6, 2.0, "not resolved (noise floor 6.6 % wider than goal 2 %)"),
        # Even a median far beyond the goal is not "not met" while the noise is wider.
        (9.0, 13.0, 2.0, "not resolved (noise floor 13 % wider than goal 2 %)"),
        # The spread within the goal: the median decides.
        (1.5, 1.0, 2.0, "met"),
        (-0.5, 1.9, 2.0, "met"),
        (2.0, 2.0, 2.0, "met"),  # both on the goal: within it
        (3.6, 0.5, 2.0, "not met"),
        (2.01, 1.0, 2.0, "not met"),
    ],
)
def test_overhead(overhead_percent: float, noise_floor: float, goal: float, expected: str) -> None:
    assert verdicts.overhead(overhead_percent, noise_floor, goal, rounds=3) == expected


@pytest.mark.parametrize(("overhead_percent", "noise_floor"), [(13.69, 0.26), (-1.0, 0.1)])
def test_one_round_of_the_control_is_no_spread(overhead_percent: float, noise_floor: float) -> None:
    assert verdicts.overhead(overhead_percent, noise_floor, 2.0, rounds=1) == (
        "not resolved (1 round(s): the A/A control needs 2 or more to show a spread)"
    )


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ([1.0], 0.0),
        ([1.018, 0.996, 1.069], 6.9),  # the widest deviation, above 1
        ([0.980, 0.934, 1.005], 6.6),  # the widest deviation, below 1
        ([0.74, 1.40], 40.0),
    ],
)
def test_noise_floor_is_the_widest_deviation_from_one(ratios: list[float], expected: float) -> None:
    assert verdicts.noise_floor_percent(ratios) == expected


def test_noise_floor_needs_a_round() -> None:
    with pytest.raises(ValueError, match="control_ratios: empty"):
        verdicts.noise_floor_percent([])


@pytest.mark.parametrize(
    ("judge", "measured", "goal", "expected"),
    [
        (verdicts.at_most, 1.21, 2.0, "met"),
        (verdicts.at_most, 2.0, 2.0, "met"),
        (verdicts.at_most, 4.5, 2.0, "not met"),
        (verdicts.below, 27.5, 250, "met"),
        (verdicts.below, 250, 250, "not met"),
        (verdicts.below, 310.0, 250, "not met"),
    ],
)
def test_limits(judge: object, measured: float, goal: float, expected: str) -> None:
    assert callable(judge)
    assert judge(measured, goal) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "1.0", True])
def test_a_figure_that_is_not_a_number_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="measured: expected a finite number"):
        verdicts.at_most(bad, 2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("requests", "window", "longest_requeue", "expected"),
    [
        # Every job Running: no requeue due, any window shows polling if there is any.
        (0, 5.0, None, "met"),
        (3, 30.0, None, "not met"),
        # A pending-timeout requeue 600 s away: a 30 s window with no request proves nothing.
        (
            0,
            30.0,
            600.0,
            "not resolved (idle window 30 s not longer than the operator's longest requeue, 600 s)",
        ),
        (
            0,
            600.0,
            600.0,
            "not resolved (idle window 600 s not longer than the operator's "
            "longest requeue, 600 s)",
        ),
        # A window longer than the requeue: the requeue's requests would be counted.
        (0, 660.0, 600.0, "met"),
        (20, 660.0, 600.0, "not met"),
    ],
)
def test_idle_requests(
    requests: int, window: float, longest_requeue: float | None, expected: str
) -> None:
    assert verdicts.idle_requests(requests, window, longest_requeue) == expected


@pytest.mark.parametrize(
    ("measured", "jobs", "expected"),
    [
        ({200: 27.5, 1000: 31.0}, 200, "met"),
        ({200: 260.0}, 200, "not met"),
        ({20: 15.5}, 200, "not measured (no run at 200 jobs; runs: 20)"),
        ({}, 200, "not measured (no run at 200 jobs; runs: none)"),
    ],
)
def test_at_jobs_judges_the_run_at_that_count_only(
    measured: dict[int, float], jobs: int, expected: str
) -> None:
    assert verdicts.at_jobs(measured, jobs, 250.0) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (["met", "met"], "met"),
        (["met", "not met", "not resolved (x)"], "not met"),
        (["met", "not resolved (x)", "not measured (y)"], "not resolved (x)"),
    ],
)
def test_combined(parts: list[str], expected: str) -> None:
    assert verdicts.combined(parts) == expected


def test_combined_needs_a_verdict() -> None:
    with pytest.raises(ValueError, match="verdicts: empty"):
        verdicts.combined([])


@pytest.mark.parametrize(
    ("measured", "floor", "expected"),
    [
        (27.5, 3.0, "met"),
        (27.5, 2590.9, "met"),  # noise only adds to a latency: under the goal is under it
        (310.0, 20.0, "not met"),
        (871.3, 2590.9, "not resolved (the emulator's own p99 2590.9 ms reaches the goal 250 ms)"),
        (250.0, 250.0, "not resolved (the emulator's own p99 250 ms reaches the goal 250 ms)"),
    ],
)
def test_latency_below(measured: float, floor: float, expected: str) -> None:
    assert verdicts.latency_below(measured, 250.0, floor) == expected


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ([0.9, 0.7, 0.85], "met"),
        ([0.8, 0.8], "met"),  # on the goal
        ([0.5, 0.79, 0.95], "not met"),
        ([0.95], "not resolved (1 repetition(s): a ratio needs 2 or more)"),
    ],
)
def test_ratio_at_least(ratios: list[float], expected: str) -> None:
    assert verdicts.ratio_at_least(ratios, 0.8) == expected


@pytest.mark.parametrize(
    ("ours", "theirs", "floor", "rounds", "expected"),
    [
        # Issue #19's earlier figures: ModelCheckpoint +9.7 %, BackupAndRestore +3.4 %.
        (1.0, 9.7, 3.0, 3, "met"),
        (1.0, 3.4, 3.0, 3, "not resolved (difference 2.4 points within the noise floor 3 %)"),
        (6.0, 1.0, 3.0, 3, "not met"),
        (
            -1.05,
            9.7,
            13.25,
            3,
            "not resolved (difference 10.75 points within the noise floor 13.25 %)",
        ),
        (
            5.08,
            -81.48,
            2.6,
            3,
            "not resolved (the peer's overhead -81.48 % is below minus the noise floor 2.6 %: "
            "its baseline segments ran slow)",
        ),
        (
            -9.0,
            3.0,
            2.6,
            3,
            "not resolved (ours overhead -9 % is below minus the noise floor 2.6 %: "
            "its baseline segments ran slow)",
        ),
        (
            1.0,
            9.7,
            0.5,
            1,
            "not resolved (1 round(s): the A/A control needs 2 or more to show a spread)",
        ),
    ],
)
def test_ahead_of(ours: float, theirs: float, floor: float, rounds: int, expected: str) -> None:
    assert verdicts.ahead_of(ours, theirs, floor, rounds=rounds) == expected
