"""Watch one running attempt (its one worker, or its gang): progress, faults, Ctrl-C, its end.

:func:`supervise` polls the chief's progress file and every worker's process
a few times a second. It shows progress, fires the ``--inject`` faults that
fall due (at the worker each names), turns a Ctrl-C into a SIGTERM of every
worker (a preemption: the trainer saves), and tells the caller about progress
through ``on_progress`` (with ``None`` once a second) so that the job's status
follows the run; when that returns a reason, the attempt is stopped with
SIGTERM (a deadline passed). In a gang, the first worker to end abnormally,
or the chief ending at all, ends the attempt: the others are stopped at once
(SIGTERM, then SIGKILL after the grace period), as the operator stops a
gang's pods. It returns how each worker ended and what the runner itself did
to it, which :func:`rekindle_operator.resources.classify.classify_process`
and :func:`rekindle_operator.resources.gang.judge` need to name the cause.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from rekindle_operator.core import live_progress
from rekindle_operator.core.live_progress import StallRule
from rekindle_operator.core.reasons import Cause
from rekindle_operator.local.attempt import Attempt, ProcessExit
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import Fault, FaultAction, FaultSchedule
from rekindle_operator.local.progress import ProgressTail, ProgressView
from rekindle_operator.local.summary import RunStats
from rekindle_operator.resources import classify, gang
from rekindle_trainer.contract import EXIT_OK, ProgressEvent, ProgressKind

#: How often the progress file and the processes are looked at.
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
class WorkerExit:
    """How one worker's process ended, and what the runner did to it."""

    end: ProcessExit
    #: What the runner's own action stands for (None: it ended by itself, or crashed).
    known_cause: Cause | None = None
    #: With ``known_cause``: what the runner did, for the status message.
    detail: str | None = None
    #: ``time.time()`` when the runner saw it end.
    ended_at: float = 0.0
    #: Stopped by the runner because another worker ended the attempt.
    consequence: bool = False


@dataclass(frozen=True)
class Supervised:
    """How an attempt ended: each worker's exit (the chief first); whether Ctrl-C was pressed."""

    workers: tuple[WorkerExit, ...]
    interrupted: bool

    @property
    def end(self) -> ProcessExit:
        """The chief's exit (a single worker's)."""
        return self.workers[0].end


def supervise(
    attempts: Sequence[Attempt],
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
    stall: StallRule | None = None,
) -> Supervised:
    """Run ``attempts`` (one per worker, the chief first) to their end (see the module doc).

    ``stall``: ``restartPolicy.stallTimeoutSeconds`` as a rule: no step event for that
    long (a frozen trainer writes none) stops the attempt as ``Stalled``.
    """
    watch = _Watch(
        members=[_Member(attempt, index) for index, attempt in enumerate(attempts)],
        tail=ProgressTail(attempts[0].files.progress_file),
        view=view,
        faults=faults,
        console=console,
        show_progress=show_progress,
        stats=stats,
        interrupts=interrupts,
        grace_seconds=grace_seconds,
        run_started=run_started,
        on_progress=on_progress,
        say=say,
        stall=stall,
    )
    faults.begin_attempt()
    try:
        while True:
            watch.look()
            if watch.reap():
                return watch.ended()
    finally:
        faults.end_attempt()
        console.bar(None)


