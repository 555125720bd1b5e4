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
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rekindle_trainer import contract
from rekindle_trainer.checkpoint import state
from rekindle_trainer.checkpoint.position_file import account
from rekindle_trainer.checkpoint.store import (
    FINISHED_FILE,
    CheckpointStore,
    Loaded,
    no_valid_checkpoint_line,
)
from rekindle_trainer.contract import Outcome, TerminationMessage
from rekindle_trainer.contract.training_config import mode_warning
from rekindle_trainer.core.config import ConfigError, RuntimeEnv, TrainerConfig
from rekindle_trainer.core.early_stopping import EarlyStoppingState
from rekindle_trainer.core.position import Position
from rekindle_trainer.reporting.reporter import Reporter
from rekindle_trainer.training import data, iterators, keras_mwms, strategy
from rekindle_trainer.training.agreement import Agreement
from rekindle_trainer.training.callback import Preempted, RekindleCallback
from rekindle_trainer.training.checkpointing import Checkpointer, RunInfo
from rekindle_trainer.training.setup import TrainingSetup

log = logging.getLogger(__name__)

MODEL_EXPORT = "model.keras"


@dataclass(frozen=True)
class TrainingData:
    """The training data as fit segments, and ``fit``'s validation arguments."""

    source: data.Source
    validation: dict[str, Any]


@dataclass
class RunState:
    """The run as this attempt carries it on; ``position`` and ``early_stopping`` move in place.

    Attributes:
        position: where the run stands.
        early_stopping: the early-stopping state.
        replayable: whether the data order is the one an uninterrupted run would see.
        loaded: the checkpoint the attempt resumed from, if any.
        lost_steps: steps trained again because the last save came before the kill.
        lost_total: the job's lost steps so far, these included (for the termination message).
    """

    position: Position
    early_stopping: EarlyStoppingState
    replayable: bool
    loaded: Loaded | None = None
    lost_steps: int = 0
    lost_total: int = 0


def run_attempt(
    setup: TrainingSetup,
    config: TrainerConfig,
    runtime: RuntimeEnv,
    reporter: Reporter,
    stop_requested: threading.Event,
) -> TerminationMessage:
    """Train one attempt to its end and return the termination message (nothing written yet).

    Raises :class:`ConfigError` for data or settings that cannot work, and
    :class:`state.StateMismatch` when the newest checkpoint belongs to another model.
    """
    chief = runtime.role.is_chief
    store = CheckpointStore(
        runtime.checkpoint_dir,
        keep=config.checkpoint.keep,
        epochs=config.epochs,
        on_corrupt=reporter.checkpoint_skipped,
        read_only=not chief,  # a gang's other workers read the chief's checkpoints only
    )
    training_data = _build_data(setup, config)
    reporter.attempt_began(runtime.attempt, config.epochs)
    finished = _finished_before(store, reporter)
    if finished is not None:
        return finished
    source, replicas = training_data.source, strategy.replicas(setup.model)
    restore_began = time.perf_counter()
    run = _restore(store, source, replicas, reporter)
    if run.loaded is not None:
        reporter.restored(time.perf_counter() - restore_began)
    reporter.started(
        run.position,
        epochs=config.epochs,
        steps_per_epoch=source.steps_per_epoch,
        attempt=runtime.attempt,
        restored_from=run.loaded.name if run.loaded is not None else None,
        lost_steps=run.lost_steps,
        note="; ".join(reporter.addenda.notes) or None,
    )
    info = RunInfo(
        config,
        runtime.attempt,
        run.replayable,
        source.kind,
        source.steps_per_epoch,
        replicas,
        lost_before=run.lost_total,
        chief=chief,
    )
    callback = RekindleCallback(
        info,
        run.position,
        run.early_stopping,
        Checkpointer(store, reporter, info),
        reporter,
        stop_requested,
        run.loaded,
        Agreement(setup.model.distribute_strategy),
        getattr(source, "tracker", None),
    )
    outcome = _train(setup, training_data, callback)
    if outcome is Outcome.PREEMPTED:
        message = _message(outcome, run, config, store, callback.checkpointer)
    else:
        message = _finish(setup.model, callback, run, store, outcome)
    reporter.finished(outcome)
    return message


def _build_data(setup: TrainingSetup, config: TrainerConfig) -> TrainingData:
    """The training and validation data; a monitor that needs absent validation data fails."""
    source = data.make_source(
        setup.train,
        config.batch_size,
        config.seed,
        config.steps_per_epoch,
        setup.replayable,
        shard=data.Shard.of(setup.model.distribute_strategy),
        iterator_checkpoints=_untracked_because(setup.model),
    )
    validation = data.validation_arguments(setup.validation, config.batch_size)
    es = config.early_stopping
    if es.monitor.startswith("val_") and not validation and (es.enabled or es.restore_best_weights):
        raise ConfigError(
            "earlyStopping.monitor",
            f"{es.monitor!r} needs validation data, but the entrypoint returned none; "
            "return validation data or monitor a training log such as 'loss'",
        )
    warning = mode_warning(es)
    if warning is not None:
        log.warning("%s", warning)
    return TrainingData(source, validation)


