"""The trainer benchmark writes verdicts computed from its figures (no TensorFlow needed)."""

from __future__ import annotations

from typing import Any

from bench import trainer


def _figures(cpu: float, wall: float) -> dict[str, Any]:
    return {"cpu_overhead_percent": cpu, "wall_overhead_percent": wall}


def test_a_negative_median_inside_a_wide_a_a_spread_is_not_resolved() -> None:
    # The quiet machine's run of docs/benchmarks.md: medians -3.2 % CPU, -2.4 % wall.
    measured = trainer.measured_overhead(
        _figures(-3.2, -2.4), _figures(-2.1, -1.8), [1.018, 0.996, 1.069], [0.980, 0.934, 1.005]
    )
    assert measured["a_a_wall_noise_floor_percent"] == 6.9
    assert measured["a_a_cpu_noise_floor_percent"] == 6.6
    assert measured["verdict_wall"] == "not resolved (noise floor 6.9 % wider than goal 2 %)"
    assert measured["verdict_cpu"] == "not resolved (noise floor 6.6 % wider than goal 2 %)"


def test_a_spread_within_the_goal_lets_the_median_decide() -> None:
    measured = trainer.measured_overhead(
        _figures(3.6, 1.2), _figures(0.1, 0.3), [1.003, 0.99], [1.01, 0.995]
    )
    assert (measured["verdict_cpu"], measured["verdict_wall"]) == ("not met", "met")


def test_a_quick_run_of_one_round_is_not_resolved() -> None:
    measured = trainer.measured_overhead(
        _figures(13.69, 25.01), _figures(-0.26, -1.27), [1.0127], [0.9974]
    )
    assert measured["verdict_cpu"].startswith("not resolved (1 round(s)")
    assert measured["verdict_wall"].startswith("not resolved (1 round(s)")


def test_the_bound_is_judged_against_each_goal() -> None:
    bound = trainer.bounded_overhead(stall=0.4, writer_cpu=0.05, epoch_seconds=10.0)
    assert bound["every epoch"]["overhead_percent"] == 4.5
    assert bound["every epoch"]["verdict"] == "not met"
    assert bound["every 60 s"]["overhead_percent"] == 0.75
    assert bound["every 60 s"]["verdict"] == "met"