@dataclass
class _Member:
    """One worker's process, and what the runner did to it so far."""

    attempt: Attempt
    index: int
    known_cause: Cause | None = None
    #: What the runner did to it, in words.
    did: str | None = None
    consequence: bool = False
    #: When a SIGTERMed trainer runs out of grace (``time.monotonic()``).
    kill_at: float | None = None
    exit: ProcessExit | None = None
    ended_at: float = 0.0

    @property
    def running(self) -> bool:
        return self.exit is None

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM it; it is killed if it has not exited when its grace runs out."""
        if self.running:
            self.attempt.send(signal.SIGTERM)
            if self.kill_at is None:
                self.kill_at = time.monotonic() + grace_seconds

    def result(self) -> WorkerExit:
        assert self.exit is not None
        how = f"exit code {self.exit.exit_code}"
        name = classify.signal_of(self.exit.exit_code)
        if name:
            how += f", {name}"
        return WorkerExit(
            end=self.exit,
            known_cause=self.known_cause,
            detail=f"{self.did} ({how})" if self.did else None,
            ended_at=self.ended_at,
            consequence=self.consequence,
        )


@dataclass
class _Watch:
    """One attempt under watch: what to look at, and what the runner did to it so far."""

    members: list[_Member]
    tail: ProgressTail
    view: ProgressView
    faults: FaultSchedule
    console: Console
    show_progress: bool
    stats: RunStats
    interrupts: Interrupts
    grace_seconds: float
    run_started: float
    on_progress: Callable[[ProgressEvent | None], str | None]
    say: Callable[[str], None]
    fired: Fault | None = None
    interrupted: bool = False
    stopping: bool = False
    kills_sent: int = 0
    stop_reason: str | None = None
    next_tick: float = field(default_factory=lambda: time.monotonic() + TICK_SECONDS)
    stall: StallRule | None = None
    #: When the attempt was started, and when its step counter last moved (None: not yet).
    since: float = field(default_factory=time.monotonic)
    stepped_at: float | None = None

    def look(self) -> None:
        """One poll: new progress, due faults, a stop asked for, Ctrl-C, a grace run out."""
        due: Fault | None = None
        for event in self.tail.read():
            due = self._handle(event) or due
        due = self.faults.on_tick(time.monotonic() - self.run_started) or due
        if time.monotonic() >= self.next_tick:
            self.next_tick = time.monotonic() + TICK_SECONDS
            self.stop_reason = self.stop_reason or self.on_progress(None)
        if self.stop_reason is not None:
            self._stop()
        self._check_stall()
        if due is not None:
            self._inject(due)
        if self.interrupts.count > self.kills_sent:
            self.kills_sent = self.interrupts.count
            self._interrupt()
        for member in self.members:
            if member.running and member.kill_at is not None and time.monotonic() >= member.kill_at:
                self.say(
                    f"the trainer (pid {member.attempt.pid}) did not exit "
                    f"{self.grace_seconds:g} s after SIGTERM: killing it"
                )
                member.attempt.kill_group()
                member.kill_at = None

    def reap(self) -> bool:
        """Wait a poll's time for the workers; whether every one has ended."""
        running = [m for m in self.members if m.running]
        for member in running:
            end = member.attempt.wait(POLL_SECONDS / len(running))
            if end is not None:
                member.exit, member.ended_at = end, time.time()
                self._gang_rule(member)
        return not any(m.running for m in self.members)

    def ended(self) -> Supervised:
        """Every worker exited: read the chief's last events, say what the runner did."""
        for event in self.tail.read():
            self._handle(event)
        return Supervised(
            workers=tuple(m.result() for m in self.members), interrupted=self.interrupted
        )

    def _gang_rule(self, ended: _Member) -> None:
        """The chief's end, or any other abnormal end, ends the attempt for every worker."""
        assert ended.exit is not None
        alone = len(self.members) == 1
        normal = ended.exit.exit_code == EXIT_OK and ended.known_cause is None
        if alone or (normal and ended.index != 0):
            return
        others = [m for m in self.members if m.running and m.kill_at is None]
        if others:
            self.say(
                f"worker {ended.index} ended (exit code {ended.exit.exit_code}): stopping "
                f"worker{'s' if len(others) > 1 else ''} "
                f"{', '.join(str(m.index) for m in others)} (the attempt is over)"
            )
        for member in others:
            member.consequence = True
            if member.known_cause is None:
                member.known_cause = Cause.STOPPED
                member.did = f"stopped: {gang.STOP_REASON}"
            member.terminate(self.grace_seconds)

    def _handle(self, event: ProgressEvent) -> Fault | None:
        """Count and show one progress event, tell the runner; the fault it makes due, if any."""
        if event.kind is ProgressKind.EPOCH_END:
            self.stats.epochs_trained += 1
        if event.kind in (ProgressKind.STEP, ProgressKind.EPOCH_END):
            self.stepped_at = time.monotonic()
        lines = self.view.lines_for(event)
        if self.show_progress:
            bar = self.view.bar()
            if bar is None:
                self.console.bar(None)  # the epoch ended: its line replaces the bar
            for line in lines:
                self.console.line(line)
            self.console.bar(bar)
        self.stop_reason = self.stop_reason or self.on_progress(event)
        fault = self.faults.on_event(event)
        for dropped in self.faults.take_unreachable():
            self.say(f"fault {dropped} dropped: this run resumed past its point")
        return fault

    def _stop(self) -> None:
        """The runner asked the attempt to stop (a deadline passed): SIGTERM every worker, once."""
        if self.stopping or self.interrupted:
            return
        self.stopping = True
        pids = ", ".join(str(m.attempt.pid) for m in self.members)
        self.say(f"stopping attempt (pid {pids}) with SIGTERM: {self.stop_reason}")
        for member in self.members:
            member.known_cause, member.did = Cause.STOPPED, f"stopped: {self.stop_reason}"
            member.terminate(self.grace_seconds)

    def _check_stall(self) -> None:
        """No step for ``stallTimeoutSeconds``: stop every worker; the attempt ends ``Stalled``."""
        if self.stopping or self.interrupted:
            return
        why = live_progress.stall_message(
            self.stall,
            since=self.since,
            stepped=self.stepped_at is not None,
            moved_at=self.stepped_at,
            now=time.monotonic(),
        )
        if why is None:
            return
        self.stopping = True
        pids = ", ".join(str(m.attempt.pid) for m in self.members)
        self.say(f"stalled: {why}; stopping attempt (pid {pids}) with SIGTERM")
        for member in self.members:
            if member.running:
                member.known_cause, member.did = Cause.STALLED, f"stalled: {why}"
                member.terminate(self.grace_seconds)

    def _inject(self, due: Fault) -> None:
        """Fire a due ``--inject`` fault at its worker (only the first, and not after a Ctrl-C)."""
        if self.fired is not None or self.interrupted:
            return
        self.fired = due
        member = self.members[due.worker]
        member.known_cause = CAUSE_FOR_FAULT[due.action]
        member.did = f"injected {due}"
        self.stats.faults.append(str(due))
        self.say(
            f"injecting {due} into attempt (pid {member.attempt.pid}): sending "
            f"{due.signal.name} at epoch {self.view.epochs_done}, step {self.view.step}"
        )
        if due.signal is signal.SIGTERM:
            member.terminate(self.grace_seconds)
        else:
            member.attempt.send(due.signal)

    def _interrupt(self) -> None:
        """Ctrl-C: the first one asks every worker to save (SIGTERM), the next kills them."""
        if self.interrupted:
            self.say("interrupted again: killing the trainer (it resumes from its last save)")
            for member in self.members:
                member.attempt.kill_group()
            return
        self.interrupted = True
        for member in self.members:
            if member.known_cause is None:
                member.known_cause = Cause.PREEMPTED
                member.did = "interrupted (Ctrl-C)"
        self.say(
            "interrupted: sending SIGTERM so that the trainer saves "
            f"(up to {self.grace_seconds:g} s; press Ctrl-C again to kill it now)"
        )
        for member in self.members:
            member.terminate(self.grace_seconds)