def _untracked_because(model: Any) -> str | None:
    """Why a dataset's iterator cannot be checkpointed here, or ``None`` when it can.

    Keras iterates the dataset itself only under the default strategy. Under any other
    (``MirroredStrategy``, even over one device; a gang's ``MultiWorkerMirroredStrategy``)
    the strategy builds its own per-device iterators from the dataset's graph, which
    ``tf.data`` cannot checkpoint the same way; those keep resuming by skipping.
    """
    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is None:
        return None
    return (
        f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s) builds its "
        "own iterators from the dataset, which are not checkpointed"
    )


def _finished_before(store: CheckpointStore, reporter: Reporter) -> TerminationMessage | None:
    """The message of a job that already ended (an attempt started after it only repeats it)."""
    finished = store.read_json(FINISHED_FILE)
    if finished is None or "message" not in finished:
        return None
    log.info("job already finished (%s); nothing to train", finished.get("outcome"))
    message = TerminationMessage.from_json(str(finished["message"]))
    reporter.finished(message.outcome)
    return message


def _restore(
    store: CheckpointStore, source: data.Source, replicas: int, reporter: Reporter
) -> RunState:
    """Where this attempt starts: the newest valid checkpoint, or the beginning."""
    removed = store.remove_unfinished()
    if removed:
        log.warning("removed unfinished writes %s", ", ".join(removed))
    loaded, skipped = store.latest_valid()  # each corrupt one was reported by the store
    if loaded is None and skipped:
        reporter.addenda.notes.append(no_valid_checkpoint_line(store.root, skipped))
        log.warning("%s", reporter.addenda.notes[-1])
    if loaded is None:
        run = RunState(Position(), EarlyStoppingState(), source.replayable)
    else:
        run = _resume_point(loaded, source)
        _check_replicas(loaded, replicas)
        if isinstance(source, data.DatasetSource) and run.position.step_in_epoch:
            source.restored_state = iterators.saved_state(loaded.groups)
    _count_lost_work(store, run, source)
    reporter.addenda.lost_steps = run.lost_total
    if not run.replayable:
        log.warning(
            "the training data (%s) cannot be replayed exactly: a resumed run skips the batches "
            "already trained but may see them in another order",
            source.kind,
        )
    return run


def _resume_point(loaded: Loaded, source: data.Source) -> RunState:
    """Position, early-stopping state and replayability from a checkpoint."""
    manifest = loaded.manifest
    position = Position(
        epoch=int(manifest["epoch"]),
        step=int(manifest["step"]),
        step_in_epoch=int(manifest.get("step_in_epoch", 0)),
    )
    replayable = source.replayable
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
    return RunState(position, es_state, replayable, loaded)


def _count_lost_work(store: CheckpointStore, run: RunState, source: data.Source) -> None:
    """Steps the last attempt trained past where this one starts, and the job's total."""
    saved = run.loaded.manifest.get("data", {}).get("steps_per_epoch") if run.loaded else None
    work = account(
        store.root,
        run.position.step,
        epochs=max(run.position.epoch, store.epochs or 0),
        steps_per_epoch=max(source.steps_per_epoch, saved or 0),
    )
    run.lost_steps, run.lost_total = work.lost, work.total


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


def _train(
    setup: TrainingSetup, training_data: TrainingData, callback: RekindleCallback
) -> Outcome:
    """Train until the budget, an early stop or SIGTERM; how it ended (a crash raises)."""
    checkpointer, reporter = callback.checkpointer, callback.reporter
    try:
        if not callback.stopped_early:
            _fit(setup, training_data, callback)
    except Preempted:
        checkpointer.drain()
        return Outcome.PREEMPTED
    except BaseException as exc:
        checkpointer.drain_quietly()  # a crash still lets the write in flight publish
        reporter.finished(Outcome.INVALID if isinstance(exc, ConfigError) else Outcome.FAILED)
        raise
    finally:
        reporter.finishing()
        checkpointer.stop_recording()
    checkpointer.drain()
    return Outcome.EARLY_STOPPED if callback.stopped_early else Outcome.COMPLETED


def _fit(setup: TrainingSetup, training_data: TrainingData, callback: RekindleCallback) -> None:
    """The rest of an interrupted epoch, then whole epochs, in ``model.fit`` calls."""
    position, epochs = callback.position, callback.info.config.epochs
    if position.step_in_epoch and position.epoch < epochs:
        _fit_segment(setup, training_data, callback, position.epoch + 1, position.step_in_epoch)
        if callback.stopped_early:
            return
    if position.epoch < epochs:
        _fit_segment(setup, training_data, callback, epochs, 0)


