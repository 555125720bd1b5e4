"""Faults that ``rekindle run --inject`` applies to the local trainer.

A fault is ``ACTION@TRIGGER=VALUE``: ``sigkill@epoch=3`` kills the trainer
once it reports the end of epoch 3, ``sigterm@step=120`` preempts it once it
reports step 120, ``crash@seconds=20`` crashes it 20 s after ``rekindle run``
started its first attempt. In a job of several workers (``spec.workers``) a
fault hits the chief unless it names another worker: ``sigkill@step=40,worker=1``
kills worker 1 once the gang reports step 40 (the chief's progress: the workers
train in step). Each fault fires once, in whichever attempt reaches
its point first, and at most one fault fires per attempt (the attempt is over
once it has been hit). The point is approximate: the runner learns the step
from the trainer's progress file, so the signal lands a little after it; the
resume is exact regardless, because the trainer restores the newest valid
checkpoint and replays the same data order.

This module is pure: it decides *when* a fault fires from progress events and
elapsed time; :mod:`rekindle_operator.local.attempt` sends the signal.
"""

from __future__ import annotations

import enum
import math
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from rekindle_trainer.contract import ProgressEvent, ProgressKind

_Choice = TypeVar("_Choice", bound=enum.StrEnum)


class FaultAction(enum.StrEnum):
    """What happens to the trainer when a fault fires."""

    #: SIGKILL: no save, no termination message (a node lost, the OOM killer).
    SIGKILL = "sigkill"
    #: SIGTERM: a preemption; the trainer saves and exits 143.
    SIGTERM = "sigterm"
    #: SIGABRT: the process dies by its own fault (a native crash), exit 134.
    CRASH = "crash"


class FaultTrigger(enum.StrEnum):
    """Where in the run a fault fires."""

    #: The trainer reported this global optimizer step (or a later one).
    STEP = "step"
    #: The trainer reported the end of this epoch (1-based, as Keras prints it).
    EPOCH = "epoch"
    #: This many seconds after ``rekindle run`` started its first attempt.
    SECONDS = "seconds"


#: The signal each action sends.
SIGNAL_FOR_ACTION: Final[dict[FaultAction, signal.Signals]] = {
    FaultAction.SIGKILL: signal.SIGKILL,
    FaultAction.SIGTERM: signal.SIGTERM,
    FaultAction.CRASH: signal.SIGABRT,
}

_FORM: Final = (
    "expected ACTION@TRIGGER=VALUE with ACTION one of "
    + ", ".join(a.value for a in FaultAction)
    + " and TRIGGER one of "
    + ", ".join(t.value for t in FaultTrigger)
    + " (e.g. sigkill@epoch=3, sigterm@step=120, crash@seconds=20.5), optionally followed "
    + "by ,worker=N (0 is the chief, the default)"
)


@dataclass(frozen=True)
class Fault:
    """One fault to inject: an action and the point at which it fires."""

    action: FaultAction
    trigger: FaultTrigger
    at: float
    #: The worker it hits (0: the chief, the only one of a single-worker job).
    worker: int = 0

    @property
    def signal(self) -> signal.Signals:
        """The signal sent to the trainer."""
        return SIGNAL_FOR_ACTION[self.action]

    def __str__(self) -> str:
        value = f"{self.at:g}" if self.trigger is FaultTrigger.SECONDS else f"{int(self.at)}"
        target = f",worker={self.worker}" if self.worker else ""
        return f"{self.action.value}@{self.trigger.value}={value}{target}"


def parse_fault(text: str) -> Fault:
    """Parse ``ACTION@TRIGGER=VALUE[,worker=N]``; raise ``ValueError`` saying what is accepted.

    Steps and epochs are whole numbers, at least 1; seconds may be fractional
    and at least 0; the worker is a whole number, at least 0.
    """
    spec, _, target = text.strip().lower().partition(",")
    worker = _worker(text, target) if target else 0
    action_text, at_sign, point = spec.partition("@")
    trigger_text, equals, value_text = point.partition("=")
    if not at_sign or not equals:
        raise ValueError(f"--inject {text!r}: {_FORM}")
    action = _one_of(FaultAction, action_text, f"--inject {text!r}: unknown action")
    trigger = _one_of(FaultTrigger, trigger_text, f"--inject {text!r}: unknown trigger")
    value_text = value_text.strip()
    if trigger is FaultTrigger.SECONDS:
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"--inject {text!r}: seconds must be a number >= 0, got {value_text!r}"
            )
        return Fault(action, trigger, value, worker)
    if not value_text.isdigit() or int(value_text) < 1:
        raise ValueError(
            f"--inject {text!r}: {trigger.value} must be a whole number >= 1, got {value_text!r}"
        )
    return Fault(action, trigger, int(value_text), worker)


