"""``rekindle run`` warns, like the operator, when saves outlast the grace period."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

from rekindle_operator.core import job_spec, job_status
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import FaultSchedule
from rekindle_operator.local.progress import ProgressView
from rekindle_operator.local.runner import LocalJob, LocalRunner, RunSettings, SaveTimes
from rekindle_operator.local.workdir import Workdir
from rekindle_trainer.contract import ProgressEvent, ProgressKind

NOW = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)


def saved(seconds: float, step: int = 1) -> ProgressEvent:
    data = {"checkpoint": f"step-{step}", "epoch": 0, "step": step, "seconds": seconds}
    return ProgressEvent(ProgressKind.CHECKPOINT, time=NOW.timestamp(), data=data)


def test_slow_saves_warn_once_after_three_and_fast_ones_never() -> None:
    slow = SaveTimes(grace_seconds=30)
    assert slow.follow(saved(40.0)) is None  # one cold save alone does not warn
    assert slow.follow(None) is None
    assert slow.follow(saved(41.0)) is None
    warning = slow.follow(saved(39.0))
    assert warning is not None
    assert "terminationGracePeriodSeconds (30 s)" in warning
    assert "at least 72" in warning  # 41 * 1.5 + 10 = 71.5
    assert slow.follow(saved(45.0)) is None  # once per attempt
    fast = SaveTimes(grace_seconds=120)
    assert all(fast.follow(saved(2.0, step)) is None for step in range(10))


def test_the_runner_prints_the_warning(tmp_path: Path) -> None:
    doc = {
        "image": "trainer:1",
        "entrypoint": "m:f",
        "training": {"epochs": 5},
        "terminationGracePeriodSeconds": 30,
    }
    job = LocalJob(
        name="slow",
        namespace="local",
        uid="uid",
        generation=1,
        spec=job_spec.parse_spec(doc),
        document={"apiVersion": "rekindle.dev/v1alpha1", "kind": "TrainingJob", "spec": doc},
        status=job_status.Status(),
    )
    settings = RunSettings(
        workdir=Workdir(tmp_path / "wd"),
        faults=FaultSchedule(pending=[]),
        metrics_port=0,
        show_progress=False,
        cwd=tmp_path,
        clock=lambda: NOW,
    )
    out = io.StringIO()
    runner = LocalRunner(job, settings, Console(out, live=False))
    on_progress = runner._progress_reporter(1, ProgressView())
    for step in range(1, 5):
        on_progress(saved(50.0, step))
    assert out.getvalue().count("warning: spec.terminationGracePeriodSeconds (30 s)") == 1
