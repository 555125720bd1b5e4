"""Issue 14 point 7: the job's lost steps count every attempt, whether or not it reported.

An attempt that resumed and then died without a termination message of its own
(SIGKILL; here an in-process crash, whose message never carried the count) used
to take the steps it found lost with it. Each message now carries the job's
total so far, from the position record on the volume.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rekindle_trainer.contract import Outcome, ProgressKind
from tests.trainer import helpers
from tests.trainer.training.test_resume import SHORT, CrashAt, attempt

DOC = {**SHORT, "epochs": 2, "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 50}}


@pytest.mark.slow
def test_every_attempts_lost_steps_reach_the_termination_message(tmp_path: Path) -> None:
    # 23 steps an epoch, saves every 5 steps: killed after 17 (saved 15), then after
    # 14 more (at 29, saved 25).
    first = attempt(tmp_path, DOC, callbacks=(CrashAt(17),))
    second = attempt(tmp_path, DOC, number=2, callbacks=(CrashAt(14),))
    third = attempt(tmp_path, DOC, number=3)
    restored = [e for e in helpers.progress(tmp_path) if e.kind is ProgressKind.RESTORED]
    assert [e.data["lost_steps"] for e in restored] == [2, 4]
    messages = [run.message for run in (first, second, third)]
    assert [m.lost_steps if m else None for m in messages] == [0, 2, 6]
    assert third.message is not None
    assert third.message.outcome is Outcome.COMPLETED
    assert third.metrics.lost_steps._value.get() == 4


@pytest.mark.slow
def test_steps_before_the_first_save_are_lost_too(tmp_path: Path) -> None:
    doc = {**DOC, "checkpoint": {"everyEpochs": 1, "everySteps": 0}}
    attempt(tmp_path, doc, callbacks=(CrashAt(10),))  # no checkpoint yet
    second = attempt(tmp_path, doc, number=2)
    assert second.message is not None
    assert second.message.lost_steps == 10
    assert second.metrics.lost_steps._value.get() == 10
