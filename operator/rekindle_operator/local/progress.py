"""The trainer's progress events as ``rekindle run`` shows them.

The trainer appends one JSON line per event to ``REKINDLE_PROGRESS_FILE``
(:class:`rekindle_trainer.contract.ProgressEvent`). :class:`ProgressTail`
reads the lines that are complete so far; :class:`ProgressView` turns events
into the lines to print (epoch ends, saves, restores, early stop) and the live
bar of the epoch in progress. Both are free of terminal handling, which lives
in :mod:`rekindle_operator.local.console`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rekindle_operator.core import wording
from rekindle_trainer.contract import ProgressEvent, ProgressKind

BAR_WIDTH = 24


@dataclass
class ProgressTail:
    """Reads the events appended to a progress file since the last read.

    A line without its newline yet is left for the next read, so an event is
    never parsed half-written. A line that is not a valid event is skipped:
    the view is advisory, never a reason to stop the run.
    """

    path: Path
    _offset: int = 0
    _partial: bytes = b""

    def read(self) -> list[ProgressEvent]:
        """Every complete event appended since the previous call."""
        try:
            with self.path.open("rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        events: list[ProgressEvent] = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                events.append(ProgressEvent.from_json(raw.decode()))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue
        return events


def format_logs(logs: Any, limit: int = 4) -> str:
    """Keras logs as ``loss 0.4123  val_loss 0.3810 …`` (loss first, then val_*)."""
    if not isinstance(logs, dict):
        return ""
    numbers = {
        str(k): float(v)
        for k, v in logs.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }

    def order(name: str) -> tuple[int, str]:
        if name == "loss":
            return (0, name)
        if name == "val_loss":
            return (1, name)
        return (2 if name.startswith("val_") else 3, name)

    names = sorted(numbers, key=order)[:limit]
    return "  ".join(f"{name} {_number(numbers[name])}" for name in names)


def _number(value: float) -> str:
    """A metric value with four significant digits (``nan`` as is)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _bytes(size: Any) -> str:
    """A byte count as ``12.3 kB``/``4.5 MB``."""
    if not isinstance(size, int | float):
        return "?"
    amount = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"  # pragma: no cover - the loop always returns


