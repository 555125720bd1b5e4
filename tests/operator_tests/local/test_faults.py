"""``--inject`` fault specs and when each fault fires."""

from __future__ import annotations

import signal

import pytest

from rekindle_operator.local.faults import (
    Fault,
    FaultAction,
    FaultSchedule,
    FaultTrigger,
    parse_fault,
)
from rekindle_trainer.contract import ProgressEvent, ProgressKind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sigkill@step=120", Fault(FaultAction.SIGKILL, FaultTrigger.STEP, 120)),
        ("sigkill@epoch=3", Fault(FaultAction.SIGKILL, FaultTrigger.EPOCH, 3)),
        ("sigkill@seconds=20", Fault(FaultAction.SIGKILL, FaultTrigger.SECONDS, 20.0)),
        ("sigterm@epoch=6", Fault(FaultAction.SIGTERM, FaultTrigger.EPOCH, 6)),
        ("sigterm@seconds=0", Fault(FaultAction.SIGTERM, FaultTrigger.SECONDS, 0.0)),
        ("crash@step=1", Fault(FaultAction.CRASH, FaultTrigger.STEP, 1)),
        ("crash@seconds=2.5", Fault(FaultAction.CRASH, FaultTrigger.SECONDS, 2.5)),
        (" SIGKILL@Epoch=3 ", Fault(FaultAction.SIGKILL, FaultTrigger.EPOCH, 3)),
        ("sigkill@step=40,worker=1", Fault(FaultAction.SIGKILL, FaultTrigger.STEP, 40, 1)),
        ("crash@seconds=2, worker = 3", Fault(FaultAction.CRASH, FaultTrigger.SECONDS, 2.0, 3)),
        ("sigterm@epoch=2,worker=0", Fault(FaultAction.SIGTERM, FaultTrigger.EPOCH, 2)),
    ],
)
def test_valid_fault_specs_parse(text: str, expected: Fault) -> None:
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sigkill", "expected ACTION@TRIGGER=VALUE"),
        ("sigkill@epoch", "expected ACTION@TRIGGER=VALUE"),
        ("sigkill=3", "expected ACTION@TRIGGER=VALUE"),
        ("sigstop@epoch=3", "unknown action 'sigstop'; use one of sigkill, sigterm, crash"),
        ("sigkill@batch=3", "unknown trigger 'batch'; use one of step, epoch, seconds"),
        ("sigkill@epoch=0", "epoch must be a whole number >= 1, got '0'"),
        ("sigkill@epoch=2.5", "epoch must be a whole number >= 1, got '2.5'"),
        ("sigkill@step=-1", "step must be a whole number >= 1, got '-1'"),
        ("sigkill@step=", "step must be a whole number >= 1, got ''"),
        ("sigterm@seconds=-1", "seconds must be a number >= 0, got '-1'"),
        ("sigterm@seconds=soon", "seconds must be a number >= 0, got 'soon'"),
        ("sigterm@seconds=inf", "seconds must be a number >= 0, got 'inf'"),
        ("sigkill@step=4,worker=-1", "expected ,worker=N"),
        ("sigkill@step=4,node=1", "expected ,worker=N"),
        ("sigkill@step=4,worker", "expected ,worker=N"),
    ],
)
def test_invalid_fault_specs_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--inject") as error:
        parse_fault(text)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "sig"),
    [
        ("sigkill@step=1", signal.SIGKILL),
        ("sigterm@step=1", signal.SIGTERM),
        ("crash@step=1", signal.SIGABRT),
    ],
)
def test_each_action_sends_its_signal(text: str, sig: signal.Signals) -> None:
    assert parse_fault(text).signal is sig


@pytest.mark.parametrize("text", ["sigkill@step=120", "sigterm@epoch=6", "crash@seconds=2.5"])
def test_a_fault_prints_as_it_was_written(text: str) -> None:
    assert str(parse_fault(text)) == text


def _event(kind: ProgressKind, **data: object) -> ProgressEvent:
    return ProgressEvent(kind, 0.0, dict(data))


def _started(epoch: int = 0, step: int = 0) -> ProgressEvent:
    return _event(ProgressKind.STARTED, epoch=epoch, step=step, epochs=10, steps_per_epoch=10)