def _worker(text: str, target: str) -> int:
    """The worker of ``,worker=N``; else a ``ValueError`` saying the form."""
    key, equals, value = target.strip().partition("=")
    if key.strip() != "worker" or not equals or not value.strip().isdigit():
        raise ValueError(f"--inject {text!r}: after the point, expected ,worker=N (N = 0, 1, …)")
    return int(value.strip())


def _one_of(kind: type[_Choice], text: str, unknown: str) -> _Choice:
    """``text`` as a member of ``kind``; else a ``ValueError`` that lists the accepted ones."""
    try:
        return kind(text.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"{unknown} {text!r}; use one of {allowed}") from None


@dataclass
class FaultSchedule:
    """The faults still to fire in this ``rekindle run``, fed progress as it comes.

    Call :meth:`begin_attempt` when an attempt starts, then :meth:`on_event`
    for each progress event and :meth:`on_tick` periodically; each returns the
    fault to fire now, if any. A step or epoch fault whose point lies behind
    the checkpoint an attempt resumed from can never be reached in this run;
    it is dropped, and :meth:`take_unreachable` hands it out once so the
    runner can say so.
    """

    pending: list[Fault]
    fired: list[Fault] = field(default_factory=list)
    unreachable: list[Fault] = field(default_factory=list)
    _newly_unreachable: list[Fault] = field(default_factory=list)
    _armed: bool = False
    _epochs_done: int = 0
    _step: int = 0

    @classmethod
    def parse(cls, texts: list[str]) -> FaultSchedule:
        """A schedule from ``--inject`` values, in the order given."""
        return cls(pending=[parse_fault(text) for text in texts])

    def check_workers(self, workers: int) -> None:
        """Refuse a fault aimed at a worker the job does not have (``spec.workers``)."""
        for fault in self.pending:
            if fault.worker >= workers:
                plural = "s" if workers > 1 else ""
                raise ValueError(
                    f"--inject {fault}: worker {fault.worker} does not exist: the job has "
                    f"{workers} worker{plural} (spec.workers), 0 to {workers - 1}"
                )

    def begin_attempt(self) -> None:
        """A new attempt started: it may be hit by (at most) one fault."""
        self._armed = True

    def end_attempt(self) -> None:
        """The attempt ended; nothing fires until the next one begins."""
        self._armed = False

    def on_event(self, event: ProgressEvent) -> Fault | None:
        """Track the trainer's position; the step/epoch fault due now, if any."""
        data = event.data
        if event.kind in (ProgressKind.STARTED, ProgressKind.RESTORED):
            self._epochs_done = _as_int(data.get("epoch"), self._epochs_done)
            self._step = _as_int(data.get("step"), self._step)
            self._drop_unreachable()
            return None
        if event.kind is ProgressKind.EPOCH_END:
            self._epochs_done = _as_int(data.get("epoch"), self._epochs_done)
            self._step = max(self._step, _as_int(data.get("step"), self._step))
        elif event.kind is ProgressKind.STEP:
            self._step = max(self._step, _as_int(data.get("step"), self._step))
        else:
            return None
        return self._fire(
            lambda f: (
                (f.trigger is FaultTrigger.EPOCH and self._epochs_done >= f.at)
                or (f.trigger is FaultTrigger.STEP and self._step >= f.at)
            )
        )

    def on_tick(self, elapsed_seconds: float) -> Fault | None:
        """The time fault due ``elapsed_seconds`` after the run's first attempt, if any."""
        return self._fire(lambda f: f.trigger is FaultTrigger.SECONDS and elapsed_seconds >= f.at)

    def take_unreachable(self) -> list[Fault]:
        """Faults dropped since the last call because the run resumed past them."""
        dropped, self._newly_unreachable = self._newly_unreachable, []
        return dropped

    def _fire(self, due: Callable[[Fault], bool]) -> Fault | None:
        if not self._armed:
            return None
        for fault in self.pending:
            if due(fault):
                self.pending.remove(fault)
                self.fired.append(fault)
                self._armed = False
                return fault
        return None

    def _drop_unreachable(self) -> None:
        for fault in list(self.pending):
            behind = (fault.trigger is FaultTrigger.EPOCH and self._epochs_done >= fault.at) or (
                fault.trigger is FaultTrigger.STEP and self._step >= fault.at
            )
            if behind:
                self.pending.remove(fault)
                self.unreachable.append(fault)
                self._newly_unreachable.append(fault)


def _as_int(value: object, default: int) -> int:
    """An event field as an int, or ``default`` when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)