@dataclass
class ProgressView:
    """What the user sees of one attempt: printed lines and a live epoch bar.

    Feed every event to :meth:`lines_for`, which returns the lines to print
    for it; :meth:`bar` is the bar of the epoch in progress (``None`` between
    epochs), with the loss so far, the attempt, the job's restarts and the
    checkpoints saved.
    """

    epochs: int | None = None
    steps_per_epoch: int | None = None
    epochs_done: int = 0
    step: int = 0
    epoch_start_step: int = 0
    in_epoch: bool = False
    #: Shown at the end of the bar: the attempt, the job's restarts so far, saves seen.
    attempt: int | None = None
    restarts: int = 0
    saves: int = 0
    logs: dict[str, Any] = field(default_factory=dict)

    def lines_for(self, event: ProgressEvent) -> list[str]:
        """Update the view with ``event``; the lines it adds to the log."""
        data = event.data
        kind = event.kind
        if kind is ProgressKind.STARTED:
            self.epochs = _int_or(data.get("epochs"), self.epochs)
            self.steps_per_epoch = _int_or(data.get("steps_per_epoch"), self.steps_per_epoch)
            self._moved_to(data)
            where = f"epoch {self.epochs_done}, step {self.step}"
            budget = (
                wording.counted(self.epochs, "epoch") if self.epochs is not None else "? epochs"
            )
            per_epoch = (
                f", {self.steps_per_epoch} steps/epoch" if self.steps_per_epoch is not None else ""
            )
            note = [str(data["note"])] if data.get("note") else []  # e.g. no valid checkpoint
            return [f"trainer started at {where} (budget {budget}{per_epoch})", *note]
        if kind is ProgressKind.RESTORED:
            self._moved_to(data)
            lost = _int_or(data.get("lost_steps"), 0) or 0
            lost_text = f"; {wording.counted(lost, 'step')} lost, recomputed" if lost else ""
            return [
                f"resumed from {data.get('checkpoint')} "
                f"(epoch {self.epochs_done}, step {self.step}){lost_text}"
            ]
        if kind is ProgressKind.STEP:
            self.step = max(self.step, _int_or(data.get("step"), self.step) or 0)
            if isinstance(data.get("logs"), dict):
                self.logs = dict(data["logs"])
            self.in_epoch = True
            return []
        if kind is ProgressKind.EPOCH_END:
            epoch = _int_or(data.get("epoch"), self.epochs_done + 1) or 0
            self.step = max(self.step, _int_or(data.get("step"), self.step) or 0)
            self.logs = dict(data["logs"]) if isinstance(data.get("logs"), dict) else {}
            line = (
                f"{self._epoch_label(epoch)}  {self._bar_text(done=True)}  {format_logs(self.logs)}"
            )
            self.epochs_done = epoch
            self.epoch_start_step = self.step
            self.in_epoch = False
            self.logs = {}
            return [line.rstrip()]
        if kind is ProgressKind.CHECKPOINT:
            self.saves += 1
            seconds = data.get("seconds")
            took = f"{seconds:.2f} s, " if isinstance(seconds, int | float) else ""
            return [
                f"saved {data.get('checkpoint')} (epoch {data.get('epoch')}, step "
                f"{data.get('step')}; {took}{_bytes(data.get('bytes'))}; "
                f"trigger {data.get('trigger')})"
            ]
        if kind is ProgressKind.EARLY_STOPPED:
            best = data.get("best_metric")
            best_text = f" (best {_number(float(best))})" if isinstance(best, int | float) else ""
            return [f"early stopping fired at epoch {data.get('epoch')}{best_text}"]
        if kind is ProgressKind.FINISHED:
            return [f"trainer finished: {data.get('outcome')}"]
        return []  # pragma: no cover - every ProgressKind is handled above

    def bar(self) -> str | None:
        """The live bar of the epoch in progress, or ``None`` between epochs."""
        if not self.in_epoch:
            return None
        text = f"{self._epoch_label(self.epochs_done + 1)}  {self._bar_text(done=False)}"
        logs = format_logs(self.logs, limit=1)
        tally = [f"attempt {self.attempt}"] if self.attempt is not None else []
        tally.append(f"{self.restarts} restart" + ("" if self.restarts == 1 else "s"))
        tally.append(f"{self.saves} save" + ("" if self.saves == 1 else "s"))
        return f"{text}  {logs}".rstrip() + "  | " + ", ".join(tally)

    def _moved_to(self, data: dict[str, Any]) -> None:
        """The trainer (re)started at the position in ``data``."""
        self.epochs_done = _int_or(data.get("epoch"), self.epochs_done) or 0
        self.step = _int_or(data.get("step"), self.step) or 0
        self.epoch_start_step = self.step
        self.in_epoch = False
        self.logs = {}

    def _epoch_label(self, epoch: int) -> str:
        total = str(self.epochs) if self.epochs is not None else "?"
        return f"epoch {epoch:>{len(total)}}/{total}"

    def _bar_text(self, *, done: bool) -> str:
        in_epoch = self.step - self.epoch_start_step
        per_epoch = self.steps_per_epoch
        if per_epoch is None or per_epoch <= 0:
            return f"step {in_epoch}"
        shown = per_epoch if done else min(in_epoch, per_epoch)
        filled = round(BAR_WIDTH * shown / per_epoch)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        width = len(str(per_epoch))
        return f"[{bar}] {shown:>{width}}/{per_epoch}"


def _int_or(value: Any, default: int | None) -> int | None:
    """``value`` as an int when it is a number, else ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)
