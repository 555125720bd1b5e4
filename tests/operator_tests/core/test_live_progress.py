"""The read and write rates of live progress: bounded per job whatever the trainer does."""

from __future__ import annotations

from datetime import UTC, datetime

from rekindle_operator.core import live_progress
from rekindle_operator.core.live_progress import LivePolicy
from rekindle_trainer.contract.live import LiveBest, LiveCheckpoint, LiveProgress

POLICY = LivePolicy(poll_seconds=10, min_write_seconds=10, step_write_seconds=60)


def doc(
    epoch: int = 0, step: int = 0, steps: int = 0, checkpoint: str | None = None
) -> LiveProgress:
    saved = (
        LiveCheckpoint(name=checkpoint, time=datetime(2026, 12, 3, tzinfo=UTC))
        if checkpoint
        else None
    )
    return LiveProgress(epoch=epoch, step=step, steps_this_attempt=steps, checkpoint=saved)


def test_the_first_reading_is_read_at_once_and_written() -> None:
    track = live_progress.start(1, now=100.0)
    assert track.next_poll == 100.0
    track, write = live_progress.observe(track, POLICY, doc(epoch=3, step=30), 100.0)
    assert write
    assert track.next_poll == 110.0
    assert track.reading is not None
    assert (track.reading.epoch, track.reading.step) == (3, 30)


def test_an_unchanged_reading_is_not_written_again() -> None:
    track, _ = live_progress.observe(live_progress.start(1, 0.0), POLICY, doc(1), 0.0)
    track, write = live_progress.observe(track, POLICY, doc(1), 100.0)
    assert not write


def test_an_epoch_end_is_written_within_twenty_seconds_at_most_once_per_ten() -> None:
    track, _ = live_progress.observe(live_progress.start(1, 0.0), POLICY, doc(1), 0.0)
    # A new epoch 5 s after the last write: held back, written at the next read.
    track, write = live_progress.observe(track, POLICY, doc(2), 5.0)
    assert not write
    track, write = live_progress.observe(track, POLICY, doc(2), track.next_poll)
    assert write
    assert track.written_at == 15.0


def test_the_step_counter_alone_is_written_at_most_once_a_minute() -> None:
    track, _ = live_progress.observe(live_progress.start(1, 0.0), POLICY, doc(1, 10), 0.0)
    writes = []
    now = 0.0
    for step in range(11, 40):
        now += POLICY.poll_seconds
        track, write = live_progress.observe(track, POLICY, doc(1, step), now)
        writes.append(write)
    assert sum(writes) == 290 // 60  # 290 s of steps: four writes


def test_writes_per_job_per_minute_are_bounded_by_the_policy() -> None:
    assert POLICY.writes_per_minute() == 6.0
    track = live_progress.start(1, 0.0)
    written = 0
    for second in range(600):  # a trainer whose every read shows a new epoch
        if second >= track.next_poll:
            track, write = live_progress.observe(track, POLICY, doc(second), float(second))
            written += write
    assert written <= 10 * POLICY.writes_per_minute()


def test_no_answer_moves_only_the_next_read() -> None:
    track, _ = live_progress.observe(live_progress.start(1, 0.0), POLICY, doc(1, steps=4), 0.0)
    after, write = live_progress.observe(track, POLICY, None, 10.0)
    assert not write
    assert after.reading == track.reading
    assert after.steps_since == track.steps_since
    assert after.next_poll == 20.0


def test_the_reading_carries_best_and_checkpoint_for_the_engine() -> None:
    best = LiveBest(monitor="val_loss", value=0.2, epoch=3)
    reading = live_progress.progress_of(
        LiveProgress(epoch=4, step=40, best=best, checkpoint=doc(checkpoint="c").checkpoint)
    )
    assert (reading.monitor, reading.best_metric, reading.best_epoch) == ("val_loss", 0.2, 3)
    assert reading.checkpoint == "c"
    assert reading.checkpoint_time == datetime(2026, 12, 3, tzinfo=UTC)


RULE = live_progress.StallRule(timeout_seconds=60, first_step_seconds=600)


def test_no_rule_never_stalls() -> None:
    assert live_progress.stall_rule(None, 1800) is None
    assert live_progress.stall_message(None, since=0, stepped=False, moved_at=None, now=1e9) is None


def test_the_first_step_has_its_own_allowance_for_compilation() -> None:
    assert live_progress.stall_rule(60, 600) == RULE
    kwargs = {"since": 0.0, "stepped": False, "moved_at": None}
    assert live_progress.stall_message(RULE, **kwargs, now=599.0) is None  # type: ignore[arg-type]
    why = live_progress.stall_message(RULE, **kwargs, now=600.0)  # type: ignore[arg-type]
    assert why is not None
    assert "firstStepTimeoutSeconds (600 s)" in why


def test_a_step_counter_that_stops_moving_stalls_and_no_answer_is_no_progress() -> None:
    track, _ = live_progress.observe(live_progress.start(1, 0.0), POLICY, doc(steps=5), 0.0)
    track, _ = live_progress.observe(track, POLICY, doc(steps=9), 10.0)
    assert live_progress.stalled(track, RULE, 69.0) is None
    for now in (20.0, 30.0, 40.0, 50.0, 60.0):  # frozen: the trainer does not answer
        track, _ = live_progress.observe(track, POLICY, None, now)
    why = live_progress.stalled(track, RULE, 70.0)
    assert why is not None
    assert "no training step for 60 s" in why
    # A step counter that moves again is no stall.
    track, _ = live_progress.observe(track, POLICY, doc(steps=10), 70.0)
    assert live_progress.stalled(track, RULE, 71.0) is None


def test_a_running_attempt_that_never_answers_is_held_to_the_first_step_allowance() -> None:
    track = live_progress.start(1, 0.0)
    for now in range(0, 700, 10):
        track, _ = live_progress.observe(track, POLICY, None, float(now))
    assert live_progress.stalled(track, RULE, 599.0) is None
    assert live_progress.stalled(track, RULE, 600.0) is not None


def test_the_track_keeps_the_saves_and_their_p99_for_the_grace_rule() -> None:
    track = live_progress.start(1, 0.0)
    assert (track.saves, track.save_p99) == (0, None)
    slow = LiveProgress(saves=4, save_seconds_p99=75.0)
    track, _ = live_progress.observe(track, POLICY, slow, 0.0)
    assert (track.saves, track.save_p99) == (4, 75.0)
    track, _ = live_progress.observe(track, POLICY, None, 10.0)  # no answer: kept
    assert (track.saves, track.save_p99) == (4, 75.0)
