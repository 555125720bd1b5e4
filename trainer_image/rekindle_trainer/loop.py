"""One attempt of a training run: restore, train in at most two ``fit`` calls, finish.

``fit`` cannot start in the middle of an epoch, so an attempt resumed at step
``k`` of epoch ``e`` first trains the rest of that epoch (a ``fit`` of one epoch
with ``steps - k`` steps, whose metric sums are restored), then the remaining
whole epochs. User callbacks therefore see ``on_train_begin`` once per call.

Finishing is idempotent: the final state is saved, the best epoch's weights are
loaded from the volume when ``restoreBestWeights`` asks for them, the model is
exported as ``model.keras`` and ``finished.json`` records the outcome, so that an
attempt started after the job ended only reports that outcome again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rekindle_trainer import contract, data, state, strategy
from rekindle_trainer.callback import Position, Preempted, RekindleCallback, RunInfo
from rekindle_trainer.config import ConfigError, RuntimeEnv, TrainerConfig
from rekindle_trainer.contract import Outcome, ProgressKind, TerminationMessage
from rekindle_trainer.early_stopping import EarlyStoppingState
from rekindle_trainer.metrics import Health, TrainerMetrics
from rekindle_trainer.position import read as read_position
from rekindle_trainer.progress import ProgressLog
from rekindle_trainer.saver import BackgroundSaver
from rekindle_trainer.setup import TrainingSetup
from rekindle_trainer.store import (
    FINISHED_FILE,
    CheckpointStore,
    Loaded,
    Published,
    Snapshot,
)

log = logging.getLogger(__name__)

MODEL_EXPORT = "model.keras"


@dataclass
class Services:
    """What an attempt reports to: metrics, health, progress, and the SIGTERM flag."""

    metrics: TrainerMetrics
    health: Health
    progress: ProgressLog
    stop_requested: threading.Event


def _on_published(services: Services, store: CheckpointStore, config: TrainerConfig) -> Any:
    """The writer thread's follow-up to each publish: metrics, progress event, pruning."""

    def follow_up(snapshot: Snapshot, published: Published) -> None:
        m = services.metrics
        trigger = str(snapshot.meta["trigger"])
        m.checkpoints_saved.labels(trigger).inc()
        m.checkpoint_seconds.observe(published.seconds)
        m.checkpoint_bytes.set(published.nbytes)
        m.written_bytes.inc(published.nbytes)
        m.last_checkpoint_time.set(time.time())
        services.progress.emit(
            ProgressKind.CHECKPOINT,
            checkpoint=published.name,
            epoch=snapshot.meta["epoch"],
            step=snapshot.meta["step"],
            seconds=round(published.seconds, 4),
            bytes=published.nbytes,
            trigger=trigger,
        )
        best_epoch = snapshot.meta["early_stopping"].get("best_epoch")
        best = None
        if config.checkpoint.keep_best and best_epoch is not None:
            best = store.find_epoch_end(int(best_epoch))
        removed = store.prune(published.name, best)
        if removed:
            log.info("pruned checkpoints %s", ", ".join(removed))

    return follow_up


def _message(
    outcome: Outcome,
    *,
    callback: RekindleCallback | None,
    position: Position,
    es_state: EarlyStoppingState | None,
    config: TrainerConfig,
    store: CheckpointStore,
    replayable: bool,
    lost: int,
    error: str | None = None,
) -> TerminationMessage:
    if callback is not None and callback.stopper is not None:
        es_state = callback.stopper.state
    names = [n for n in store.names() if n not in store.corrupt]
    return TerminationMessage(
        outcome=outcome,
        epoch=position.epoch,
        step=position.step,
        best_metric=es_state.best if es_state else None,
        monitor=config.early_stopping.monitor,
        best_epoch=(
            es_state.best_epoch + 1 if es_state and es_state.best_epoch is not None else None
        ),
        early_stop_epoch=(
            es_state.stopped_epoch + 1
            if es_state and es_state.stopped_epoch is not None and config.early_stopping.enabled
            else None
        ),
        checkpoint=names[-1] if names else None,
        replayable=replayable,
        lost_steps=lost,
        error=error,
    )


def _export(model: Any, root: Path) -> None:
    """Write ``model.keras`` by a temporary name and a rename; a failure is only logged."""
    temp = root / f"{contract.TEMP_PREFIX}export.keras"
    try:
        model.save(temp)
        temp.replace(root / MODEL_EXPORT)
    except Exception:  # a custom model that cannot be serialized still has its checkpoints
        log.warning("could not export %s", MODEL_EXPORT, exc_info=True)
        temp.unlink(missing_ok=True)


