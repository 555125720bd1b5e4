"""What an attempt learned that its termination message must carry, however it ends.

The loop builds the message of an attempt that completes, stops early or is
preempted; the session builds the one of an attempt that fails. Both must say
when no valid checkpoint was left (a note), the job's lost steps so far
(counted at start-up, before anything could fail) and where the attempt's time
went (:class:`~rekindle_trainer.reporting.clock.AttemptClock`): :class:`Addenda` collects
them and :meth:`Addenda.apply` adds them to whichever message is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rekindle_trainer.contract import Outcome, TerminationMessage
from rekindle_trainer.reporting.clock import AttemptClock

#: The note of an attempt stopped before its first step.
NOTHING_TO_SAVE = "stopped before the first step: nothing new to save"


@dataclass
class Addenda:
    """Notes (one line each) and the job's lost steps, for the termination message."""

    notes: list[str] = field(default_factory=list)
    lost_steps: int = 0
    #: Where the attempt starts: ``(epoch, step, checkpoint)``, once known.
    start: tuple[int, int, str | None] | None = None
    #: Where the attempt's time went (the message's ``timing``, for goodput).
    clock: AttemptClock = field(default_factory=AttemptClock)
    #: Whether the operator asked for ``timing`` (``REKINDLE_REPORT_TIMING``): operators
    #: before it reject a message with a field they do not know.
    report_timing: bool = False

    def before_first_step(self) -> TerminationMessage | None:
        """The message of an attempt stopped before its first step (``None``: start not known).

        It reports the starting point as where the run stands (nothing was trained).
        """
        if self.start is None:
            return None
        epoch, step, checkpoint = self.start
        note = "; ".join([*self.notes, NOTHING_TO_SAVE])
        stopped = TerminationMessage(
            outcome=Outcome.PREEMPTED, epoch=epoch, step=step, checkpoint=checkpoint, note=note
        )
        return self.apply(stopped)

    def apply(self, message: TerminationMessage) -> TerminationMessage:
        """``message`` with the notes (unless it has one), the larger lost-step total and timing.

        Timing only when the operator asked for it (:attr:`report_timing`).
        """
        note = message.note or ("; ".join(self.notes) if self.notes else None)
        timing = message.timing or (self.clock.timing() if self.report_timing else None)
        lost = max(message.lost_steps, self.lost_steps)
        return replace(message, note=note, lost_steps=lost, timing=timing)
