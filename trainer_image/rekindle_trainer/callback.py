"""The Keras callback that counts steps, saves, stops early and handles SIGTERM.

It keeps the run's position (epoch, global step, step within the epoch) across
the one or two ``fit`` calls of an attempt, snapshots the state at each save
trigger (every N epochs, every N steps, every T seconds, on SIGTERM, at the
best epoch when ``restoreBestWeights``), runs :class:`EarlyStopper` on every
epoch's logs, and on SIGTERM lets the current step finish, saves, and raises
:class:`Preempted` out of ``fit``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from rekindle_trainer import contract, hostcopy, state
from rekindle_trainer.config import ConfigError, TrainerConfig
from rekindle_trainer.contract import ProgressKind
from rekindle_trainer.early_stopping import EarlyStopper, EarlyStoppingState
from rekindle_trainer.hostcopy import BufferPool
from rekindle_trainer.metrics import Health, TrainerMetrics
from rekindle_trainer.position import PositionRecord
from rekindle_trainer.progress import ProgressLog
from rekindle_trainer.saver import BackgroundSaver
from rekindle_trainer.store import CheckpointStore, Loaded, Snapshot

log = logging.getLogger(__name__)


class Preempted(Exception):
    """Raised out of ``fit`` after the SIGTERM save."""


@dataclass
class Position:
    """Where the run stands: ``epoch`` is the 0-based epoch in progress (= epochs done)."""

    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0


@dataclass
class RunInfo:
    """Facts about the attempt that go into every manifest."""

    attempt: int
    replayable: bool
    data_kind: str
    steps_per_epoch: int
    replicas: int = 1


def resolve_direction(model: Any, monitor: str, mode: str) -> str:
    """Keras' ``mode="auto"`` rule: loss is minimized, else the metric's own direction."""
    if mode in ("min", "max"):
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return "min"
    for metric in model.metrics:
        for inner in getattr(metric, "metrics", [metric]):
            if inner.name == name and hasattr(inner, "_direction"):
                return "max" if inner._direction == "up" else "min"
    raise ConfigError(
        "earlyStopping.mode",
        f"cannot tell whether {monitor!r} should go down or up; set mode to 'min' or 'max'",
    )


def _floats(logs: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _supersedable(snapshot: Snapshot) -> bool:
    return snapshot.meta.get("trigger") in contract.SUPERSEDABLE_TRIGGERS


@dataclass(eq=False)
class RekindleCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Saves, early-stops and preempts; one instance spans all ``fit`` calls of an attempt."""

    config: TrainerConfig
    info: RunInfo
    store: CheckpointStore
    saver: BackgroundSaver
    metrics: TrainerMetrics
    health: Health
    progress: ProgressLog
    position: Position
    stop_requested: threading.Event
    restore_from: Loaded | None = None
    stopper_state: EarlyStoppingState | None = None
    stopper: EarlyStopper | None = None
    clock: Callable[[], float] = time.monotonic
    preempted: bool = False
    early_stopped: bool = False
    last_logs: dict[str, float] = field(default_factory=dict)
    pool: BufferPool = field(default_factory=BufferPool)
    last_stall: float = 0.0
    _pool_ready: bool = False
    _model_restored: bool = False
    _merge_metrics: bool = False
    _offset: int = 0
    _last_save: float = 0.0
    _record: PositionRecord | None = None

    def __post_init__(self) -> None:
        super().__init__()
        self._last_save = self.clock()

    # ----------------------------------------------------------- Keras hooks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_from is not None and not self._model_restored:
            state.build_optimizer(self.model)
            state.restore(self.model, self.restore_from.groups, ("model", "optimizer"))
            self._model_restored = True
        if self.stopper is None:
            es = self.config.early_stopping
            direction = resolve_direction(self.model, es.monitor, es.mode)
            self.stopper = EarlyStopper(es, direction, self.stopper_state)
        self.health.phase = "training"

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.position.epoch = epoch
        # Keras numbers the batches of each fit call's epoch from 0: the first fit of a
        # resumed attempt starts at step_in_epoch, so batch b is step offset + b + 1.
        self._offset = self.position.step_in_epoch
        if self.position.step_in_epoch and self.restore_from is not None:
            # Resuming mid-epoch: the metrics' sums so far are added after the first step
            # (Keras creates the compiled metrics' variables only in that step).
            self._merge_metrics = True
            return
        self.position.step_in_epoch = 0
        state.key_seed_generators(self.model, self.config.seed, epoch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pos = self.position
        if self._merge_metrics:
            assert self.restore_from is not None
            state.add_metrics(self.model, self.restore_from.groups)
            self._merge_metrics = False
        # `batch` is the last step of the execution (several with steps_per_execution > 1).
        reached = self._offset + batch + 1
        if not self._pool_ready:
            # After the first step every variable exists (optimizer slots, metric sums):
            # the host buffers for saves are allocated now and faulted in on a helper thread.
            self.pool.prepare(state.variables(self.model))
            self._pool_ready = True
        pos.step += max(1, reached - pos.step_in_epoch)
        pos.step_in_epoch = max(pos.step_in_epoch + 1, reached)
        now = time.time()
        self.metrics.step.set(pos.step)
        self.metrics.last_step_time.set(now)
        self.health.last_step = now
        if self.progress.step_due():
            self.progress.emit(
                ProgressKind.STEP,
                epoch=pos.epoch + 1,
                step=pos.step,
                step_in_epoch=pos.step_in_epoch,
                steps_per_epoch=self.info.steps_per_epoch,
                logs=_floats(logs),
            )
        self._write_position()
        if pos.step_in_epoch >= self.info.steps_per_epoch:
            return  # the epoch's end follows: SIGTERM and saves are handled there
        if self.stop_requested.is_set():
            self._save("sigterm", logs=None, wait=True)
            self._preempt()
        policy = self.config.checkpoint
        if policy.every_steps and pos.step % policy.every_steps == 0:
            self._save("steps", logs=None)
        elif policy.every_seconds and self.clock() - self._last_save >= policy.every_seconds:
            self._save("seconds", logs=None)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        assert self.stopper is not None
        pos = self.position
        pos.epoch = epoch + 1
        pos.step_in_epoch = 0
        values = _floats(logs)
        self.last_logs = values
        for key, value in values.items():
            self.metrics.log_value.labels(key).set(value)
        self.metrics.epoch.set(pos.epoch)
        es = self.config.early_stopping
        if es.monitor not in values and epoch >= es.start_from_epoch:
            log.warning("early stopping: %r is not among the logs %s", es.monitor, sorted(values))
        verdict = self.stopper.on_epoch_end(epoch, values)
        best = self.stopper.state.best
        if best is not None:
            self.metrics.best_value.labels(es.monitor).set(best)
        self.progress.emit(ProgressKind.EPOCH_END, epoch=epoch + 1, step=pos.step, logs=values)
        stop = verdict.stop and es.enabled
        policy = self.config.checkpoint
        trigger = None
        if self.stop_requested.is_set() and not stop:
            trigger = "sigterm"
        elif policy.every_epochs and (epoch + 1) % policy.every_epochs == 0:
            trigger = "epoch"
        elif verdict.improved and es.restore_best_weights:
            trigger = "epoch"  # restore_best_weights reads the best epoch from the volume
        elif policy.every_steps and pos.step % policy.every_steps == 0:
            trigger = "steps"
        elif policy.every_seconds and self.clock() - self._last_save >= policy.every_seconds:
            trigger = "seconds"
        if trigger is not None and not stop:
            self._save(trigger, logs=values, wait=trigger == "sigterm")
        self._write_position()
        if stop:
            self.early_stopped = True
            self.model.stop_training = True
            self.metrics.early_stops.inc()
            self.metrics.early_stop_epoch.set(epoch + 1)
            self.metrics.epochs_saved.set(self.config.epochs - (epoch + 1))
            self.progress.emit(ProgressKind.EARLY_STOPPED, epoch=epoch + 1, best_metric=best)
            log.info("early stopping at epoch %d (best %s=%s)", epoch + 1, es.monitor, best)
        elif self.stop_requested.is_set():
            self._preempt()

    # --------------------------------------------------------------- helpers

    def snapshot(self, trigger: str, logs: dict[str, float] | None) -> Snapshot:
        """Fresh host copy of the state at the current position, with its manifest facts."""
        return Snapshot(groups=state.snapshot(self.model), meta=self._meta(trigger, logs))

    def _meta(self, trigger: str, logs: dict[str, float] | None) -> dict[str, Any]:
        assert self.stopper is not None
        pos = self.position
        return {
            "epoch": pos.epoch,
            "step": pos.step,
            "step_in_epoch": pos.step_in_epoch,
            "trigger": trigger,
            "logs": logs,
            "monitor": self.config.early_stopping.monitor,
            "early_stopping": self.stopper.state.to_dict(),
            "data": {
                "kind": self.info.data_kind,
                "replayable": self.info.replayable,
                "seed": self.config.seed,
                "steps_per_epoch": self.info.steps_per_epoch,
                "batch_size": self.config.batch_size,
            },
            "attempt": self.info.attempt,
            "epochs_budget": self.config.epochs,
            "replicas": self.info.replicas,
        }

    def _save(self, trigger: str, logs: dict[str, float] | None, *, wait: bool = False) -> None:
        """Copy the state into reused host buffers and queue it; the writer does the rest."""
        started = time.perf_counter()
        values = state.variables(self.model)
        buffers = self.pool.try_acquire(values)
        if buffers is None:
            withdrawn = self.saver.withdraw_queued(_supersedable)
            if withdrawn is not None:
                self.metrics.checkpoints_superseded.labels(withdrawn.meta["trigger"]).inc()
                buffers = self.pool.try_acquire(values)
        if buffers is None:  # every set is being written or holds a save that must stay
            buffers = self.pool.acquire(values)
        try:
            hostcopy.copy_into(values, buffers)
            snap = Snapshot(groups=buffers.groups, meta=self._meta(trigger, logs))
            self.saver.submit(snap, wait=wait, release=lambda: self.pool.give_back(buffers))
        except BaseException:
            self.pool.give_back(buffers)
            raise
        if not wait:
            self.last_stall = time.perf_counter() - started
            self.metrics.stall_seconds.observe(self.last_stall)
        self._last_save = self.clock()

    def close(self) -> None:
        """Release the position record."""
        if self._record is not None:
            self._record.close()
            self._record = None

    def _write_position(self) -> None:
        if self._record is None:
            self._record = PositionRecord(self.store.root, self.info.attempt)
        self._record.update(self.position.epoch, self.position.step)

    def _preempt(self) -> None:
        self.preempted = True
        self.metrics.preemptions.inc()
        log.warning(
            "SIGTERM: saved at epoch %d step %d; stopping", self.position.epoch, self.position.step
        )
        raise Preempted