def run_attempt(
    setup: TrainingSetup, config: TrainerConfig, runtime: RuntimeEnv, services: Services
) -> TerminationMessage:
    """Train one attempt to its end and return the termination message (nothing written yet).

    Raises :class:`ConfigError` for data or settings that cannot work, and
    :class:`state.StateMismatch` when the newest checkpoint belongs to another model.
    """
    store = CheckpointStore(runtime.checkpoint_dir, keep=config.checkpoint.keep)
    source = data.make_source(
        setup.train, config.batch_size, config.seed, config.steps_per_epoch, setup.replayable
    )
    validation = data.validation_arguments(setup.validation, config.batch_size)
    es = config.early_stopping
    if es.monitor.startswith("val_") and not validation and (es.enabled or es.restore_best_weights):
        raise ConfigError(
            "earlyStopping.monitor",
            f"{es.monitor!r} needs validation data, but the entrypoint returned none; "
            "return validation data or monitor a training log such as 'loss'",
        )
    m = services.metrics
    m.epochs_budget.set(config.epochs)
    m.attempt.set(runtime.attempt)

    finished = store.read_json(FINISHED_FILE)
    if finished is not None and "message" in finished:
        log.info("job already finished (%s); nothing to train", finished.get("outcome"))
        message = TerminationMessage.from_json(str(finished["message"]))
        services.progress.emit(ProgressKind.FINISHED, outcome=message.outcome.value)
        return message

    removed = store.remove_unfinished()
    if removed:
        log.warning("removed unfinished writes %s", ", ".join(removed))
    loaded, skipped = store.latest_valid()
    for name, reason in skipped:
        m.corrupt.inc()
        log.warning("checkpoint %s skipped: %s", name, reason)

    position = Position()
    es_state: EarlyStoppingState | None = None
    replayable = source.replayable
    lost = 0
    replicas = strategy.replicas(setup.model)
    if loaded is not None:
        position, es_state, lost, replayable = _resume_point(loaded, store, source, replayable)
        _check_replicas(loaded, replicas)
    if not replayable:
        log.warning(
            "the training data (%s) cannot be replayed exactly: a resumed run skips the batches "
            "already trained but may see them in another order",
            source.kind,
        )
    m.epoch.set(position.epoch)
    m.step.set(position.step)
    services.progress.emit(
        ProgressKind.STARTED,
        epoch=position.epoch,
        step=position.step,
        epochs=config.epochs,
        steps_per_epoch=source.steps_per_epoch,
        attempt=runtime.attempt,
    )
    if loaded is not None:
        m.restores.inc()
        m.lost_steps.inc(lost)
        services.progress.emit(
            ProgressKind.RESTORED,
            checkpoint=loaded.name,
            epoch=position.epoch,
            step=position.step,
            lost_steps=lost,
        )
        log.info("resuming from %s (epoch %d, step %d)", loaded.name, position.epoch, position.step)

    saver = BackgroundSaver(store, _on_published(services, store, config))
    callback = RekindleCallback(
        config=config,
        info=RunInfo(runtime.attempt, replayable, source.kind, source.steps_per_epoch, replicas),
        store=store,
        saver=saver,
        metrics=m,
        health=services.health,
        progress=services.progress,
        position=position,
        stop_requested=services.stop_requested,
        restore_from=loaded,
        stopper_state=es_state,
    )
    already_stopped = es_state is not None and es_state.stopped_epoch is not None and es.enabled
    try:
        if not already_stopped:
            _fit(setup, config, source, validation, callback)
    except Preempted:
        saver.drain()
        services.progress.emit(ProgressKind.FINISHED, outcome=Outcome.PREEMPTED.value)
        return _message(
            Outcome.PREEMPTED,
            callback=callback,
            position=position,
            es_state=es_state,
            config=config,
            store=store,
            replayable=replayable,
            lost=lost,
        )
    except BaseException:
        saver.drain_quietly()  # a crash still lets the write in flight publish
        services.progress.emit(ProgressKind.FINISHED, outcome=Outcome.FAILED.value)
        raise
    finally:
        services.health.phase = "finishing"
        callback.close()
    saver.drain()
    if callback.stopper is None:  # nothing was trained in this attempt
        callback.set_model(setup.model)
        callback.on_train_begin()
    outcome = (
        Outcome.EARLY_STOPPED if callback.early_stopped or already_stopped else Outcome.COMPLETED
    )
    _finish(setup.model, callback, store, saver, runtime.checkpoint_dir)
    message = _message(
        outcome,
        callback=callback,
        position=position,
        es_state=es_state,
        config=config,
        store=store,
        replayable=replayable,
        lost=lost,
    )
    store.write_json(FINISHED_FILE, {"outcome": outcome.value, "message": message.to_json()})
    services.progress.emit(ProgressKind.FINISHED, outcome=outcome.value)
    return message


