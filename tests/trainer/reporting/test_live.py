"""``GET /progress``: what the trainer serves the operator while an attempt runs."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime

import pytest

from rekindle_trainer.contract.live import (
    MAX_DOCUMENT_BYTES,
    PROGRESS_PATH,
    SAVE_WINDOW,
    LiveProgress,
    p99,
)
from rekindle_trainer.core.position import Position
from rekindle_trainer.reporting.live import LiveState
from rekindle_trainer.reporting.metrics import Health, MetricsServer, TrainerMetrics
from rekindle_trainer.reporting.progress import ProgressLog
from rekindle_trainer.reporting.reporter import Reporter


class Clock:
    """A settable clock (Unix seconds)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_document_follows_the_reporter() -> None:
    clock = Clock()
    live = LiveState(clock)
    reporter = Reporter(TrainerMetrics(), Health(), ProgressLog(None), live=live)
    reporter.started(
        Position(epoch=2, step=20),
        epochs=5,
        steps_per_epoch=10,
        attempt=3,
        restored_from="epoch-0002",
        lost_steps=0,
    )
    doc = live.document()
    assert (doc.attempt, doc.epoch, doc.step, doc.steps_this_attempt) == (3, 2, 20, 0)
    assert doc.checkpoint is not None
    assert doc.checkpoint.name == "epoch-0002"
    assert doc.checkpoint.save_seconds is None  # restored, not saved
    reporter.training()
    clock.now += 5
    reporter.step_done(Position(epoch=2, step=21), 10, None)
    reporter.epoch_done(Position(epoch=3, step=30), {"loss": 0.5}, "val_loss", 0.25, best_epoch=1)
    reporter.checkpoint_published(
        "epoch-0003", trigger="epoch", epoch=3, step=30, seconds=0.123456, nbytes=10
    )
    doc = live.document()
    assert doc.phase == "training"
    assert (doc.epoch, doc.step, doc.steps_this_attempt) == (3, 30, 1)
    assert doc.last_step_time == datetime.fromtimestamp(clock.now, UTC)
    assert doc.best is not None
    assert (doc.best.monitor, doc.best.value, doc.best.epoch) == (
        "val_loss",
        0.25,
        2,  # 1-based, as the status shows it
    )
    assert doc.checkpoint is not None
    assert (doc.checkpoint.name, doc.checkpoint.save_seconds, doc.saves) == (
        "epoch-0003",
        0.1235,
        1,
    )


def test_the_document_round_trips_through_json() -> None:
    live = LiveState(Clock())
    live.started(1, 0, 0, None)
    live.step(1)
    live.checkpoint("step-1", epoch=0, step=1, seconds=0.5)
    doc = live.document()
    assert LiveProgress.from_json(doc.to_json()) == doc
    assert json.loads(doc.to_json())["stepsThisAttempt"] == 1


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("not json", "not JSON"),
        ('{"epoch": -1}', "progress.epoch"),
        ("{}" + " " * MAX_DOCUMENT_BYTES, "at most"),
    ],
)
def test_a_bad_document_is_refused_naming_why(text: str, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        LiveProgress.from_json(text)


def test_the_metrics_server_serves_progress() -> None:
    live = LiveState(Clock())
    live.started(4, 1, 7, None)
    server = MetricsServer(TrainerMetrics(), Health(), 0, host="127.0.0.1", live=live)
    try:
        url = f"http://127.0.0.1:{server.port}{PROGRESS_PATH}"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            served = LiveProgress.from_json(response.read())
    finally:
        server.close()
    assert (served.attempt, served.epoch, served.step) == (4, 1, 7)


def test_fields_a_newer_trainer_adds_are_ignored() -> None:
    text = (
        '{"epoch": 2, "gpuUtilisation": 0.9, "checkpoint": {"name": "c", "bytes": 10},'
        ' "best": {"monitor": "loss", "value": 0.5, "trend": "down"}}'
    )
    doc = LiveProgress.from_json(text)
    assert doc.epoch == 2
    assert doc.checkpoint is not None
    assert doc.checkpoint.name == "c"
    assert doc.best is not None
    assert doc.best.value == 0.5


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([], None),
        ([2.0], 2.0),
        ([1.0, 9.0, 3.0], 9.0),  # under 100 saves: the slowest
        ([1.0] * 98 + [50.0, 80.0], 50.0),  # 100 saves: one outlier is not the p99
    ],
)
def test_p99_is_a_save_that_really_took_that_long(
    durations: list[float], expected: float | None
) -> None:
    assert p99(durations) == expected


def test_a_slow_writer_s_save_durations_are_reported_as_their_p99() -> None:
    live = LiveState(Clock())
    reporter = Reporter(TrainerMetrics(), Health(), ProgressLog(None), live=live)
    assert live.document().save_seconds_p99 is None  # no save yet
    for step, seconds in enumerate([4.0, 41.5, 6.0], start=1):
        reporter.checkpoint_published(
            f"step-{step}", trigger="steps", epoch=0, step=step, seconds=seconds, nbytes=1
        )
    doc = live.document()
    assert (doc.saves, doc.save_seconds_p99) == (3, 41.5)
    assert json.loads(doc.to_json())["saveSecondsP99"] == 41.5
    for step in range(4, 4 + SAVE_WINDOW):  # the slow save leaves the window
        live.checkpoint(f"step-{step}", epoch=0, step=step, seconds=2.0)
    assert live.document().save_seconds_p99 == 2.0


def test_an_older_trainer_s_document_has_no_p99() -> None:
    assert LiveProgress.from_json('{"saves": 3}').save_seconds_p99 is None
