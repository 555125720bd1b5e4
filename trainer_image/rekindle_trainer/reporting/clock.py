"""Where an attempt's time goes, measured by the trainer for the operator's goodput.

Pure bookkeeping on a monotonic clock: the training thread tells it when the
checkpoint was restored, each step, and each wait on a save; the termination
message carries the result as :class:`~rekindle_trainer.contract.Timing`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rekindle_trainer.contract import Timing


@dataclass
class AttemptClock:
    """Startup, restore, checkpoint stall and training time of one attempt, in seconds.

    Startup counts from the clock's creation, when the trainer's session opens; the
    operator counts what came before (the container's start, imports) as startup too.
    """

    now: Callable[[], float] = time.monotonic
    started: float = field(default_factory=time.monotonic)
    restore: float = 0.0
    stall: float = 0.0
    #: When the first step of this attempt ended (compilation is startup), and its step.
    first_step_at: float | None = None
    first_step: int = 0
    last_step: int = 0
    _stopped_at: float | None = field(default=None, repr=False)

    def restored(self, seconds: float) -> None:
        """Reading the checkpoint the attempt resumes from took ``seconds``."""
        self.restore += max(0.0, seconds)

    def stalled(self, seconds: float) -> None:
        """Training waited ``seconds`` on a save."""
        self.stall += max(0.0, seconds)

    def step(self, step: int) -> None:
        """Global step ``step`` is done."""
        if self.first_step_at is None:
            self.first_step_at = self.now()
            self.first_step = step
        self.last_step = step

    def timing(self) -> Timing:
        """The attempt so far: startup to the first step's end, training from then to now."""
        now = self.now()
        if self.first_step_at is None:
            startup, training = now - self.started, 0.0
        else:
            startup, training = self.first_step_at - self.started, now - self.first_step_at
        return Timing(
            startup=max(0.0, startup),
            restore=min(self.restore, max(0.0, startup)),
            checkpoint_stall=min(self.stall, max(0.0, training)),
            training=max(0.0, training),
            steps=max(0, self.last_step - self.first_step),
        )
