"""The attempt's clock: what the termination message's ``timing`` says, for goodput."""

from __future__ import annotations

from rekindle_trainer.contract import Outcome, TerminationMessage, Timing
from rekindle_trainer.reporting.addenda import Addenda
from rekindle_trainer.reporting.clock import AttemptClock


class FakeTime:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def test_startup_ends_with_the_first_step_and_training_runs_to_the_message() -> None:
    now = FakeTime()
    clock = AttemptClock(now=now, started=now())
    now.value += 3.0
    clock.restored(1.25)
    now.value += 7.0  # compiling and the first step are startup
    clock.step(41)
    for step in range(42, 61):
        now.value += 0.5
        clock.step(step)
    clock.stalled(0.75)
    clock.stalled(-1.0)  # a clock that went back adds nothing
    now.value += 2.0
    assert clock.timing() == Timing(
        startup=10.0, restore=1.25, checkpoint_stall=0.75, training=11.5, steps=19
    )


def test_an_attempt_stopped_before_its_first_step_was_all_startup() -> None:
    now = FakeTime()
    clock = AttemptClock(now=now, started=now())
    clock.restored(9.0)
    now.value += 4.0
    assert clock.timing() == Timing(startup=4.0, restore=4.0, steps=0)


def test_every_message_written_carries_the_timing_unless_it_has_its_own() -> None:
    now = FakeTime()
    addenda = Addenda(clock=AttemptClock(now=now, started=now()), report_timing=True)
    now.value += 2.0
    applied = addenda.apply(TerminationMessage(outcome=Outcome.FAILED, error="boom"))
    assert applied.timing == Timing(startup=2.0)
    own = Timing(training=5.0)
    kept = addenda.apply(TerminationMessage(outcome=Outcome.COMPLETED, timing=own))
    assert kept.timing == own


def test_no_timing_unless_the_operator_asked_for_it() -> None:
    """Operators before goodput reject a message with a field they do not know."""
    applied = Addenda().apply(TerminationMessage(outcome=Outcome.COMPLETED))
    assert applied.timing is None
    assert "timing" not in applied.to_json()
