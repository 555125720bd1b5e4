"""An attempt's saves: a copy into reused host buffers, written by a background saver.

A save costs training one copy of the state into a :class:`BufferPool` set;
the :class:`BackgroundSaver` publishes it, and its follow-up reports the
checkpoint and prunes old ones. When every buffer set is in use, a queued
periodic save that the writer has not started is superseded by the newer one
(see :func:`~rekindle_trainer.core.save_policy.supersedable`) before training
waits. The per-step position record (how much work a kill loses) is kept here too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from rekindle_trainer import contract
from rekindle_trainer.checkpoint import state
from rekindle_trainer.checkpoint.hostcopy import BufferPool
from rekindle_trainer.checkpoint.position_file import PositionRecord
from rekindle_trainer.checkpoint.saver import BackgroundSaver
from rekindle_trainer.checkpoint.store import CheckpointStore, Published, Snapshot
from rekindle_trainer.core.config import TrainerConfig
from rekindle_trainer.core.early_stopping import EarlyStoppingState
from rekindle_trainer.core.position import Position
from rekindle_trainer.core.save_policy import supersedable
from rekindle_trainer.reporting.reporter import Reporter
from rekindle_trainer.training import variable_copy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """What an attempt trains with, and the facts that go into every manifest."""

    config: TrainerConfig
    attempt: int
    replayable: bool
    data_kind: str
    steps_per_epoch: int
    replicas: int = 1
    #: The job's lost steps counted when this attempt started (kept in the position record).
    lost_before: int = 0
    #: Whether this worker publishes (a gang's chief, or the one worker).
    chief: bool = True

    def manifest(
        self,
        position: Position,
        early_stopping: EarlyStoppingState,
        trigger: str,
        logs: dict[str, float] | None,
    ) -> dict[str, Any]:
        """The manifest facts of a save of ``trigger`` at ``position``."""
        return {
            "epoch": position.epoch,
            "step": position.step,
            "step_in_epoch": position.step_in_epoch,
            "trigger": trigger,
            "logs": logs,
            "monitor": self.config.early_stopping.monitor,
            "early_stopping": early_stopping.to_dict(),
            "data": {
                "kind": self.data_kind,
                "replayable": self.replayable,
                "seed": self.config.seed,
                "steps_per_epoch": self.steps_per_epoch,
                "batch_size": self.config.batch_size,
            },
            "attempt": self.attempt,
            "epochs_budget": self.config.epochs,
            "replicas": self.replicas,
        }


def _supersedable(snapshot: Snapshot) -> bool:
    return supersedable(str(snapshot.meta.get("trigger")))


class Checkpointer:
    """Takes an attempt's saves and records its position after every step.

    Args:
        store: the job's checkpoint folder.
        reporter: told of stalls, superseded saves and publishes.
        info: the attempt (its number goes into the position record; ``keepBest``
            spares the best epoch's checkpoint from pruning).
    """

    def __init__(self, store: CheckpointStore, reporter: Reporter, info: RunInfo) -> None:
        self.store = store
        self.reporter = reporter
        self.info = info
        self.saver = BackgroundSaver(store, self._follow_up)
        self.pool = BufferPool()
        self._last_save = time.monotonic()
        self._prepared = False
        self._record: PositionRecord | None = None
        #: The checkpoint name of this attempt's last save (on every worker of a gang).
        self.saved_name: str | None = None

    def prepare(self, model: Any) -> None:
        """After the first step, when every variable exists (optimizer slots, metric sums).

        One set of host buffers is allocated then and faulted in on a helper thread;
        later calls do nothing.
        """
        if not self._prepared:
            self.pool.prepare(state.variables(model))
            self._prepared = True

    def seconds_since_save(self) -> float:
        """Seconds since the last save was taken (or since this attempt began)."""
        return time.monotonic() - self._last_save

    def save(
        self,
        model: Any,
        meta: dict[str, Any],
        *,
        wait: bool = False,
        extra: dict[str, list[tuple[str, Any]]] | None = None,
    ) -> float | None:
        """Copy the state into reused host buffers and queue it; the writer does the rest.

        ``extra``: further groups of host arrays published in the same checkpoint
        (the data iterator's state), so that weights and data position never part.

        ``wait`` returns once it is published. Returns how long training stalled, or
        ``None`` when it waited for the write.

        A gang's other workers only read the state, as the chief does (reading a
        metric's variable is a collective every worker must join), and drop it.
        """
        started = time.perf_counter()
        self.saved_name = contract.checkpoint_name(int(meta["epoch"]), int(meta["step"]))
        values = state.variables(model)
        if not self.info.chief:
            variable_copy.read_all(values)
            self._last_save = time.monotonic()
            return None
        buffers = self.pool.try_acquire(values)
        if buffers is None:
            withdrawn = self.saver.withdraw_queued(_supersedable)
            if withdrawn is not None:
                self.reporter.save_superseded(str(withdrawn.meta["trigger"]))
                buffers = self.pool.try_acquire(values)
        if buffers is None:  # every set is being written or holds a save that must stay
            buffers = self.pool.acquire(values)
        try:
            variable_copy.copy_into(values, buffers)
            snap = Snapshot(groups={**buffers.groups, **(extra or {})}, meta=meta)
            self.saver.submit(snap, wait=wait, release=lambda: self.pool.give_back(buffers))
        except BaseException:
            self.pool.give_back(buffers)
            raise
        self._last_save = time.monotonic()
        if wait:
            self.reporter.waited_for_saves(time.perf_counter() - started)
            return None
        stall = time.perf_counter() - started
        self.reporter.save_stalled(stall)
        return stall

    def save_final(self, model: Any, meta: dict[str, Any]) -> None:
        """Save a fresh copy of the state and wait until it is published (the chief's)."""
        started = time.perf_counter()
        groups = state.snapshot(model)  # every worker of a gang reads: see save()
        if not self.info.chief:
            return
        self.saver.submit(Snapshot(groups=groups, meta=meta), wait=True)
        self.reporter.waited_for_saves(time.perf_counter() - started)

    def record(self, position: Position) -> None:
        """Note the step reached in the position file (cheap: a memory-mapped write; chief only)."""
        if not self.info.chief:
            return
        if self._record is None:
            self._record = PositionRecord(
                self.store.root, self.info.attempt, lost_before=self.info.lost_before
            )
        self._record.update(position.epoch, position.step)

    def stop_recording(self) -> None:
        """Release the position file; training is over (saves may still follow)."""
        if self._record is not None:
            self._record.close()
            self._record = None

    def drain(self) -> None:
        """Wait for the queued saves; raise the error of one that failed."""
        started = time.perf_counter()
        try:
            self.saver.drain()
        finally:
            self.reporter.waited_for_saves(time.perf_counter() - started)

    def drain_quietly(self) -> None:
        """Wait for the queued saves while failing already (their errors were logged)."""
        self.saver.drain_quietly()

    def _follow_up(self, snapshot: Snapshot, published: Published) -> None:
        """On the writer thread, after each publish: report it, then prune old checkpoints."""
        meta = snapshot.meta
        self.reporter.checkpoint_published(
            published.name,
            trigger=str(meta["trigger"]),
            epoch=meta["epoch"],
            step=meta["step"],
            seconds=published.seconds,
            nbytes=published.nbytes,
        )
        best_epoch = meta["early_stopping"].get("best_epoch")
        best = None
        if self.info.config.checkpoint.keep_best and best_epoch is not None:
            best = self.store.find_epoch_end(int(best_epoch))
        removed = self.store.prune(published.name, best)
        if removed:
            log.info("pruned checkpoints %s", ", ".join(removed))
