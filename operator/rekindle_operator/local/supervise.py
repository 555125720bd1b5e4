"""Watch one running attempt: progress, faults, Ctrl-C, and the moment it ends.

:func:`supervise` polls the trainer's progress file and its process a few
times a second. It shows progress, fires the ``--inject`` faults that fall
due, turns a Ctrl-C into a SIGTERM (a preemption: the trainer saves), and
tells the caller about progress through ``on_progress`` (with ``None`` once
a second) so that the job's status follows the run; when that returns a
reason, the attempt is stopped with SIGTERM (a deadline passed). It returns
how the process ended and what the runner itself did to it, which
:func:`rekindle_operator.classify.classify_process` needs to name the cause.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from rekindle_operator.local.attempt import Attempt, AttemptEnd
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import Fault, FaultAction, FaultSchedule
from rekindle_operator.local.progress import ProgressTail, ProgressView
from rekindle_operator.local.summary import RunStats
from rekindle_operator.reasons import Cause
from rekindle_trainer.contract import ProgressEvent, ProgressKind

#: How often the progress file and the process are looked at.
POLL_SECONDS: Final = 0.1
#: How often ``on_progress`` is asked whether the attempt must stop, without an event.
TICK_SECONDS: Final = 1.0

#: The cause each injected fault stands for (a crash is classified from its exit code).
CAUSE_FOR_FAULT: Final[dict[FaultAction, Cause | None]] = {
    FaultAction.SIGKILL: Cause.NODE_LOST,
    FaultAction.SIGTERM: Cause.PREEMPTED,
    FaultAction.CRASH: None,
}


@dataclass
class Interrupts:
    """Ctrl-C presses (SIGINT) and SIGTERMs received by ``rekindle run``, counted by its handler."""

    count: int = 0


@dataclass(frozen=True)
class Supervised:
    """How an attempt ended, and what the runner did to it."""

    end: AttemptEnd
    #: What the runner's own action stands for (None: the trainer ended by itself, or crashed).
    known_cause: Cause | None
    fault: Fault | None
    interrupted: bool
    #: With ``known_cause``: what the runner did, for the status message.
    detail: str | None = None


def supervise(
    attempt: Attempt,
    *,
    view: ProgressView,
    faults: FaultSchedule,
    console: Console,
    show_progress: bool,
    stats: RunStats,
    interrupts: Interrupts,
    grace_seconds: float,
    run_started: float,
    on_progress: Callable[[ProgressEvent | None], str | None],
    say: Callable[[str], None],
) -> Supervised:
    """Run ``attempt`` to its end (see the module docstring)."""
    tail = ProgressTail(attempt.files.progress_file)
    faults.begin_attempt()
    fired: Fault | None = None
    known_cause: Cause | None = None
    interrupted = False
    did: str | None = None  # what the runner did to the trainer, in words
    kill_at: float | None = None  # when a SIGTERMed trainer runs out of grace
    kills_sent = 0
    stop_reason: str | None = None
    next_tick = time.monotonic() + TICK_SECONDS

    def handle(event: ProgressEvent) -> Fault | None:
        nonlocal stop_reason
        if event.kind is ProgressKind.EPOCH_END:
            stats.epochs_trained += 1
        lines = view.lines_for(event)
        if show_progress:
            bar = view.bar()
            if bar is None:
                console.bar(None)  # the epoch ended: its line replaces the bar
            for line in lines:
                console.line(line)
            console.bar(bar)
        stop_reason = stop_reason or on_progress(event)
        fault = faults.on_event(event)
        for dropped in faults.take_unreachable():
            say(f"fault {dropped} dropped: this run resumed past its point")
        return fault

    try:
        while True:
            due: Fault | None = None
            for event in tail.read():
                due = handle(event) or due
            due = faults.on_tick(time.monotonic() - run_started) or due
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_SECONDS
                stop_reason = stop_reason or on_progress(None)
            if stop_reason is not None and known_cause is not Cause.STOPPED and not interrupted:
                known_cause = Cause.STOPPED
                did = f"stopped: {stop_reason}"
                say(f"stopping attempt (pid {attempt.pid}) with SIGTERM: {stop_reason}")
                attempt.send(signal.SIGTERM)
                kill_at = time.monotonic() + grace_seconds
            if due is not None and fired is None and not interrupted:
                fired = due
                known_cause = CAUSE_FOR_FAULT[due.action]
                did = f"injected {due}"
                stats.faults.append(str(due))
                say(
                    f"injecting {due} into attempt (pid {attempt.pid}): sending "
                    f"{due.signal.name} at epoch {view.epochs_done}, step {view.step}"
                )
                attempt.send(due.signal)
                if due.signal is signal.SIGTERM:
                    kill_at = time.monotonic() + grace_seconds
            if interrupts.count > kills_sent:
                kills_sent = interrupts.count
                if not interrupted:
                    interrupted = True
                    if known_cause is None:
                        known_cause = Cause.PREEMPTED
                        did = "interrupted (Ctrl-C)"
                    say(
                        "interrupted: sending SIGTERM so that the trainer saves "
                        f"(up to {grace_seconds:g} s; press Ctrl-C again to kill it now)"
                    )
                    attempt.send(signal.SIGTERM)
                    kill_at = time.monotonic() + grace_seconds
                else:
                    say("interrupted again: killing the trainer (it resumes from its last save)")
                    attempt.kill_group()
            if kill_at is not None and time.monotonic() >= kill_at:
                say(f"the trainer did not exit {grace_seconds:g} s after SIGTERM: killing it")
                attempt.kill_group()
                kill_at = None
            end = attempt.wait(POLL_SECONDS)
            if end is not None:
                for event in tail.read():
                    handle(event)
                how = f"exit code {end.exit_code}"
                if end.signal_name:
                    how += f", {end.signal_name}"
                return Supervised(
                    end=end,
                    known_cause=known_cause,
                    fault=fired,
                    interrupted=interrupted,
                    detail=f"{did} ({how})" if did else None,
                )
    finally:
        faults.end_attempt()
        console.bar(None)
