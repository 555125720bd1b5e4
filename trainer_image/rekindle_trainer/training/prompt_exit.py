"""SIGTERM before an attempt's first step: nothing to save, so the process exits 143 at once.

The SIGTERM handler (:class:`~rekindle_trainer.training.session.StopRequest`)
only sets a flag that training reads after each step, so that the step in
flight finishes and is saved. Before the first step there is nothing new to
save, and the first step can be far away: TensorFlow's import, the entrypoint,
the data pipeline, tracing and compiling the step. Python runs a signal handler
only between the main thread's bytecodes, so one that waited for the main
thread could wait for all of that, past the pod's grace period.

:class:`PromptExit` does not wait: Python's C-level handler writes each signal's
number to a wakeup file descriptor (:func:`signal.set_wakeup_fd`) the moment it
arrives, and a thread of its own reads it. Until the attempt has trained a step
it writes the termination message (when the attempt's starting point is known
yet) and ends the process with 143; the volume is left as a SIGKILL would leave
it, which every reader tolerates. From the first step on it leaves the signal
to the training loop, which saves first.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable

from rekindle_trainer import contract

log = logging.getLogger(__name__)

#: Written to wake the watcher when watching ends (no signal has the number 0).
_STOP = 0


class PromptExit:
    """Ends the process with 143 on one of ``signals`` until a step has been trained.

    Args:
        signals: the signals that stop an attempt (their Python handlers must be set:
            Python writes to the wakeup descriptor only for signals it handles).
    """

    def __init__(self, signals: Iterable[int]) -> None:
        self.signals = frozenset(int(s) for s in signals)
        #: Whether the attempt has trained a step (then the training loop saves first).
        self.trained: Callable[[], bool] = lambda: False
        #: Writes the termination message, if one can be written yet.
        self.last_words: Callable[[], None] = lambda: None
        self._pipe: tuple[int, int] | None = None
        self._previous = -1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (main thread only, like ``signal.set_wakeup_fd``)."""
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._pipe = (read, write)
        self._previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._thread = threading.Thread(
            target=self._watch, name="rekindle-prompt-exit", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; give the wakeup descriptor back."""
        if self._pipe is None or self._thread is None:
            return
        signal.set_wakeup_fd(self._previous)
        read, write = self._pipe
        os.set_blocking(write, True)
        os.write(write, bytes([_STOP]))
        self._thread.join(timeout=10)
        os.close(write)
        os.close(read)
        self._pipe = self._thread = None

    def _watch(self) -> None:
        assert self._pipe is not None
        read = self._pipe[0]
        while True:
            for signum in os.read(read, 64):
                if signum == _STOP:
                    return
                if signum in self.signals and not self.trained():
                    self._exit(signum)

    def _exit(self, signum: int) -> None:
        """Write what can be said, then end the process at once (no cleanup can hang it)."""
        try:
            log.warning(
                "%s before the first step: nothing to save; exiting with %d",
                signal.Signals(signum).name,
                contract.EXIT_PREEMPTED,
            )
            self.last_words()
            sys.stderr.flush()
        finally:
            os._exit(contract.EXIT_PREEMPTED)
