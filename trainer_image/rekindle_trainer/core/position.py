"""Where a run stands (epoch, global step, step within the epoch), counted from Keras' hooks.

Keras numbers the batches of each ``fit`` call's epoch from 0, and reports only
the last batch of an execution when ``steps_per_execution > 1``; the first ``fit``
of an attempt resumed at step ``k`` of an epoch starts at batch 0 all the same.
:class:`Position` turns those batch numbers into the run's own count.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Position:
    """``epoch`` is the 0-based epoch in progress (= epochs done); ``step`` is global."""

    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    #: ``step_in_epoch`` when the epoch's ``fit`` began: batch ``b`` is step ``b + 1`` after it.
    _fit_offset: int = field(default=0, repr=False, compare=False)

    def begin_epoch(self, epoch: int) -> None:
        """Keras starts 0-based ``epoch`` (its batches count from 0 again)."""
        self.epoch = epoch
        self._fit_offset = self.step_in_epoch

    def batch_done(self, batch: int) -> None:
        """Keras finished ``batch``: the last of one execution of one or more steps."""
        reached = self._fit_offset + batch + 1
        self.step += max(1, reached - self.step_in_epoch)
        self.step_in_epoch = max(self.step_in_epoch + 1, reached)

    def end_epoch(self, epoch: int) -> None:
        """Keras finished 0-based ``epoch``."""
        self.epoch = epoch + 1
        self.step_in_epoch = 0