def test_epoch_fault_fires_once_at_the_end_of_that_epoch() -> None:
    schedule = FaultSchedule.parse(["sigkill@epoch=2"])
    schedule.begin_attempt()
    assert schedule.on_event(_started()) is None
    assert schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=1, step=10)) is None
    assert schedule.on_event(_event(ProgressKind.STEP, epoch=1, step=15)) is None
    fired = schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=2, step=20))
    assert fired == parse_fault("sigkill@epoch=2")
    # The next attempt resumes from epoch 1 and passes epoch 2 again: no second kill.
    schedule.end_attempt()
    schedule.begin_attempt()
    schedule.on_event(_event(ProgressKind.RESTORED, epoch=1, step=10, checkpoint="c"))
    assert schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=2, step=20)) is None
    assert schedule.fired == [parse_fault("sigkill@epoch=2")]
    assert schedule.pending == []


def test_step_fault_fires_at_the_first_report_at_or_past_the_step() -> None:
    schedule = FaultSchedule.parse(["sigterm@step=25"])
    schedule.begin_attempt()
    schedule.on_event(_started())
    assert schedule.on_event(_event(ProgressKind.STEP, epoch=2, step=24)) is None
    # Step events are throttled: step 25 itself may never be reported.
    assert schedule.on_event(_event(ProgressKind.STEP, epoch=2, step=27)) == parse_fault(
        "sigterm@step=25"
    )


def test_at_most_one_fault_hits_an_attempt() -> None:
    schedule = FaultSchedule.parse(["sigkill@epoch=1", "sigterm@epoch=1"])
    schedule.begin_attempt()
    schedule.on_event(_started())
    first = schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=1, step=10))
    assert first == parse_fault("sigkill@epoch=1")
    # Events still arriving from the dying attempt fire nothing more.
    assert schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=1, step=10)) is None
    schedule.end_attempt()
    schedule.begin_attempt()
    schedule.on_event(_started())
    second = schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=1, step=10))
    assert second == parse_fault("sigterm@epoch=1")


def test_nothing_fires_between_attempts() -> None:
    schedule = FaultSchedule.parse(["crash@seconds=1"])
    assert schedule.on_tick(5.0) is None
    schedule.begin_attempt()
    assert schedule.on_tick(0.5) is None
    assert schedule.on_tick(1.0) == parse_fault("crash@seconds=1")


def test_a_point_behind_the_resumed_checkpoint_is_dropped_and_reported_once() -> None:
    schedule = FaultSchedule.parse(["sigkill@epoch=3", "sigterm@step=5", "crash@epoch=9"])
    schedule.begin_attempt()
    schedule.on_event(_event(ProgressKind.RESTORED, epoch=4, step=40, checkpoint="c"))
    assert schedule.take_unreachable() == [
        parse_fault("sigkill@epoch=3"),
        parse_fault("sigterm@step=5"),
    ]
    assert schedule.take_unreachable() == []
    assert schedule.pending == [parse_fault("crash@epoch=9")]
    assert schedule.on_event(_event(ProgressKind.EPOCH_END, epoch=5, step=50)) is None


def test_checkpoint_and_finish_events_fire_nothing() -> None:
    schedule = FaultSchedule.parse(["sigkill@step=1"])
    schedule.begin_attempt()
    assert schedule.on_event(_event(ProgressKind.CHECKPOINT, epoch=1, step=10)) is None
    assert schedule.on_event(_event(ProgressKind.FINISHED, outcome="completed")) is None
    assert schedule.on_event(_event(ProgressKind.STEP, step=1)) == parse_fault("sigkill@step=1")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("sigkill@step=40,worker=1", "sigkill@step=40,worker=1"),
        ("sigkill@step=40,worker=0", "sigkill@step=40"),
    ],
)
def test_a_fault_says_which_worker_it_hits_unless_the_chief(text: str, shown: str) -> None:
    assert str(parse_fault(text)) == shown


def test_a_fault_at_a_worker_the_job_lacks_is_refused() -> None:
    schedule = FaultSchedule.parse(["sigkill@step=4,worker=1"])
    schedule.check_workers(2)
    with pytest.raises(ValueError, match=r"worker 1 does not exist: the job has 1 worker \(spec"):
        schedule.check_workers(1)
