"""Writes checkpoints in the background so that a save stalls training only for a host copy.

Training hands over a :class:`~rekindle_trainer.store.Snapshot` (arrays already
copied to host memory) and goes on; one writer thread publishes it and prunes
old checkpoints. At most one write is in flight: a second save waits for the
first (that wait counts as stall time). A failed write is raised on the training
thread at the next save or at :meth:`BackgroundSaver.drain`, so that a run never
goes on believing it is protected when it is not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rekindle_trainer.store import CheckpointStore, Published, Snapshot

log = logging.getLogger(__name__)

#: Called on the writer thread after each publish: (snapshot, what was written).
OnPublished = Callable[[Snapshot, Published], None]


class BackgroundSaver:
    """One writer thread in front of a :class:`CheckpointStore`.

    Args:
        store: where checkpoints go.
        on_published: called after each publish (metrics, progress, pruning).
        background: write on a thread (``True``) or inline (for tests and the final save).
    """

    def __init__(
        self, store: CheckpointStore, on_published: OnPublished, *, background: bool = True
    ) -> None:
        self.store = store
        self.on_published = on_published
        self.background = background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _write(self, snapshot: Snapshot) -> None:
        try:
            published = self.store.write(snapshot)
            self.on_published(snapshot, published)
        except BaseException as exc:  # re-raised on the training thread
            log.exception("checkpoint %s failed", snapshot.name)
            self._error = exc

    def submit(self, snapshot: Snapshot, *, wait: bool = False) -> None:
        """Publish ``snapshot``; in the background unless ``wait`` (or background is off)."""
        self.drain()
        if wait or not self.background:
            self._write(snapshot)
            self._raise_pending()
            return
        self._thread = threading.Thread(
            target=self._write, args=(snapshot,), name="rekindle-checkpoint", daemon=True
        )
        self._thread.start()

    def drain(self) -> None:
        """Wait for the write in flight, then raise its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._raise_pending()

    def drain_quietly(self) -> None:
        """Wait for the write in flight; its error was logged already (used while failing)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._error = None

    @property
    def busy(self) -> bool:
        """Whether a write is in flight."""
        return self._thread is not None and self._thread.is_alive()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"checkpoint write failed: {error}") from error
