"""The live progress document a trainer serves on its metrics port (``GET /progress``).

The operator reads it from the pods it created, at a bounded rate, so that a
TrainingJob's status follows the run while the attempt lasts (epoch, step,
best value, newest checkpoint) and a trainer whose step counter stops is
noticed (``restartPolicy.stallTimeoutSeconds``). Pull, not push: the trainer
needs no Kubernetes API rights and no credentials, and can report only for
the pod the operator asks. Both sides read and write it through this module,
so neither keeps its own copy of the field names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from rekindle_trainer.contract import documents
from rekindle_trainer.contract.documents import schema

#: Path of the document, next to ``/metrics`` and ``/healthz``.
PROGRESS_PATH: Final = "/progress"
#: The most bytes of a document the operator reads (a trainer cannot make it hold more).
MAX_DOCUMENT_BYTES: Final = 16384
#: How many of an attempt's newest saves ``saveSecondsP99`` is measured over.
SAVE_WINDOW: Final = 100


def p99(durations: Iterable[float]) -> float | None:
    """The 99th percentile (nearest rank) of ``durations``; None when there are none.

    Nearest rank, not interpolation: the value is one save that really took that
    long, and with fewer than 100 saves it is the slowest one (the grace period
    must cover the worst save seen, not an average).
    """
    ordered = sorted(durations)
    if not ordered:
        return None
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


@dataclass(frozen=True, kw_only=True)
class LiveBest:
    """The best value of the monitored metric so far, and the (1-based) epoch it came at."""

    monitor: str = field(metadata=schema("monitor", required=True))
    value: float = field(metadata=schema("value", required=True))
    epoch: int | None = field(default=None, metadata=schema("epoch", minimum=1))


@dataclass(frozen=True, kw_only=True)
class LiveCheckpoint:
    """The newest checkpoint this attempt published (or resumed from)."""

    name: str = field(metadata=schema("name", required=True))
    #: When it was published (resumed from: when this attempt restored it).
    time: datetime | None = field(default=None, metadata=schema("time"))
    epoch: int | None = field(default=None, metadata=schema("epoch", minimum=0))
    step: int | None = field(default=None, metadata=schema("step", minimum=0))
    #: Seconds from the start of the save to its publish (None: restored, not saved).
    save_seconds: float | None = field(default=None, metadata=schema("saveSeconds", minimum=0))


@dataclass(frozen=True, kw_only=True)
class LiveProgress:
    """Where a running trainer is, as ``GET /progress`` answers."""

    attempt: int = field(default=0, metadata=schema("attempt", minimum=0))
    #: ``starting``, ``training`` or ``finishing``.
    phase: str = field(default="starting", metadata=schema("phase"))
    #: Epochs fully trained in this job.
    epoch: int = field(default=0, metadata=schema("epoch", minimum=0))
    #: Global optimizer steps taken in this job.
    step: int = field(default=0, metadata=schema("step", minimum=0))
    #: Steps finished by this process: moves with every step, resumed or not (stall detection).
    steps_this_attempt: int = field(default=0, metadata=schema("stepsThisAttempt", minimum=0))
    #: When the last step finished (None: none yet in this attempt).
    last_step_time: datetime | None = field(default=None, metadata=schema("lastStepTime"))
    best: LiveBest | None = field(default=None, metadata=schema("best"))
    checkpoint: LiveCheckpoint | None = field(default=None, metadata=schema("checkpoint"))
    #: Checkpoints this attempt published.
    saves: int = field(default=0, metadata=schema("saves", minimum=0))
    #: The 99th percentile of this attempt's save durations (its last
    #: :data:`SAVE_WINDOW` saves, start to publish; None: none yet). The operator
    #: warns when ``terminationGracePeriodSeconds`` leaves too little room for it.
    save_seconds_p99: float | None = field(
        default=None, metadata=schema("saveSecondsP99", minimum=0)
    )

    def to_json(self) -> str:
        """The document as served (camelCase keys)."""
        return json.dumps(documents.unparse(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> LiveProgress:
        """Parse a served document.

        Raises:
            ValueError: not JSON, too large, or a field that does not fit (named).
        """
        if len(text) > MAX_DOCUMENT_BYTES:
            raise ValueError(
                f"progress document of {len(text)} bytes: at most {MAX_DOCUMENT_BYTES}"
            )
        try:
            doc: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"progress document is not JSON: {exc}") from exc
        return documents.parse(cls, _known(cls, doc), "progress")


def _known(cls: type, doc: Any) -> Any:
    """``doc`` without the keys ``cls`` does not declare (a newer trainer may add some).

    An operator older than its trainers must still read them: an unread document
    would count as no progress (``stallTimeoutSeconds``).
    """
    if not isinstance(doc, dict):
        return doc
    nested = {"best": LiveBest, "checkpoint": LiveCheckpoint} if cls is LiveProgress else {}
    names = {f.metadata["json"] for f, _ in documents.json_fields(cls)}
    return {k: _known(nested[k], v) if k in nested else v for k, v in doc.items() if k in names}
