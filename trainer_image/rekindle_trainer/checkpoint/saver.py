"""Writes checkpoints in the background so that a save stalls training only for a host copy.

Training hands over a :class:`~rekindle_trainer.checkpoint.store.Snapshot` (arrays already
copied to host memory) and goes on; one writer thread publishes the queued
snapshots in order and prunes old checkpoints. Serialization, checksums,
fsync, the rename and retention all run on that thread. A snapshot may come
with a ``release`` callback, called once its arrays are written (the
training side then reuses them: :class:`~rekindle_trainer.checkpoint.hostcopy.BufferPool`
bounds how many saves can be queued). A failed write is raised on the training
thread at the next save or at :meth:`BackgroundSaver.drain`, so that a run never
goes on believing it is protected when it is not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rekindle_trainer.checkpoint.store import CheckpointStore, Published, Snapshot

log = logging.getLogger(__name__)

#: Called on the writer thread after each publish: (snapshot, what was written).
OnPublished = Callable[[Snapshot, Published], None]


@dataclass(frozen=True)
class _Job:
    snapshot: Snapshot
    release: Callable[[], None] | None


class BackgroundSaver:
    """One writer thread in front of a :class:`CheckpointStore`.

    Args:
        store: where checkpoints go.
        on_published: called after each publish (metrics, progress, pruning).
        background: write on a thread (``True``) or inline (for tests and the final save).
        nice: how much lower the writer thread's CPU priority is than training's (Linux
            threads have their own; elsewhere ignored). Hashing and writing then use the
            cores training leaves idle instead of slowing the steps down.
    """

    def __init__(
        self,
        store: CheckpointStore,
        on_published: OnPublished,
        *,
        background: bool = True,
        nice: int = 5,
    ) -> None:
        self.store = store
        self.on_published = on_published
        self.background = background
        self.nice = nice
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _write(self, job: _Job) -> None:
        try:
            published = self.store.write(job.snapshot)
            self.on_published(job.snapshot, published)
        except BaseException as exc:  # re-raised on the training thread
            log.exception("checkpoint %s failed", job.snapshot.name)
            self._error = exc
        finally:
            if job.release is not None:
                job.release()

    def _run(self) -> None:
        """The writer: publish queued snapshots oldest first; exit when the queue is empty."""
        if self.nice:
            with contextlib.suppress(OSError, AttributeError):  # not permitted, or not Linux
                tid = threading.get_native_id()
                os.setpriority(
                    os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice
                )
        while True:
            with self._cond:
                if not self._queue:
                    self._thread = None
                    self._cond.notify_all()
                    return
                job = self._queue[0]
            self._write(job)
            with self._cond:
                self._queue.popleft()
                self._cond.notify_all()

    def submit(
        self,
        snapshot: Snapshot,
        *,
        wait: bool = False,
        release: Callable[[], None] | None = None,
    ) -> None:
        """Queue ``snapshot`` for publishing.

        ``wait`` returns only once it, and every snapshot before it, is published.
        ``release`` is called when its arrays are no longer needed.
        """
        self._raise_pending()
        job = _Job(snapshot, release)
        if not self.background:
            self._write(job)
            self._raise_pending()
            return
        with self._cond:
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="rekindle-checkpoint", daemon=True
                )
                self._thread.start()
        if wait:
            self.drain()

    def _join(self) -> None:
        with self._cond:
            while self._queue or self._thread is not None:
                self._cond.wait()

    def drain(self) -> None:
        """Wait for every queued write, then raise the error of one that failed."""
        self._join()
        self._raise_pending()

    def drain_quietly(self) -> None:
        """Wait for the queued writes; their errors were logged already (used while failing)."""
        self._join()
        self._error = None

    def withdraw_queued(self, supersedable: Callable[[Snapshot], bool]) -> Snapshot | None:
        """Take back the newest queued snapshot, if its write has not started and it may go.

        ``supersedable`` decides; the snapshot's ``release`` is called (its buffers are
        free again), so that a newer save replaces it instead of waiting for the writer.
        """
        with self._cond:
            if len(self._queue) < 2 or not supersedable(self._queue[-1].snapshot):
                return None  # the head of the queue is being written
            job = self._queue.pop()
        log.info(
            "checkpoint %s superseded by a newer save before it was written", job.snapshot.name
        )
        if job.release is not None:
            job.release()
        return job.snapshot

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"checkpoint write failed: {error}") from error