def _fit_segment(
    setup: TrainingSetup,
    training_data: TrainingData,
    callback: RekindleCallback,
    last_epoch: int,
    skip: int,
) -> None:
    """One ``model.fit`` from the current epoch to ``last_epoch``, its first ``skip`` steps done."""
    model, first_epoch = setup.model, callback.position.epoch
    segment = training_data.source.segment(first_epoch, last_epoch, skip)
    x = segment.x
    if getattr(training_data.source, "shard", None) is not None:  # a gang: each its own slices
        x = model.distribute_strategy.distribute_datasets_from_function(lambda _: segment.x)
    with strategy.uneven_first_batch(model), keras_mwms.installed(model.distribute_strategy):
        model.fit(
            x,
            epochs=last_epoch,
            initial_epoch=first_epoch,
            steps_per_epoch=segment.steps_per_epoch,
            callbacks=[callback, *setup.callbacks],
            verbose=0,
            shuffle=False,
            **training_data.validation,
        )


def _finish(
    model: Any, callback: RekindleCallback, run: RunState, store: CheckpointStore, outcome: Outcome
) -> TerminationMessage:
    """Save the final state if unsaved, load the best weights if asked, export, record the end."""
    if callback.restore_from is not None:  # nothing was trained: restore the checkpoint
        callback.set_model(model)
        callback.on_train_begin()
    position = run.position
    name = contract.checkpoint_name(position.epoch, position.step)
    loaded = run.loaded.name if run.loaded is not None else None
    # Decided from what this attempt saved, never from the folder, so that a gang's
    # workers (whose saves are collective) decide alike while the chief's writer drains.
    if name not in (loaded, callback.checkpointer.saved_name):
        final = callback.manifest("final", callback.last_logs or None)
        callback.checkpointer.save_final(model, final)
    config = callback.info.config
    if callback.agreement is not None:
        callback.agreement.barrier()  # the others read the best epoch once the chief wrote it
    if config.early_stopping.restore_best_weights:
        _restore_best_weights(model, store, run.early_stopping)
    message = _message(outcome, run, config, store, callback.checkpointer)
    if not callback.info.chief:  # a gang's other worker exports with the chief, into nothing
        with tempfile.TemporaryDirectory(prefix="rekindle-worker-export-") as private:
            _export(model, Path(private))
        return message
    _export(model, store.root)
    store.write_json(FINISHED_FILE, {"outcome": outcome.value, "message": message.to_json()})
    return message


def _restore_best_weights(model: Any, store: CheckpointStore, es: EarlyStoppingState) -> None:
    """Load the model weights of the best epoch's checkpoint (its optimizer state is not needed)."""
    if es.best_epoch is None:
        return
    best = store.load_epoch_end(es.best_epoch)  # verified: a corrupt one is never restored
    if best is None:
        log.warning(
            "restoreBestWeights: no valid checkpoint of epoch %d is left; keeping the last weights",
            es.best_epoch + 1,
        )
        return
    state.restore(model, best.groups, ("model",))
    log.info("restored the weights of epoch %d from %s", es.best_epoch + 1, best.name)


def _export(model: Any, root: Path) -> None:
    """Write ``model.keras`` by a temporary name and a rename; a failure is only logged."""
    temp = root / f"{contract.TEMP_PREFIX}export.keras"
    try:
        model.save(temp)
        temp.replace(root / MODEL_EXPORT)
    except Exception:  # a custom model that cannot be serialized still has its checkpoints
        log.warning("could not export %s", MODEL_EXPORT, exc_info=True)
        temp.unlink(missing_ok=True)


def _message(
    outcome: Outcome,
    run: RunState,
    config: TrainerConfig,
    store: CheckpointStore,
    checkpointer: Checkpointer,
) -> TerminationMessage:
    """The termination message for ``outcome``, the run where it stands."""
    es = run.early_stopping
    names = [n for n in store.names() if n not in store.corrupt]
    newest = names[-1] if names else None
    saved = checkpointer.saved_name
    if not checkpointer.info.chief and saved is not None and (newest is None or saved > newest):
        newest = saved  # the gang's save this worker took part in; the chief may still write it
    return TerminationMessage(
        outcome=outcome,
        epoch=run.position.epoch,
        step=run.position.step,
        best_metric=es.best,
        monitor=config.early_stopping.monitor,
        best_epoch=_one_based(es.best_epoch),
        early_stop_epoch=_one_based(es.stopped_epoch) if config.early_stopping.enabled else None,
        checkpoint=newest,
        replayable=run.replayable,
        lost_steps=run.lost_total,
    )


def _one_based(epoch: int | None) -> int | None:
    """A 0-based epoch as Keras prints it."""
    return None if epoch is None else epoch + 1
