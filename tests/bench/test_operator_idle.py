"""The operator benchmark's idle check and its goals' verdicts (no operator process started)."""

from __future__ import annotations

import collections
import datetime
from typing import Any

from bench import operator as bench_operator
from rekindle_operator.core.observation import AttemptRunning
from rekindle_operator.resources import classify

NOW = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)


def test_the_running_status_is_what_the_operator_reads_as_running() -> None:
    pod = {"metadata": {"name": "job-0-1"}, "status": bench_operator.running_status(NOW)}
    seen = classify.classify_pod(pod, now=NOW, pending_timeout_seconds=600)
    assert seen == AttemptRunning(attempt=1)


def test_the_pending_timeout_is_the_one_the_operator_parses() -> None:
    # No pendingTimeoutSeconds in the benchmark's jobs: the operator's default applies.
    assert bench_operator.pending_timeout_seconds() == 600.0


def test_only_every_job_running_leaves_no_requeue_due() -> None:
    running = collections.Counter({"Running": 20})
    pending = collections.Counter({"Running": 19, "Pending": 1})
    assert bench_operator.longest_requeue_seconds(running, 600.0) is None
    assert bench_operator.longest_requeue_seconds(pending, 600.0) == 600.0


def _run(
    jobs: int, p99: float, rss: float, idle: float, idle_verdict: str, get_p99: float = 5.0
) -> dict[str, Any]:
    return {
        "jobs": jobs,
        "reaction_p99_ms": p99,
        "operator_rss_mb": rss,
        "requests_per_idle_job_per_minute": idle,
        "idle_verdict": idle_verdict,
        "emulator_http_get_p99_ms": get_p99,
        "emulator_store_service_p99_ms": 1.0,
    }


def test_goal_verdicts_come_from_the_runs() -> None:
    goals = bench_operator.goal_verdicts(
        [_run(200, 27.5, 76.0, 0.0, "met"), _run(1000, 31.0, 260.0, 0.0, "met")]
    )
    assert [(g["measured"], g["verdict"]) for g in goals] == [
        (27.5, "met"),
        (260.0, "not met"),
        ({200: 0.0, 1000: 0.0}, "met"),
    ]


def test_a_quick_run_measures_no_goal_set_at_a_job_count() -> None:
    short = "not resolved (idle window 5 s not longer than the operator's longest requeue, 600 s)"
    goals = bench_operator.goal_verdicts([_run(20, 15.5, 68.5, 0.0, short)])
    assert [g["verdict"] for g in goals] == [
        "not measured (no run at 200 jobs; runs: 20)",
        "not measured (no run at 1000 jobs; runs: 20)",
        short,
    ]


def test_a_slow_reaction_on_a_stalled_emulator_is_not_resolved() -> None:
    stalled = _run(200, 871.3, 83.6, 0.0, "met", get_p99=2590.9)
    slow = _run(200, 871.3, 83.6, 0.0, "met", get_p99=40.0)
    assert bench_operator.goal_verdicts([stalled])[0]["verdict"] == (
        "not resolved (the emulator's own p99 2590.9 ms reaches the goal 250 ms)"
    )
    assert bench_operator.goal_verdicts([slow])[0]["verdict"] == "not met"
