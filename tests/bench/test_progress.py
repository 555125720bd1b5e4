"""The live progress benchmark's pure parts: the stubs' pace, the lag check, the verdicts."""

from __future__ import annotations

import datetime

from bench import progress
from rekindle_operator.core.live_progress import LivePolicy

PACE = progress.Pace(epoch_seconds=60.0, steps_per_second=5.0, jobs=4)
T0 = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)


def test_epochs_end_spread_over_one_epoch() -> None:
    assert [PACE.epoch_at(i, 50.0) for i in range(4)] == [0, 1, 1, 1]
    doc = PACE.document(1, 50.0, T0)
    assert (doc.epoch, doc.step, doc.steps_this_attempt) == (1, 325, 325)
    assert doc.checkpoint is not None
    assert doc.checkpoint.name == "ckpt-1-300"
    assert PACE.document(0, 10.0, T0).checkpoint is None


def test_a_job_lags_when_its_status_misses_an_epoch_older_than_thirty_seconds() -> None:
    # At 100 s, 30 s earlier (70 s) job 0 had 1 epoch, job 1 (15 s ahead) also 1.
    assert progress.lagging(PACE, {0: 1, 1: 0}, elapsed=100.0) == [1]
    assert progress.lagging(PACE, {0: 0}, elapsed=80.0) == []  # its epoch ended 20 s ago


def test_goal_verdicts_judge_each_figure() -> None:
    figures = {
        "status_writes_per_job_per_minute": 1.2,
        "idle_and_finished_job_reads": 1,
        "jobs_lagging_over_30s": 0,
    }
    verdicts = [g["verdict"] for g in progress.goal_verdicts(figures, LivePolicy())]
    assert verdicts == ["met", "not met", "met"]
