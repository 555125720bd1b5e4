"""Which save fires at the end of a step or of an epoch: the triggers as pure rules.

The triggers are the contract's :data:`~rekindle_trainer.contract.SAVE_TRIGGERS`:
``epoch`` (every N epochs, and the best epoch when ``restoreBestWeights`` reads it
back), ``steps`` (every N steps), ``seconds`` (N seconds since the last save),
``sigterm`` (the save before a preemption) and ``final`` (the end of training; the
loop takes it when the last position is unsaved). Time is passed in, never read
here. Periodic saves (``steps``, ``seconds``) may be superseded while queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from rekindle_trainer import contract
from rekindle_trainer.contract.training_config import CheckpointPolicy, TrainerConfig


def supersedable(trigger: str) -> bool:
    """Whether a newer save may replace a queued save of ``trigger`` before it is written."""
    return trigger in contract.SUPERSEDABLE_TRIGGERS


@dataclass(frozen=True)
class SavePolicy:
    """The save rules of one run.

    Attributes:
        checkpoint: the configured intervals (``every_epochs``, ``every_steps``,
            ``every_seconds``; 0 disables each).
        save_best: save each epoch that improves the monitored metric
            (``restoreBestWeights`` loads the best epoch's checkpoint back).
    """

    checkpoint: CheckpointPolicy
    save_best: bool = False

    @classmethod
    def of(cls, config: TrainerConfig) -> SavePolicy:
        """The policy a configuration asks for."""
        return cls(config.checkpoint, config.early_stopping.restore_best_weights)

    def after_step(
        self, step: int, *, ends_epoch: bool, stop_requested: bool, seconds_since_save: float
    ) -> str | None:
        """The trigger at the end of global ``step``, or ``None``.

        The last step of an epoch saves nothing here: the epoch's end decides.
        """
        if ends_epoch:
            return None
        if stop_requested:
            return "sigterm"
        return self._periodic(step, seconds_since_save)

    def at_epoch_end(
        self,
        epochs_done: int,
        step: int,
        *,
        improved: bool,
        stopping: bool,
        stop_requested: bool,
        seconds_since_save: float,
    ) -> str | None:
        """The trigger once ``epochs_done`` epochs (and ``step`` steps) are trained, or ``None``.

        ``improved``: the epoch bettered the monitored metric; ``stopping``: early
        stopping ends the run here (the final save follows instead).
        """
        if stopping:
            return None
        if stop_requested:
            return "sigterm"
        every_epochs = self.checkpoint.every_epochs
        if every_epochs and epochs_done % every_epochs == 0:
            return "epoch"
        if improved and self.save_best:
            return "epoch"
        return self._periodic(step, seconds_since_save)

    def _periodic(self, step: int, seconds_since_save: float) -> str | None:
        every_steps, every_seconds = self.checkpoint.every_steps, self.checkpoint.every_seconds
        if every_steps and step % every_steps == 0:
            return "steps"
        if every_seconds and seconds_since_save >= every_seconds:
            return "seconds"
        return None
