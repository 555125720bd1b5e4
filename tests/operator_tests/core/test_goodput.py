"""Goodput: every second of the job's wall time attributed once, never negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rekindle_operator.core import goodput
from rekindle_operator.core.goodput import AttemptTimes, BadputCause, Goodput
from rekindle_trainer.contract import Timing

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _assert_consistent(g: Goodput) -> None:
    assert g.productive_seconds >= 0
    assert all(v >= 0 for v in g.badput_seconds.by_cause().values())
    assert g.productive_seconds + g.badput_seconds.total() == pytest.approx(
        g.wall_seconds, abs=1e-6
    )


TIMING = Timing(startup=10.0, restore=4.0, checkpoint_stall=6.0, training=80.0, steps=100)


@pytest.mark.parametrize(
    ("body", "timing", "replayed", "expected"),
    [
        pytest.param(
            100.0,
            TIMING,
            0,
            {
                BadputCause.RESTORE: 4,
                BadputCause.STARTUP: 16,
                BadputCause.CHECKPOINT_STALL: 6,
                None: 74,
            },
            id="the-pod-outlived-the-trainer's-clock: the rest is startup",
        ),
        pytest.param(
            100.0,
            TIMING,
            25,
            {
                BadputCause.RESTORE: 4,
                BadputCause.STARTUP: 16,
                BadputCause.CHECKPOINT_STALL: 6,
                BadputCause.LOST_WORK_REPLAYED: 18.5,
                None: 55.5,
            },
            id="a-quarter-of-the-steps-replayed",
        ),
        pytest.param(
            45.0,
            TIMING,
            0,
            {
                BadputCause.RESTORE: 2,
                BadputCause.STARTUP: 3,
                BadputCause.CHECKPOINT_STALL: 3,
                None: 37,
            },
            id="clock-skew: scaled down to fit the observed body",
        ),
        pytest.param(
            100.0, TIMING, 500, {BadputCause.LOST_WORK_REPLAYED: 74, None: 0}, id="replay-capped"
        ),
        pytest.param(30.0, None, 7, {BadputCause.UNREPORTED: 30}, id="no-timing: unreported"),
    ],
)
def test_an_attempts_body_is_split_by_the_trainers_timing(
    body: float,
    timing: Timing | None,
    replayed: int,
    expected: dict[BadputCause | None, float],
) -> None:
    split = goodput.split_body(body, timing, replayed)
    for cause, seconds in expected.items():
        assert split[cause] == pytest.approx(seconds)
    assert sum(split.values()) == pytest.approx(body)


def test_a_preempted_job_that_waited_in_the_queue_adds_up_to_its_wall_time() -> None:
    g = goodput.begin(T0)
    g = goodput.gap(g, _at(0), BadputCause.QUEUED)
    g = goodput.queue_left(g, queued_since=_at(2), now=_at(32))  # admitted by Kueue after 30 s
    g = goodput.attempt_ended(g, AttemptTimes(end=_at(132), timing=TIMING, gpus=8))
    g = goodput.gap(g, _at(142), BadputCause.RESTART_DOWNTIME)
    ended = AttemptTimes(end=_at(242), timing=TIMING, replayed_steps=25, resumed=True, gpus=8)
    g = goodput.attempt_ended(g, ended)
    g = goodput.early_stopped(g, epochs_trained=4, epochs_left=6, gpus=8)
    bad = g.badput_seconds
    assert (bad.queued, bad.restart_downtime, bad.restore) == (30, 10, 8)
    assert bad.startup == pytest.approx(2 + 16 + 16)
    assert bad.lost_work_replayed == pytest.approx(18.5)
    assert g.productive_seconds == pytest.approx(74 + 55.5)
    assert g.wall_seconds == 242
    _assert_consistent(g)
    # Of the resumed attempt: its replay, startup and restore, on 8 GPUs.
    assert g.gpu_seconds.lost_to_interruptions == pytest.approx(8 * (18.5 + 16 + 4))
    assert g.gpu_seconds.saved_by_early_stopping == pytest.approx(8 * 6 * (74 + 55.5) / 4)


def test_an_attempt_that_ends_in_the_queue_was_all_queued() -> None:
    g = goodput.gap(goodput.begin(T0), _at(1), BadputCause.QUEUED)
    g = goodput.attempt_ended(g, AttemptTimes(end=_at(61), queued_since=_at(3)))
    assert (g.badput_seconds.startup, g.badput_seconds.queued) == (2, 1 + 58)
    _assert_consistent(g)


def test_time_never_goes_back() -> None:
    g = goodput.gap(goodput.begin(T0), _at(10), BadputCause.QUEUED)
    assert goodput.gap(g, _at(5), BadputCause.SUSPENDED) == g
    assert goodput.queue_left(g, queued_since=_at(20), now=_at(8)) == g
    assert goodput.attempt_ended(g, AttemptTimes(end=_at(9), timing=TIMING)) == g


_timings = st.builds(
    Timing,
    startup=st.floats(0, 1e4),
    restore=st.floats(0, 1e4),
    checkpoint_stall=st.floats(0, 1e4),
    training=st.floats(0, 1e5),
    steps=st.integers(0, 10**6),
)
_kinds = st.lists(st.sampled_from(["gap", "queue", "end"]), max_size=12)


@settings(max_examples=150, deadline=None)
@given(kinds=_kinds, data=st.data())
def test_any_sequence_of_folds_adds_up_to_the_wall_time(
    kinds: list[str], data: st.DataObject
) -> None:
    g = goodput.begin(T0)
    for kind in kinds:
        before = g
        now = g.through + timedelta(seconds=data.draw(st.floats(-5, 1e5)))
        if kind == "gap":
            g = goodput.gap(g, now, data.draw(st.sampled_from(list(BadputCause))))
        elif kind == "queue":
            since = g.through + timedelta(seconds=data.draw(st.floats(-1e4, 1e4)))
            g = goodput.queue_left(g, queued_since=since, now=now)
        else:
            offset = data.draw(st.one_of(st.none(), st.floats(-1e4, 1e4)))
            times = AttemptTimes(
                end=now,
                queued_since=None if offset is None else g.through + timedelta(seconds=offset),
                timing=data.draw(st.one_of(st.none(), _timings)),
                replayed_steps=data.draw(st.integers(0, 10**6)),
                resumed=data.draw(st.booleans()),
                gpus=2,
            )
            g = goodput.attempt_ended(g, times)
        _assert_consistent(g)
        assert g.through >= before.through
        assert g.productive_seconds >= before.productive_seconds
        assert g.gpu_seconds.lost_to_interruptions >= before.gpu_seconds.lost_to_interruptions
        for cause, seconds in g.badput_seconds.by_cause().items():
            assert seconds >= before.badput_seconds.by_cause()[cause]
