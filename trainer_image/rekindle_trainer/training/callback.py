"""The Keras callback: Keras' hooks wired to the position, the rules, the saves and the reports.

Each hook asks the pure rules what to do (:class:`SavePolicy` for saves,
:class:`EarlyStopper` for early stopping), has the :class:`Checkpointer` save
and the :class:`Reporter` report. It also restores a checkpoint's state into
the model when training begins, and on SIGTERM lets the current step finish,
saves, and raises :class:`Preempted` out of ``fit``. One instance spans the
one or two ``fit`` calls of an attempt.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import keras

from rekindle_trainer.checkpoint import state
from rekindle_trainer.checkpoint.store import Loaded
from rekindle_trainer.core.early_stopping import (
    EarlyStopper,
    EarlyStoppingState,
    EpochVerdict,
    direction_at_epoch_end,
    has_stopped,
)
from rekindle_trainer.core.position import Position
from rekindle_trainer.core.save_policy import SavePolicy
from rekindle_trainer.reporting.reporter import Reporter, plain_logs
from rekindle_trainer.training import iterators
from rekindle_trainer.training.agreement import Agreement
from rekindle_trainer.training.checkpointing import Checkpointer, RunInfo
from rekindle_trainer.training.iterators import IteratorTracker


class Preempted(Exception):
    """Raised out of ``fit`` after the SIGTERM save."""


def compiled_directions(model: Any) -> list[tuple[str, str]]:
    """``(name, direction)`` of the compiled metrics that Keras' ``mode="auto"`` consults.

    Keras 3.15 looks only inside the model's ``CompileMetrics`` and ``MetricsList``
    (not at the loss trackers, nor at metrics a model adds itself), and only at
    metrics that have a ``_direction``. They exist once the first step has run,
    which is why the direction is resolved at the first epoch's end.
    """
    from keras.src.trainers import compile_utils  # noqa: PLC0415 - Keras' own test of the kind

    found: list[tuple[str, str]] = []
    for metric in getattr(model, "metrics", []):
        if isinstance(metric, compile_utils.CompileMetrics | compile_utils.MetricsList):
            inner = [m for m in metric.metrics if hasattr(m, "_direction")]
            found += [(m.name, str(m._direction)) for m in inner]
    return found


@dataclass(eq=False)
class RekindleCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Counts steps, saves, stops early and preempts.

    Args:
        info: the attempt's configuration and data facts.
        position: where the run stands; updated in place.
        early_stopping: the early-stopping state (restored or fresh); updated in place.
        checkpointer: takes the saves.
        reporter: reports steps, epochs, early stops and preemptions.
        stop_requested: set by the SIGTERM handler.
        restore_from: the checkpoint to load into the model when training begins.
        agreement: on a gang, makes every worker see SIGTERM and the save timer at the
            same step (see :mod:`~rekindle_trainer.training.agreement`).
        iterator: the ``tf.data`` iterator tracker, or ``None``; a save inside an epoch
            puts the iterator's state into the same checkpoint as the weights.
    """

    info: RunInfo
    position: Position
    early_stopping: EarlyStoppingState
    checkpointer: Checkpointer
    reporter: Reporter
    stop_requested: threading.Event
    restore_from: Loaded | None = None
    agreement: Agreement | None = None
    #: The training dataset's iterator, whose state mid-epoch saves hold (``tf.data`` only).
    iterator: IteratorTracker | None = None
    #: Created at the first epoch's end, as Keras resolves ``mode="auto"`` then.
    stopper: EarlyStopper | None = None
    #: The last epoch's logs, for the final save's manifest.
    last_logs: dict[str, float] = field(default_factory=dict)
    _policy: SavePolicy = field(init=False)
    #: A checkpoint whose metric sums are added after the first step of a resumed epoch.
    _metrics_from: Loaded | None = None

    def __post_init__(self) -> None:
        super().__init__()
        self._policy = SavePolicy.of(self.info.config)

    # ----------------------------------------------------------- Keras hooks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_from is not None:
            state.build_optimizer(self.model)
            state.restore(self.model, self.restore_from.groups, ("model", "optimizer"))
            if self.position.step_in_epoch:
                # Resuming mid-epoch: the metrics' sums so far are added after the first
                # step (Keras creates the compiled metrics' variables only in that step).
                self._metrics_from = self.restore_from
            self.restore_from = None
        self.reporter.training()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.position.begin_epoch(epoch)
        if self._metrics_from is None:  # a resumed epoch keeps its restored seed generators
            state.key_seed_generators(self.model, self.info.config.seed, epoch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._metrics_from is not None:
            state.add_metrics(self.model, self._metrics_from.groups)
            self._metrics_from = None
        self.checkpointer.prepare(self.model)
        pos = self.position
        pos.batch_done(batch)  # the last step of the execution (several if steps_per_execution)
        self.reporter.step_done(pos, self.info.steps_per_epoch, logs)
        self.checkpointer.record(pos)
        stop, since_save = self._agreed()
        trigger = self._policy.after_step(
            pos.step,
            ends_epoch=pos.step_in_epoch >= self.info.steps_per_epoch,
            stop_requested=stop,
            seconds_since_save=since_save,
        )
        if trigger is not None:
            self._save(trigger, logs=None)
        if trigger == "sigterm":
            self._preempt()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = plain_logs(logs)
        stopper = self._stopper(values)  # a monitor that is not logged ends the attempt here
        pos = self.position
        pos.end_epoch(epoch)
        self.last_logs = values
        es = self.info.config.early_stopping
        verdict = stopper.on_epoch_end(epoch, values) if stopper else EpochVerdict(False, False)
        best = self.early_stopping.best
        self.reporter.epoch_done(
            pos, values, es.monitor, best, best_epoch=self.early_stopping.best_epoch
        )
        stopping = verdict.stop and es.enabled
        stop, since_save = self._agreed()
        trigger = self._policy.at_epoch_end(
            pos.epoch,
            pos.step,
            improved=verdict.improved,
            stopping=stopping,
            stop_requested=stop,
            seconds_since_save=since_save,
        )
        if trigger is not None:
            self._save(trigger, logs=values)
        self.checkpointer.record(pos)
        if stopping:
            self.model.stop_training = True
            self.reporter.early_stopped(pos.epoch, self.info.config.epochs, es.monitor, best)
        elif stop:
            self._preempt()

    # --------------------------------------------------------------- helpers

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping has ended the run (in this attempt or an earlier one)."""
        return has_stopped(self.early_stopping, self.info.config.early_stopping)

    def _agreed(self) -> tuple[bool, float]:
        """SIGTERM seen and seconds since the last save, as the whole gang sees them.

        One worker: as they are. A gang: SIGTERM if any worker got one, and the timer
        due (infinite seconds) if it is due on any worker, so that all save together.
        """
        stop, since = self.stop_requested.is_set(), self.checkpointer.seconds_since_save()
        if self.agreement is None or not self.agreement.gang:
            return stop, since
        every = self.info.config.checkpoint.every_seconds
        stop, due = self.agreement.agree((stop, bool(every) and since >= every))
        if stop:
            self.stop_requested.set()  # this worker stops as the one that got the signal
        return stop, math.inf if due else 0.0

    def _stopper(self, values: dict[str, float]) -> EarlyStopper | None:
        """The rule, created at the first epoch end; ``None`` while one not in use cannot run.

        Raises :class:`~rekindle_trainer.core.config.ConfigError` (the attempt ends
        ``invalid``) when the monitor is not logged or ``auto`` cannot tell its direction.
        """
        es = self.info.config.early_stopping
        direction = direction_at_epoch_end(es, values, compiled_directions(self.model))
        if direction is not None and self.stopper is None:
            self.stopper = EarlyStopper(es, direction, self.early_stopping)
        return self.stopper if direction is not None else None

    def manifest(self, trigger: str, logs: dict[str, float] | None) -> dict[str, Any]:
        """The manifest facts of a save of ``trigger`` now."""
        return self.info.manifest(self.position, self.early_stopping, trigger, logs)

    def _save(self, trigger: str, logs: dict[str, float] | None) -> None:
        wait = trigger == "sigterm"  # the process exits right after: the write must land
        meta = self.manifest(trigger, logs)
        extra = self._iterator_state(meta)
        self.checkpointer.save(self.model, meta, wait=wait, extra=extra)

    def _iterator_state(self, meta: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
        """The iterator's state as an extra checkpoint group, inside an epoch only.

        At an epoch's end the next epoch starts a fresh iterator, so nothing is saved;
        ``meta["data"]`` records how the iterator was saved, or why it was not.
        """
        inside = 0 < self.position.step_in_epoch < self.info.steps_per_epoch
        if self.iterator is None or not inside:
            return {}
        saved = self.iterator.save()
        if saved.state is None:
            meta["data"]["iterator"] = None
            meta["data"]["iterator_missing"] = saved.why_not
            return {}
        meta["data"]["iterator"] = "symbolic" if self.iterator.symbolic else "full"
        return {iterators.GROUP: [(iterators.ARRAY, saved.state)]}

    def _preempt(self) -> None:
        self.reporter.preempted(self.position)
        raise Preempted
