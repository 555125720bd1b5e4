"""The operator ⇄ trainer contract, importable without TensorFlow.

The operator (which never installs TensorFlow) and the trainer (which never
talks to the Kubernetes API) meet only here: the environment the operator sets,
the files the trainer leaves on the checkpoint volume, the termination message
and exit code it ends with, and the Prometheus metric names it serves.
The Helm chart's dashboard and alerts are tested against the names below.
The configuration document is declared in :mod:`.training_config` (the
TrainingJob spec reuses those declarations) and parsed by :mod:`.documents`,
the generic camelCase parser both sides use. See ``docs/contract.md`` for the
prose version.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final

# --------------------------------------------------------------------------
# In: the environment the operator (or `rekindle run`) gives the trainer.
# --------------------------------------------------------------------------

#: One JSON document: the trainer configuration (see ``docs/contract.md``).
ENV_CONFIG: Final = "REKINDLE_CONFIG"
#: Local use only: a path to a JSON or YAML file holding the same document.
ENV_CONFIG_FILE: Final = "REKINDLE_CONFIG_FILE"
#: The folder on the checkpoint volume that this job owns.
ENV_CHECKPOINT_DIR: Final = "REKINDLE_CHECKPOINT_DIR"
#: 1 for the first attempt, then 2, 3, … (restarts of any cause).
ENV_ATTEMPT: Final = "REKINDLE_ATTEMPT"
ENV_JOB_NAME: Final = "REKINDLE_JOB_NAME"
ENV_JOB_NAMESPACE: Final = "REKINDLE_JOB_NAMESPACE"
ENV_JOB_UID: Final = "REKINDLE_JOB_UID"
#: TCP port of the trainer's Prometheus endpoint; 0 disables it.
ENV_METRICS_PORT: Final = "REKINDLE_METRICS_PORT"
#: Where the termination message goes (Kubernetes reads /dev/termination-log).
ENV_TERMINATION_LOG: Final = "REKINDLE_TERMINATION_LOG"
#: Set to ``1`` by operators that read the termination message's ``timing`` (goodput):
#: without it the trainer leaves ``timing`` out, because operators before it reject a
#: message with a field they do not know.
ENV_REPORT_TIMING: Final = "REKINDLE_REPORT_TIMING"
#: Optional: a file the trainer appends progress events to, one JSON per line
#: (used by `rekindle run` for its live view; see :class:`ProgressEvent`).
ENV_PROGRESS_FILE: Final = "REKINDLE_PROGRESS_FILE"
#: Optional, set by the user (e.g. the pod template's env), never by the operator:
#: with no GPU visible, train over this many logical CPU devices with
#: ``MirroredStrategy`` (default 1: the default strategy). Runs the multi-replica
#: path without a GPU; GPUs, when visible, take precedence.
ENV_CPU_REPLICAS: Final = "REKINDLE_CPU_REPLICAS"
#: Set by the user for a gang: the collective implementation of
#: ``MultiWorkerMirroredStrategy`` (``auto``, ``ring`` over gRPC, ``nccl``; default
#: ``auto``: NCCL on GPUs, ring on CPUs). ``ring`` where NCCL cannot run, e.g. two
#: workers on one GPU.
ENV_COLLECTIVE: Final = "REKINDLE_COLLECTIVE"
#: The accepted values of ``REKINDLE_COLLECTIVE``.
COLLECTIVES: Final = ("auto", "ring", "nccl")
#: The most CPU replicas accepted.
MAX_CPU_REPLICAS: Final = 64
#: Set only for a job of several workers (``spec.workers`` > 1), by the operator or
#: ``rekindle run``: TensorFlow's own cluster description for
#: ``MultiWorkerMirroredStrategy``, ``{"cluster": {"worker": ["host:port", …]},
#: "task": {"type": "worker", "index": i}}`` (see :mod:`.gang`). Unset: one worker.
ENV_TF_CONFIG: Final = "TF_CONFIG"
#: The port each worker serves TensorFlow's collectives on, in a pod (locally: free ports).
DEFAULT_WORKER_PORT: Final = 2222
#: Container port name of :data:`DEFAULT_WORKER_PORT`.
WORKER_PORT_NAME: Final = "worker"
#: The chief's index in ``TF_CONFIG``: it alone publishes checkpoints, and its termination
#: message (``completed`` / ``early_stopped``) is the job's success.
CHIEF_INDEX: Final = 0
#: The most workers one TrainingJob trains on (``spec.workers``).
MAX_WORKERS: Final = 64

DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"
DEFAULT_CHECKPOINT_MOUNT: Final = "/var/lib/rekindle/checkpoints"
DEFAULT_METRICS_PORT: Final = 9102
#: Container port name, so that a PodMonitor can select it.
METRICS_PORT_NAME: Final = "metrics"
#: Paths served next to ``/metrics`` on the metrics port.
HEALTH_PATH: Final = "/healthz"
METRICS_PATH: Final = "/metrics"

#: Kubernetes keeps at most this many bytes of a termination message.
TERMINATION_MESSAGE_MAX_BYTES: Final = 4096

# --------------------------------------------------------------------------
# Volume: checkpoint layout. Each checkpoint is a folder written under a
# temporary name and published by one atomic rename.
# --------------------------------------------------------------------------

CHECKPOINT_PREFIX: Final = "ckpt-"
#: Folders starting with this are unfinished writes; they are never read.
TEMP_PREFIX: Final = ".tmp-"
#: The manifest inside each checkpoint folder (epoch, step, metrics, state, checksums).
MANIFEST_NAME: Final = "manifest.json"
#: 3: a CRC-32 per file and one of the manifest's own canonical body (2 had no manifest
#: checksum, 1 a SHA-256 per file; the trainer still reads both).
MANIFEST_FORMAT_VERSION: Final = 3
#: Corrupt checkpoints are moved aside to ``.corrupt-<name>-<id>``: kept for inspection,
#: never read, counted or named; deleted once older than every checkpoint kept.
QUARANTINE_PREFIX: Final = ".corrupt-"


def checkpoint_name(epoch: int, step: int) -> str:
    """Name of the checkpoint folder taken after ``epoch`` full epochs and ``step`` steps.

    Zero-padded so that names sort in training order.
    """
    return f"{CHECKPOINT_PREFIX}{epoch:06d}-{step:010d}"


# --------------------------------------------------------------------------
# Out: exit codes and the termination message.
# --------------------------------------------------------------------------

EXIT_OK: Final = 0
#: Invalid configuration or user code that cannot load: never restarted.
EXIT_INVALID: Final = 2
#: Saved after SIGTERM and stopped: 128 + SIGTERM.
EXIT_PREEMPTED: Final = 143


class Outcome(enum.StrEnum):
    """How an attempt of the trainer ended, as it reports it."""

    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    PREEMPTED = "preempted"
    FAILED = "failed"
    INVALID = "invalid"


#: The exit code that goes with each outcome (FAILED: any other non-zero code).
EXIT_CODE_FOR_OUTCOME: Final[dict[Outcome, int]] = {
    Outcome.COMPLETED: EXIT_OK,
    Outcome.EARLY_STOPPED: EXIT_OK,
    Outcome.PREEMPTED: EXIT_PREEMPTED,
    Outcome.FAILED: 1,
    Outcome.INVALID: EXIT_INVALID,
}


@dataclass(frozen=True)
class Timing:
    """Where an attempt's time went, as the trainer measured it (seconds, its own clock).

    The operator splits the attempt's wall time into goodput and badput with it
    (``docs/monitoring.md``, Goodput). ``training`` counts from the first step's
    start to the termination message and includes ``checkpoint_stall``.

    Attributes:
        startup: process start to the first step's start, ``restore`` included.
        restore: reading the checkpoint the attempt resumed from.
        checkpoint_stall: time training waited on saves (the host copies, and
            any wait for an earlier save to publish).
        training: first step's start to the end of the attempt.
        steps: optimizer steps this attempt took.
    """

    startup: float = 0.0
    restore: float = 0.0
    checkpoint_stall: float = 0.0
    training: float = 0.0
    steps: int = 0

    def to_document(self) -> dict[str, Any]:
        """Milliseconds are plenty and keep the termination message short."""
        doc: dict[str, Any] = {k: round(v, 3) for k, v in asdict(self).items() if k != "steps"}
        doc["steps"] = self.steps
        return doc

    @classmethod
    def from_document(cls, doc: Any) -> Timing:
        """Parse ``timing``; raise ``ValueError`` naming the field."""
        problems = validate_timing(doc)
        if problems:
            raise ValueError("invalid termination message: " + "; ".join(problems))
        seconds = {k: float(v) for k, v in doc.items() if k != "steps"}
        return cls(steps=int(doc.get("steps", 0)), **seconds)


_TIMING_FIELDS: Final = ("startup", "restore", "checkpoint_stall", "training", "steps")


def validate_timing(doc: Any) -> list[str]:
    """Problems of a ``timing`` object, each naming its field; empty when valid."""
    if not isinstance(doc, dict):
        return [f"timing: expected an object, got {type(doc).__name__}"]
    problems: list[str] = []
    for key, value in doc.items():
        if key not in _TIMING_FIELDS:
            problems.append(f"timing.{key}: unknown field")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"timing.{key}: expected a number, got {type(value).__name__}")
        elif key == "steps" and not isinstance(value, int):
            problems.append(f"timing.steps: expected an integer, got {value!r}")
        elif not math.isfinite(value) or value < 0:
            problems.append(f"timing.{key}: must be a finite number >= 0, got {value}")
    return problems


@dataclass(frozen=True)
class TerminationMessage:
    """The one JSON document the trainer writes on exit.

    Attributes:
        outcome: how the attempt ended.
        epoch: epochs fully trained so far (the next epoch to run, 0-based).
        step: global optimizer steps taken so far.
        best_metric: the best value of the monitored metric so far, if any.
        monitor: the name of that metric (e.g. ``val_loss``).
        best_epoch: the epoch (1-based, as Keras prints it) of ``best_metric``.
        early_stop_epoch: the epoch (1-based) at which early stopping fired.
        checkpoint: name of the newest checkpoint on the volume, if any.
        replayable: whether the data order could be restored exactly on resume.
        lost_steps: the job's steps recomputed so far: for every earlier attempt, those it
            trained past the checkpoint the next one resumed from (a total, not this
            attempt's share: the operator keeps the largest it has seen).
        error: a short error text for ``failed`` and ``invalid``.
        note: one line on something the attempt had to do without, e.g. "no valid
            checkpoint in DIR: …; starting from epoch 0". Left out of the JSON when
            ``None`` (operators before it reject unknown fields).
        peer_lost: a worker of a gang (``TF_CONFIG``) failed because another
            worker was lost (a collective failed or timed out): its end is a
            consequence, never the cause the attempt is counted by. Written
            out only when true.
        timing: where the attempt's time went (:class:`Timing`), for goodput. Left
            out of the JSON when ``None``.
    """

    outcome: Outcome
    epoch: int = 0
    step: int = 0
    best_metric: float | None = None
    monitor: str | None = None
    best_epoch: int | None = None
    early_stop_epoch: int | None = None
    checkpoint: str | None = None
    replayable: bool = True
    lost_steps: int = 0
    error: str | None = None
    note: str | None = None
    peer_lost: bool = False
    timing: Timing | None = None

    def to_json(self) -> str:
        """Serialize to compact JSON that fits the Kubernetes size limit.

        The error text is shortened (never the other fields) when the whole
        document would exceed :data:`TERMINATION_MESSAGE_MAX_BYTES`.
        """
        doc: dict[str, Any] = asdict(self)
        doc["outcome"] = self.outcome.value
        if doc["note"] is None:
            del doc["note"]
        if not doc["peer_lost"]:
            del doc["peer_lost"]  # one worker's messages stay as they were before gangs
        if self.timing is None:
            del doc["timing"]
        else:
            doc["timing"] = self.timing.to_document()
        if doc["best_metric"] is not None and not math.isfinite(doc["best_metric"]):
            doc["best_metric"] = None
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        while len(text.encode()) > TERMINATION_MESSAGE_MAX_BYTES and doc["error"]:
            error: str = doc["error"]
            overflow = len(text.encode()) - TERMINATION_MESSAGE_MAX_BYTES
            keep = max(0, len(error) - overflow - 16)
            doc["error"] = error[:keep] + "…[truncated]"
            text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        return text

    @classmethod
    def from_json(cls, text: str) -> TerminationMessage:
        """Parse and validate a termination message; raise ``ValueError`` naming the field."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"termination message is not JSON: {exc}") from exc
        errors = validate_termination_message(doc)
        if errors:
            raise ValueError("invalid termination message: " + "; ".join(errors))
        timing = doc.pop("timing", None)
        return cls(
            outcome=Outcome(doc["outcome"]),
            timing=None if timing is None else Timing.from_document(timing),
            **{k: v for k, v in doc.items() if k != "outcome"},
        )


#: JSON Schema of the termination message (draft 2020-12).
TERMINATION_MESSAGE_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Rekindle trainer termination message",
    "type": "object",
    "additionalProperties": False,
    "required": ["outcome", "epoch", "step"],
    "properties": {
        "outcome": {"enum": [o.value for o in Outcome]},
        "epoch": {"type": "integer", "minimum": 0},
        "step": {"type": "integer", "minimum": 0},
        "best_metric": {"type": ["number", "null"]},
        "monitor": {"type": ["string", "null"]},
        "best_epoch": {"type": ["integer", "null"], "minimum": 1},
        "early_stop_epoch": {"type": ["integer", "null"], "minimum": 1},
        "checkpoint": {"type": ["string", "null"]},
        "replayable": {"type": "boolean"},
        "lost_steps": {"type": "integer", "minimum": 0},
        "error": {"type": ["string", "null"]},
        "note": {"type": ["string", "null"]},
        "peer_lost": {"type": "boolean"},
        "timing": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "startup": {"type": "number", "minimum": 0},
                "restore": {"type": "number", "minimum": 0},
                "checkpoint_stall": {"type": "number", "minimum": 0},
                "training": {"type": "number", "minimum": 0},
                "steps": {"type": "integer", "minimum": 0},
            },
        },
    },
}

