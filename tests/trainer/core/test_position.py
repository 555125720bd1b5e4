"""The run's position from Keras' batch numbers: fresh, resumed mid-epoch, several steps a call."""

from __future__ import annotations

import pytest

from rekindle_trainer.core.position import Position

# (start, [hook calls], end): ("begin", epoch) / ("batch", b) / ("end", epoch)
CASES = {
    "a fresh epoch of 3 steps": (
        Position(),
        [("begin", 0), ("batch", 0), ("batch", 1), ("batch", 2), ("end", 0)],
        Position(epoch=1, step=3, step_in_epoch=0),
    ),
    "the second epoch counts on from the first": (
        Position(epoch=1, step=3),
        [("begin", 1), ("batch", 0), ("batch", 1)],
        Position(epoch=1, step=5, step_in_epoch=2),
    ),
    "resumed at step 2 of an epoch: batch 0 is its step 3": (
        Position(epoch=1, step=5, step_in_epoch=2),
        [("begin", 1), ("batch", 0), ("batch", 1)],
        Position(epoch=1, step=7, step_in_epoch=4),
    ),
    "steps_per_execution 4: Keras reports batches 3 and 7": (
        Position(),
        [("begin", 0), ("batch", 3), ("batch", 7)],
        Position(epoch=0, step=8, step_in_epoch=8),
    ),
    "resumed mid-epoch with several steps an execution": (
        Position(epoch=2, step=21, step_in_epoch=1),
        [("begin", 2), ("batch", 1), ("batch", 3)],
        Position(epoch=2, step=25, step_in_epoch=5),
    ),
    "resumed at step 4, one step an execution": (
        Position(epoch=0, step=4, step_in_epoch=4),
        [("begin", 0), ("batch", 0)],
        Position(epoch=0, step=5, step_in_epoch=5),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_position_follows_the_hooks(name: str) -> None:
    position, calls, expect = CASES[name]
    for hook, number in calls:
        if hook == "begin":
            position.begin_epoch(number)
        elif hook == "batch":
            position.batch_done(number)
        else:
            position.end_epoch(number)
    assert position == expect