def _resume_point(
    loaded: Loaded, store: CheckpointStore, source: data.Source, replayable: bool
) -> tuple[Position, EarlyStoppingState, int, bool]:
    """Position, early-stopping state, lost steps and replayability from a checkpoint."""
    manifest = loaded.manifest
    position = Position(
        epoch=int(manifest["epoch"]),
        step=int(manifest["step"]),
        step_in_epoch=int(manifest.get("step_in_epoch", 0)),
    )
    saved_data = manifest.get("data", {})
    if saved_data.get("steps_per_epoch") != source.steps_per_epoch:
        log.warning(
            "steps per epoch changed from %s to %s since %s: the data position cannot be replayed",
            saved_data.get("steps_per_epoch"),
            source.steps_per_epoch,
            loaded.name,
        )
        replayable = False
        if position.step_in_epoch >= source.steps_per_epoch:
            position.step_in_epoch = 0
            position.epoch += 1
    es_state = EarlyStoppingState.from_dict(manifest.get("early_stopping", {}))
    reached = read_position(store.root)
    lost = max(0, reached.step - position.step) if reached is not None else 0
    return position, es_state, lost, replayable


def _check_replicas(loaded: Loaded, replicas: int) -> None:
    """Warn when the checkpoint was written by another number of replicas.

    It resumes all the same: the state is one copy of every variable (mirrored
    variables are equal on every replica), the data order and the global batch do not
    depend on the replicas. The rounding of the summed gradients does, and so do the
    dropout masks (each replica draws one for its slice of the batch), so the run is no
    longer bitwise identical to one trained on a fixed number of replicas.
    """
    saved = int(loaded.manifest.get("replicas", 1))
    if saved != replicas:
        log.warning(
            "%s was written by %d replica(s), this attempt has %d: resuming at the same step "
            "with the same global batch, but gradients now sum in another order and dropout "
            "masks split another way, so the weights will not be bitwise identical to a run "
            "on a fixed number of replicas",
            loaded.name,
            saved,
            replicas,
        )


def _fit(
    setup: TrainingSetup,
    config: TrainerConfig,
    source: data.Source,
    validation: dict[str, Any],
    callback: RekindleCallback,
) -> None:
    """The rest of an interrupted epoch, then whole epochs, in ``model.fit`` calls."""
    model = setup.model
    callbacks = [callback, *setup.callbacks]
    position = callback.position
    if position.step_in_epoch and position.epoch < config.epochs:
        segment = source.segment(position.epoch, position.epoch + 1, position.step_in_epoch)
        with strategy.uneven_first_batch(model):
            model.fit(
                segment.x,
                epochs=position.epoch + 1,
                initial_epoch=position.epoch,
                steps_per_epoch=segment.steps_per_epoch,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,
                **validation,
            )
        if callback.early_stopped:
            return
    if position.epoch < config.epochs:
        segment = source.segment(position.epoch, config.epochs, 0)
        with strategy.uneven_first_batch(model):
            model.fit(
                segment.x,
                epochs=config.epochs,
                initial_epoch=position.epoch,
                steps_per_epoch=segment.steps_per_epoch,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,
                **validation,
            )


def _finish(
    model: Any,
    callback: RekindleCallback,
    store: CheckpointStore,
    saver: BackgroundSaver,
    root: Path,
) -> None:
    """Save the final state if unsaved, load the best weights if asked, export the model."""
    position = callback.position
    names = store.names()
    if contract.checkpoint_name(position.epoch, position.step) not in names:
        saver.submit(callback.snapshot("final", callback.last_logs or None), wait=True)
    es = callback.config.early_stopping
    stopper = callback.stopper
    if es.restore_best_weights and stopper is not None and stopper.state.best_epoch is not None:
        best = store.find_epoch_end(stopper.state.best_epoch)
        if best is None:
            log.warning(
                "restoreBestWeights: the checkpoint of epoch %d is gone; keeping the last weights",
                stopper.state.best_epoch + 1,
            )
        else:
            state.restore(model, store.load(best).groups, ("model",))
            log.info("restored the weights of epoch %d from %s", stopper.state.best_epoch + 1, best)
    _export(model, root)