_FIELD_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "epoch": (int,),
    "step": (int,),
    "best_metric": (int, float, type(None)),
    "monitor": (str, type(None)),
    "best_epoch": (int, type(None)),
    "early_stop_epoch": (int, type(None)),
    "checkpoint": (str, type(None)),
    "replayable": (bool,),
    "lost_steps": (int,),
    "error": (str, type(None)),
    "note": (str, type(None)),
    "peer_lost": (bool,),
}


def validate_termination_message(doc: Any) -> list[str]:
    """Check a parsed termination message against the schema without third-party code.

    Returns a list of problems, each naming the field; empty when valid.
    """
    if not isinstance(doc, dict):
        return [f"expected a JSON object, got {type(doc).__name__}"]
    problems: list[str] = []
    for key in ("outcome", "epoch", "step"):
        if key not in doc:
            problems.append(f"{key}: required")
    if "outcome" in doc and doc["outcome"] not in {o.value for o in Outcome}:
        allowed = ", ".join(o.value for o in Outcome)
        problems.append(f"outcome: {doc['outcome']!r} is not one of {allowed}")
    for key, value in doc.items():
        if key == "outcome":
            continue
        if key == "timing":
            problems.extend(validate_timing(value))
            continue
        if key not in _FIELD_TYPES:
            problems.append(f"{key}: unknown field")
            continue
        types = _FIELD_TYPES[key]
        if isinstance(value, bool) and bool not in types:
            problems.append(f"{key}: expected {types[0].__name__}, got bool")
        elif not isinstance(value, types):
            problems.append(f"{key}: expected {types[0].__name__}, got {type(value).__name__}")
        elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
            problems.append(f"{key}: must be >= 0, got {value}")
    return problems


