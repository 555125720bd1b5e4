"""Counts in messages read as English: "1 epoch", never "1 epochs"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rekindle_operator.core import engine, job_spec, wording
from rekindle_operator.core.job_status import Status
from rekindle_operator.core.observation import AttemptEnd
from rekindle_operator.core.reasons import Cause


@pytest.mark.parametrize(
    ("number", "noun", "text"),
    [(0, "epoch", "0 epochs"), (1, "epoch", "1 epoch"), (2, "step", "2 steps")],
)
def test_counted(number: int, noun: str, text: str) -> None:
    assert wording.counted(number, noun) == text


def test_a_one_epoch_job_completes_its_1_epoch() -> None:
    spec = job_spec.parse_spec({"image": "t:1", "entrypoint": "m:f", "training": {"epochs": 1}})
    now = datetime(2026, 12, 1, tzinfo=UTC)
    started = engine.decide(spec, Status(), None, now)
    end = AttemptEnd(attempt=1, cause=Cause.COMPLETED, exit_code=0)
    done = engine.decide(spec, started.status, end, now)
    assert done.event is not None
    assert "1 epochs" not in done.event.message
    assert "completed its 1 epoch" in done.event.message
