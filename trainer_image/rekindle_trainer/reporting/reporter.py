"""One object that tells the world what an attempt does: metrics, progress events, health.

Training calls one method per thing that happened (a step, an epoch's end, a
published checkpoint, a preemption); the :class:`Reporter` turns it into the
Prometheus metrics, the progress file's events, ``/healthz`` and the log. It
reads no TensorFlow: Keras' logs arrive as plain numbers or as scalars that
convert with ``float``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from rekindle_trainer.contract import Outcome, ProgressKind
from rekindle_trainer.contract.live import LiveBest
from rekindle_trainer.core.position import Position
from rekindle_trainer.reporting.addenda import Addenda
from rekindle_trainer.reporting.live import LiveState
from rekindle_trainer.reporting.metrics import Health, TrainerMetrics
from rekindle_trainer.reporting.progress import ProgressLog

log = logging.getLogger(__name__)


def plain_logs(logs: Mapping[str, Any] | None) -> dict[str, float]:
    """Keras' logs as floats; values that are not numbers are left out."""
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class Reporter:
    """Feeds :class:`TrainerMetrics`, :class:`Health` and the :class:`ProgressLog` of an attempt.

    Every method runs on the training thread except :meth:`checkpoint_published`,
    which the checkpoint writer calls.
    """

    def __init__(
        self,
        metrics: TrainerMetrics,
        health: Health,
        progress: ProgressLog,
        addenda: Addenda | None = None,
        live: LiveState | None = None,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.progress = progress
        #: What the termination message must carry however the attempt ends.
        self.addenda = addenda if addenda is not None else Addenda()
        #: What ``GET /progress`` serves to the operator.
        self.live = live if live is not None else LiveState()

    # ------------------------------------------------------------ attempt start

    def attempt_began(self, attempt: int, epochs: int) -> None:
        """The attempt's number and epoch budget, before anything else is known."""
        self.metrics.attempt.set(attempt)
        self.metrics.epochs_budget.set(epochs)

    def checkpoint_skipped(self, name: str, reason: str) -> None:
        """The store found checkpoint ``name`` corrupt (it logged why) and set it aside."""
        self.metrics.corrupt.inc()

    def started(
        self,
        position: Position,
        *,
        epochs: int,
        steps_per_epoch: int,
        attempt: int,
        restored_from: str | None,
        lost_steps: int,
        note: str | None = None,
    ) -> None:
        """Training starts at ``position``, from checkpoint ``restored_from`` if resumed.

        The attempt trains ``lost_steps`` again: those the last attempt trained past
        where this one starts (all of them when no valid checkpoint was left, which
        ``note`` then says).
        """
        self.metrics.epoch.set(position.epoch)
        self.metrics.step.set(position.step)
        self.metrics.lost_steps.inc(lost_steps)
        self.addenda.start = (position.epoch, position.step, restored_from)
        self.live.started(attempt, position.epoch, position.step, restored_from)
        at = {"epoch": position.epoch, "step": position.step}
        budget = {"epochs": epochs, "steps_per_epoch": steps_per_epoch}
        noted = {"note": note} if note else {}
        self.progress.emit(ProgressKind.STARTED, **at, **budget, attempt=attempt, **noted)
        if restored_from is None:
            return
        self.metrics.restores.inc()
        self.progress.emit(
            ProgressKind.RESTORED, checkpoint=restored_from, **at, lost_steps=lost_steps
        )
        log.info(
            "resuming from %s (epoch %d, step %d)", restored_from, position.epoch, position.step
        )

    # ----------------------------------------------------------------- training

    def training(self) -> None:
        """A ``fit`` call begins."""
        self.health.phase = "training"
        self.live.phase("training")

    def step_done(
        self, position: Position, steps_per_epoch: int, logs: Mapping[str, Any] | None
    ) -> None:
        """A step (or an execution of several) finished; ``logs`` are read only when reported.

        Reading a step's logs waits for the device, so a throttled step costs nothing.
        """
        now = time.time()
        self.addenda.clock.step(position.step)
        self.metrics.step.set(position.step)
        self.metrics.last_step_time.set(now)
        self.health.last_step = now
        self.live.step(position.step)
        if self.progress.step_due():
            self.progress.emit(
                ProgressKind.STEP,
                epoch=position.epoch + 1,
                step=position.step,
                step_in_epoch=position.step_in_epoch,
                steps_per_epoch=steps_per_epoch,
                logs=plain_logs(logs),
            )

    def epoch_done(
        self,
        position: Position,
        logs: Mapping[str, float],
        monitor: str,
        best: float | None,
        best_epoch: int | None = None,
    ) -> None:
        """An epoch ended: ``position.epoch`` epochs are done; ``best`` of ``monitor`` so far.

        ``best_epoch`` is 0-based (Keras' index), as early stopping keeps it.
        """
        for key, value in logs.items():
            self.metrics.log_value.labels(key).set(value)
        self.metrics.epoch.set(position.epoch)
        if best is not None:
            self.metrics.best_value.labels(monitor).set(best)
        live_best = None
        if best is not None:
            one_based = best_epoch + 1 if best_epoch is not None else None
            live_best = LiveBest(monitor=monitor, value=best, epoch=one_based)
        self.live.epoch(position.epoch, position.step, live_best)
        self.progress.emit(
            ProgressKind.EPOCH_END, epoch=position.epoch, step=position.step, logs=dict(logs)
        )

    def early_stopped(
        self, epochs_done: int, epochs: int, monitor: str, best: float | None
    ) -> None:
        """Early stopping ends the run after ``epochs_done`` of the ``epochs`` budgeted."""
        self.metrics.early_stops.inc()
        self.metrics.early_stop_epoch.set(epochs_done)
        self.metrics.epochs_saved.set(epochs - epochs_done)
        self.progress.emit(ProgressKind.EARLY_STOPPED, epoch=epochs_done, best_metric=best)
        log.info("early stopping at epoch %d (best %s=%s)", epochs_done, monitor, best)

    def preempted(self, position: Position) -> None:
        """SIGTERM was handled: the state at ``position`` is saved and training stops."""
        self.metrics.preemptions.inc()
        log.warning("SIGTERM: saved at epoch %d step %d; stopping", position.epoch, position.step)

    # ------------------------------------------------------------------- saves

    def save_stalled(self, seconds: float) -> None:
        """Training waited ``seconds`` for a save (the copy to host memory)."""
        self.metrics.stall_seconds.observe(seconds)
        self.addenda.clock.stalled(seconds)

    def waited_for_saves(self, seconds: float) -> None:
        """Training waited ``seconds`` for saves to be written (a final save, a drain)."""
        self.addenda.clock.stalled(seconds)

    def restored(self, seconds: float) -> None:
        """Finding and reading the checkpoint to resume from took ``seconds``."""
        self.addenda.clock.restored(seconds)

    def save_superseded(self, trigger: str) -> None:
        """A queued save of ``trigger`` was dropped for a newer one."""
        self.metrics.checkpoints_superseded.labels(trigger).inc()

    def checkpoint_published(
        self, name: str, *, trigger: str, epoch: int, step: int, seconds: float, nbytes: int
    ) -> None:
        """The writer published checkpoint ``name`` (``seconds`` after the save began)."""
        m = self.metrics
        m.checkpoints_saved.labels(trigger).inc()
        m.checkpoint_seconds.observe(seconds)
        m.checkpoint_bytes.set(nbytes)
        m.written_bytes.inc(nbytes)
        m.last_checkpoint_time.set(time.time())
        self.live.checkpoint(name, epoch=epoch, step=step, seconds=seconds)
        self.progress.emit(
            ProgressKind.CHECKPOINT,
            checkpoint=name,
            epoch=epoch,
            step=step,
            seconds=round(seconds, 4),
            bytes=nbytes,
            trigger=trigger,
        )

    # --------------------------------------------------------------------- end

    def finishing(self) -> None:
        """Training is over; the final save and the export follow."""
        self.health.phase = "finishing"
        self.live.phase("finishing")

    def finished(self, outcome: Outcome) -> None:
        """The attempt ended with ``outcome``."""
        self.progress.emit(ProgressKind.FINISHED, outcome=outcome.value)
