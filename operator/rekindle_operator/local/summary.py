"""The summary ``rekindle run`` prints at the end: what faults cost, what early stopping saved.

Pure: it reads the job's status document (the camelCase ``status`` of
``docs/resource.md``, as stored in ``job.json``) and what this run counted
itself, and returns lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rekindle_operator.core import wording


@dataclass
class RunStats:
    """What one ``rekindle run`` invocation saw (the status holds the job's totals)."""

    attempts: int = 0
    #: Epoch ends reported by the trainer, re-trained epochs included.
    epochs_trained: int = 0
    #: Checkpoints the trainer reported published.
    saves: int = 0
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0


def summary_lines(epoch_budget: int, status: Mapping[str, Any], stats: RunStats) -> list[str]:
    """The summary block: one fact per line, aligned."""
    restarts = status.get("restarts") or {}
    by_cause: Mapping[str, int] = restarts.get("byCause") or {}
    total_restarts = int(restarts.get("total") or 0)
    causes = ", ".join(f"{cause} {count}" for cause, count in sorted(by_cause.items()) if count)
    epochs_run = int(status.get("currentEpoch") or 0)
    early_stop = status.get("earlyStopEpoch")
    best = status.get("bestMetric") or {}

    rows: list[tuple[str, str]] = [
        ("phase", _phase(status)),
        ("epochs run", _epochs_run(epochs_run, epoch_budget, stats)),
        ("restarts", f"{total_restarts}" + (f" ({causes})" if causes else "")),
        *_retries_left(status.get("restartBudget") or {}),
        ("steps lost", str(int(status.get("lostSteps") or 0))),
        ("early stop", f"epoch {early_stop}" if early_stop is not None else "did not fire"),
        ("best", _best(best)),
        ("epoch budget", _saved(epoch_budget, epochs_run, early_stop)),
        ("this run", _this_run(status, stats)),
    ]
    goodput = goodput_line(status.get("goodput"))
    if goodput is not None:
        rows.append(("goodput", goodput))
    if status.get("latestCheckpoint"):
        rows.append(("checkpoint", str(status["latestCheckpoint"])))
    width = max(len(label) for label, _ in rows)
    return ["summary"] + [f"  {label:<{width}}  {value}" for label, value in rows]


def _retries_left(budget: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``retries left  2 of 3 failures`` (``status.restartBudget``), once a failure was counted.

    A run without failures leaves the line out: its whole budget is left.
    """
    used, resets = int(budget.get("failuresUsed") or 0), int(budget.get("resets") or 0)
    if budget.get("failuresLeft") is None or not (used or resets):
        return []
    left = int(budget["failuresLeft"])
    text = f"{left} of {wording.counted(left + used, 'failure')}"
    if resets:
        text += f" (the budget started afresh {wording.counted(resets, 'time')} after progress)"
    return [("retries left", text)]


def goodput_line(goodput: Mapping[str, Any] | None) -> str | None:
    """``62% of 4m12s productive; badput: startup 41s, restore 3s, …`` (largest first).

    None before any wall time was attributed (``status.goodput`` absent or empty).
    """
    if not goodput:
        return None
    productive = float(goodput.get("productiveSeconds") or 0.0)
    badput = {k: float(v) for k, v in (goodput.get("badputSeconds") or {}).items() if v}
    wall = productive + sum(badput.values())
    if wall <= 0:
        return None
    causes = sorted(badput.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{_CAUSE_WORDS.get(k, k)} {_duration(v)}" for k, v in causes if v >= 0.05)
    text = f"{100 * productive / wall:.0f}% of {_duration(wall)} productive"
    return f"{text}; badput: {shown}" if shown else text


#: ``badputSeconds`` keys as the summary says them.
_CAUSE_WORDS = {
    "checkpointStall": "checkpoint stall",
    "restartDowntime": "restart downtime",
    "lostWorkReplayed": "lost work replayed",
}


def _duration(seconds: float) -> str:
    """``4m12s``, ``41s`` or ``0.3s``: short enough for one line."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _phase(status: Mapping[str, Any]) -> str:
    phase = str(status.get("phase") or "Unknown")
    reason = status.get("reason")
    text = f"{phase} ({reason})" if reason else phase
    message = status.get("message")
    # A success's message repeats the facts below; anything else says what to do.
    return f"{text}: {message}" if message and phase != "Succeeded" else text


def _epochs_run(epochs_run: int, budget: int, stats: RunStats) -> str:
    text = f"{epochs_run} of {budget}"
    repeated = stats.epochs_trained - epochs_run
    if stats.epochs_trained and repeated > 0:
        text += f" ({stats.epochs_trained} trained in this run, {repeated} again after a resume)"
    return text


def _best(best: Mapping[str, Any]) -> str:
    value = best.get("value")
    if value is None:
        return "none yet"
    name = best.get("name") or "metric"
    epoch = best.get("epoch")
    at = f" at epoch {epoch}" if epoch is not None else ""
    return f"{name} {float(value):.4g}{at}"


def _saved(budget: int, epochs_run: int, early_stop: Any) -> str:
    if early_stop is None or budget <= 0:
        return wording.counted(budget, "epoch")
    saved = max(budget - epochs_run, 0)
    share = f"{100 * saved / budget:.0f}%"
    return f"{wording.counted(budget, 'epoch')}; early stopping saved {saved} ({share})"


def _this_run(status: Mapping[str, Any], stats: RunStats) -> str:
    faults = f", injected {', '.join(stats.faults)}" if stats.faults else ""
    attempt = status.get("attempt")
    last = f" (last attempt #{attempt})" if attempt else ""
    attempts = f"{stats.attempts} attempt" + ("" if stats.attempts == 1 else "s")
    saves = f", {stats.saves} checkpoint" + ("" if stats.saves == 1 else "s") + " saved"
    return f"{attempts}{last}{saves} in {stats.seconds:.1f} s{faults}"