def outcome_for_exit_code(exit_code: int) -> Outcome:
    """The outcome an exit code implies when no termination message was written."""
    if exit_code == EXIT_OK:
        return Outcome.COMPLETED
    if exit_code == EXIT_INVALID:
        return Outcome.INVALID
    if exit_code == EXIT_PREEMPTED:
        return Outcome.PREEMPTED
    return Outcome.FAILED


# --------------------------------------------------------------------------
# Progress events for `rekindle run` (optional, see ENV_PROGRESS_FILE).
# --------------------------------------------------------------------------


class ProgressKind(enum.StrEnum):
    """What a progress event reports."""

    STARTED = "started"  # attempt began; fields: epoch, step, epochs, steps_per_epoch
    RESTORED = "restored"  # resumed from a checkpoint; fields: checkpoint, epoch, step, lost_steps
    STEP = "step"  # throttled (at most a few per second); fields: epoch, step, logs
    EPOCH_END = "epoch_end"  # fields: epoch (1-based), step, logs
    CHECKPOINT = "checkpoint"  # fields: checkpoint, epoch, step, seconds, bytes, trigger
    EARLY_STOPPED = "early_stopped"  # fields: epoch (1-based), best_metric
    FINISHED = "finished"  # fields: outcome


@dataclass(frozen=True)
class ProgressEvent:
    """One line of the progress file."""

    kind: ProgressKind
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One JSON line, without the trailing newline."""
        return json.dumps({"kind": self.kind.value, "time": self.time, **self.data})

    @classmethod
    def from_json(cls, line: str) -> ProgressEvent:
        """Parse one line written by :meth:`to_json`."""
        doc = json.loads(line)
        kind = ProgressKind(doc.pop("kind"))
        time = float(doc.pop("time"))
        return cls(kind=kind, time=time, data=doc)


# --------------------------------------------------------------------------
# Metrics: the names the trainer serves. No label grows per step.
# --------------------------------------------------------------------------

METRIC_PREFIX: Final = "rekindle_trainer_"

#: Gauge: epochs fully trained in this job (survives restarts: restored from the checkpoint).
METRIC_EPOCH: Final = "rekindle_trainer_epoch"
#: Gauge: global optimizer steps taken.
METRIC_STEP: Final = "rekindle_trainer_step"
#: Gauge: the epoch budget (spec epochs).
METRIC_EPOCHS_BUDGET: Final = "rekindle_trainer_epochs_budget"
#: Gauge: the attempt number (``REKINDLE_ATTEMPT``).
METRIC_ATTEMPT: Final = "rekindle_trainer_attempt"
#: Gauge, label ``metric``: the last end-of-epoch value of each Keras log
#: (``loss``, ``val_loss``, ``accuracy``…).
METRIC_LOG_VALUE: Final = "rekindle_trainer_metric"
LABEL_METRIC: Final = "metric"
#: Counter, label ``trigger`` (see :data:`SAVE_TRIGGERS`): checkpoints published.
METRIC_CHECKPOINTS_SAVED: Final = "rekindle_trainer_checkpoints_saved_total"
LABEL_TRIGGER: Final = "trigger"
SAVE_TRIGGERS: Final = ("epoch", "steps", "seconds", "sigterm", "final")
#: Saves a newer one may replace while still queued: periodic ones. Epoch-end saves stay
#: (``restoreBestWeights`` reads them back) and so do SIGTERM and final ones.
SUPERSEDABLE_TRIGGERS: Final = ("steps", "seconds")
#: Counter, label ``trigger`` (``steps`` or ``seconds``): periodic saves dropped unwritten
#: because a newer save replaced them while the writer was still busy with an older one
#: (the volume or the CPU cannot keep up with the save interval).
METRIC_CHECKPOINTS_SUPERSEDED: Final = "rekindle_trainer_checkpoints_superseded_total"
#: Histogram: seconds from the start of a save to its atomic publish.
METRIC_CHECKPOINT_SECONDS: Final = "rekindle_trainer_checkpoint_save_seconds"
#: Histogram: seconds training was stalled by a save (the copy to host memory).
METRIC_CHECKPOINT_STALL_SECONDS: Final = "rekindle_trainer_checkpoint_stall_seconds"
#: Gauge: size of the newest checkpoint.
METRIC_CHECKPOINT_BYTES: Final = "rekindle_trainer_checkpoint_bytes"
#: Counter: bytes written to the volume by saves.
METRIC_CHECKPOINT_WRITTEN_BYTES: Final = "rekindle_trainer_checkpoint_written_bytes_total"
#: Gauge: Unix time of the newest published checkpoint (for "no checkpoint" alerts).
METRIC_LAST_CHECKPOINT_TIME: Final = "rekindle_trainer_last_checkpoint_timestamp_seconds"
#: Gauge: Unix time of the last finished training step (for "stalled" alerts).
METRIC_LAST_STEP_TIME: Final = "rekindle_trainer_last_step_timestamp_seconds"
#: Counter: restores from a checkpoint at start-up.
METRIC_RESTORES: Final = "rekindle_trainer_restores_total"
#: Counter: checkpoints found corrupt (manifest checksum, sense checks or file checksums
#: failed) and moved aside; each is counted once, where it is found.
METRIC_CORRUPT_CHECKPOINTS: Final = "rekindle_trainer_corrupt_checkpoints_total"
#: Counter: steps that had to be recomputed after a resume (work lost).
METRIC_LOST_STEPS: Final = "rekindle_trainer_lost_steps_total"
#: Counter: early-stopping events (0 or 1 per job).
METRIC_EARLY_STOPS: Final = "rekindle_trainer_early_stops_total"
#: Gauge: the epoch (1-based) at which early stopping fired.
METRIC_EARLY_STOP_EPOCH: Final = "rekindle_trainer_early_stop_epoch"
#: Gauge: epochs saved by early stopping (epoch budget minus epochs run).
METRIC_EPOCHS_SAVED: Final = "rekindle_trainer_epochs_saved_by_early_stopping"
#: Gauge, label ``monitor``: the best value of the monitored metric.
METRIC_BEST_VALUE: Final = "rekindle_trainer_best_metric"
LABEL_MONITOR: Final = "monitor"
#: Counter: SIGTERMs handled with a save and a clean exit.
METRIC_PREEMPTIONS: Final = "rekindle_trainer_preemptions_handled_total"

#: Every metric family the trainer exports (Prometheus names, counters with ``_total``).
TRAINER_METRICS: Final = (
    METRIC_EPOCH,
    METRIC_STEP,
    METRIC_EPOCHS_BUDGET,
    METRIC_ATTEMPT,
    METRIC_LOG_VALUE,
    METRIC_CHECKPOINTS_SAVED,
    METRIC_CHECKPOINTS_SUPERSEDED,
    METRIC_CHECKPOINT_SECONDS,
    METRIC_CHECKPOINT_STALL_SECONDS,
    METRIC_CHECKPOINT_BYTES,
    METRIC_CHECKPOINT_WRITTEN_BYTES,
    METRIC_LAST_CHECKPOINT_TIME,
    METRIC_LAST_STEP_TIME,
    METRIC_RESTORES,
    METRIC_CORRUPT_CHECKPOINTS,
    METRIC_LOST_STEPS,
    METRIC_EARLY_STOPS,
    METRIC_EARLY_STOP_EPOCH,
    METRIC_EPOCHS_SAVED,
    METRIC_BEST_VALUE,
    METRIC_PREEMPTIONS,
)

#: Gauge, labels ``component`` (``trainer`` or ``operator``) and ``version`` (of the
#: ``rekindle`` distribution): always 1. The trainer and the operator both serve it, so that
#: one query shows which build runs where.
METRIC_BUILD_INFO: Final = "rekindle_build_info"
LABEL_COMPONENT: Final = "component"
LABEL_VERSION: Final = "version"
#: What prometheus-client's process collector serves on Linux (CPU, memory, file
#: descriptors, start time) and its platform collector's ``python_info``.
PROCESS_METRICS: Final = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
    "python_info",
)
#: Served by the trainer and by the operator next to their own families.
RUNTIME_METRICS: Final = (METRIC_BUILD_INFO, *PROCESS_METRICS)
