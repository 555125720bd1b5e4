"""The operator's own Prometheus metrics, registered under the names in :mod:`metric_names`.

One :class:`OperatorMetrics` holds every metric in its own registry, so that
tests (and two operators in one process) never collide on the global one.
Nothing about a job is a counter or gauge kept in step by hand: the handlers
record each job's status as they write it (:meth:`OperatorMetrics.record_job`)
and collectors turn what was last recorded into jobs by phase and into the
per-job gauges at scrape time, so a deleted job (:meth:`OperatorMetrics.forget`)
simply drops out. The per-job gauges outlive the trainer pod: its own gauges
vanish when it exits, often before the next scrape.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rekindle_operator import __version__
from rekindle_operator.core import metric_names
from rekindle_operator.core.goodput import Goodput
from rekindle_operator.core.job_status import Status

#: Reconciles take milliseconds unless the API server is slow; the top buckets catch that.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Reaction from a pod's end to its replacement: the goal is p99 under 250 ms.
REACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

JobKey = tuple[str, str]

#: Per-job family -> (help text, the label it has besides ``namespace`` and ``rekindle_job``).
JOB_FAMILIES: dict[str, tuple[str, str | None]] = {
    metric_names.JOB_PHASE: ("1 for the TrainingJob's current phase.", "phase"),
    metric_names.JOB_ATTEMPT: ("The TrainingJob's current (or last) attempt; 0 before one.", None),
    metric_names.JOB_EPOCHS_BUDGET: ("The TrainingJob's spec.training.epochs.", None),
    metric_names.JOB_EPOCHS_TRAINED: (
        "Epochs fully trained, as status.currentEpoch says (written when an attempt ends).",
        None,
    ),
    metric_names.JOB_EARLY_STOP_EPOCH: (
        "The epoch (1-based) at which early stopping fired, for jobs that stopped early.",
        None,
    ),
    metric_names.JOB_EPOCHS_SAVED: (
        "Epoch budget minus the epochs run when early stopping fired, for jobs that stopped early.",
        None,
    ),
    metric_names.JOB_BEST_METRIC: ("The best value of the monitored metric.", "monitor"),
    metric_names.JOB_RESTARTS: ("The TrainingJob's restarts, by the cause of the end.", "cause"),
    metric_names.JOB_LOST_STEPS: (
        "Steps trained twice because attempts ended after their last checkpoint.",
        None,
    ),
    metric_names.JOB_START_TIME: (
        "Unix time the TrainingJob (or its resumption after a suspension) started.",
        None,
    ),
    metric_names.JOB_COMPLETION_TIME: ("Unix time the TrainingJob finished.", None),
    metric_names.JOB_GOODPUT_SECONDS: (
        "Seconds of the TrainingJob's wall time spent in productive training steps.",
        None,
    ),
    metric_names.JOB_BADPUT_SECONDS: (
        "Seconds of the TrainingJob's wall time that were not productive, by cause.",
        "cause",
    ),
    metric_names.JOB_WALL_SECONDS: (
        "Seconds from the TrainingJob's first start that goodput and badput add up to.",
        None,
    ),
    metric_names.JOB_GPU_SECONDS: (
        "GPUs times seconds saved by early stopping or lost to interruptions (kind).",
        "kind",
    ),
}


@dataclass(frozen=True)
class JobRecord:
    """What the operator last wrote about one TrainingJob."""

    status: Status
    #: ``spec.training.epochs``; None when the spec could not be parsed.
    epochs: int | None = None


@dataclass(frozen=True)
class Sample:
    """One per-job sample; the collector adds the ``namespace`` and ``rekindle_job`` labels."""

    name: str
    value: float
    #: The family's own label (see :data:`JOB_FAMILIES`) and its value, if it has one.
    label: tuple[str, str] | None = None


def job_samples(record: JobRecord) -> list[Sample]:
    """The per-job samples that one job's status and epoch budget give.

    A field the status does not have yet (no early stop, no best metric, not
    finished) gives no sample rather than a made-up 0, so a panel says "no
    data" instead of a wrong number.
    """
    status = record.status
    found = [
        Sample(metric_names.JOB_ATTEMPT, status.attempt),
        Sample(metric_names.JOB_EPOCHS_TRAINED, status.current_epoch),
        Sample(metric_names.JOB_LOST_STEPS, status.lost_steps),
    ]
    if status.phase is not None:
        found.append(Sample(metric_names.JOB_PHASE, 1, ("phase", status.phase.value)))
    if record.epochs is not None:
        found.append(Sample(metric_names.JOB_EPOCHS_BUDGET, record.epochs))
    if status.early_stop_epoch is not None:
        found.append(Sample(metric_names.JOB_EARLY_STOP_EPOCH, status.early_stop_epoch))
        if record.epochs is not None:
            saved = max(record.epochs - status.early_stop_epoch, 0)
            found.append(Sample(metric_names.JOB_EPOCHS_SAVED, saved))
    if status.best_metric is not None:
        best = status.best_metric
        found.append(Sample(metric_names.JOB_BEST_METRIC, best.value, ("monitor", best.name)))
    for cause, count in sorted(status.restarts.by_cause.items()):
        found.append(Sample(metric_names.JOB_RESTARTS, count, ("cause", cause)))
    if status.start_time is not None:
        found.append(Sample(metric_names.JOB_START_TIME, status.start_time.timestamp()))
    if status.completion_time is not None:
        found.append(Sample(metric_names.JOB_COMPLETION_TIME, status.completion_time.timestamp()))
    return found + goodput_samples(status.goodput)


def goodput_samples(goodput: Goodput | None) -> list[Sample]:
    """Goodput, badput by cause (every cause, 0 included), wall and GPU seconds; none before."""
    if goodput is None:
        return []
    found = [
        Sample(metric_names.JOB_GOODPUT_SECONDS, goodput.productive_seconds),
        Sample(metric_names.JOB_WALL_SECONDS, goodput.wall_seconds),
    ]
    for cause, seconds in goodput.badput_seconds.by_cause().items():
        found.append(Sample(metric_names.JOB_BADPUT_SECONDS, seconds, ("cause", cause.value)))
    gpu = goodput.gpu_seconds
    for kind, value in (
        ("saved_by_early_stopping", gpu.saved_by_early_stopping),
        ("lost_to_interruptions", gpu.lost_to_interruptions),
    ):
        found.append(Sample(metric_names.JOB_GPU_SECONDS, value, ("kind", kind)))
    return found


class _JobsCollector(Collector):
    """Jobs by phase and the per-job gauges, from the records last kept (read at scrape time).

    Handlers write from the event loop while ``/metrics`` reads from the HTTP
    server's thread, so the records are copied under a lock.
    """

    def __init__(self) -> None:
        self._records: dict[JobKey, JobRecord] = {}
        self._lock = threading.Lock()

    def record(self, key: JobKey, record: JobRecord) -> None:
        """Keep ``record`` as what is known about job ``key``."""
        with self._lock:
            self._records[key] = record

    def forget(self, key: JobKey) -> None:
        """Drop job ``key`` (deleted)."""
        with self._lock:
            self._records.pop(key, None)

    def collect(self) -> Iterator[Metric]:
        """Every family, even those without series (so ``# TYPE`` always names them)."""
        with self._lock:
            records = sorted(self._records.items())
        yield _jobs_by_phase(records)
        families = {
            name: GaugeMetricFamily(
                name,
                help_text,
                labels=["namespace", metric_names.JOB_LABEL, *([label] if label else [])],
            )
            for name, (help_text, label) in JOB_FAMILIES.items()
        }
        for (namespace, name), record in records:
            for sample in job_samples(record):
                extra = [sample.label[1]] if sample.label else []
                families[sample.name].add_metric([namespace, name, *extra], sample.value)
        yield from families.values()


def _jobs_by_phase(records: list[tuple[JobKey, JobRecord]]) -> Metric:
    """TrainingJobs counted by (namespace, phase)."""
    family = GaugeMetricFamily(
        metric_names.JOBS,
        "TrainingJobs by phase, as the operator last saw them.",
        labels=["namespace", "phase"],
    )
    tally = collections.Counter(
        (namespace, record.status.phase.value)
        for (namespace, _), record in records
        if record.status.phase is not None
    )
    for (namespace, phase), count in sorted(tally.items()):
        family.add_metric([namespace, phase], count)
    return family


class OperatorMetrics:
    """Every operator metric, in one registry that ``/metrics`` serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._jobs = _JobsCollector()
        self.registry.register(self._jobs)
        self.restarts = Counter(
            metric_names.RESTARTS.removesuffix("_total"),
            "Attempts replaced, by the cause of the attempt's end.",
            ["namespace", "cause"],
            registry=self.registry,
        )
        self.early_stops = Counter(
            metric_names.EARLY_STOPS.removesuffix("_total"),
            "TrainingJobs that ended Succeeded because early stopping fired.",
            ["namespace"],
            registry=self.registry,
        )
        self.failures = Counter(
            metric_names.FAILURES.removesuffix("_total"),
            "TrainingJobs that ended Failed, by reason.",
            ["namespace", "reason"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            metric_names.RECONCILE_SECONDS,
            "Seconds one reconcile of one TrainingJob took.",
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.reaction_seconds = Histogram(
            metric_names.REACTION_SECONDS,
            "Seconds from observing an attempt's end to creating its replacement pod.",
            buckets=REACTION_BUCKETS,
            registry=self.registry,
        )
        self.api_errors = Counter(
            metric_names.API_ERRORS.removesuffix("_total"),
            "Kubernetes API calls that failed, by verb, resource and HTTP status (0: no answer).",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info(
            metric_names.BUILD_INFO.removesuffix("_info"),
            "The running Rekindle build: always 1.",
            registry=self.registry,
        ).info({"component": "operator", "version": __version__})

    def record_job(self, namespace: str, name: str, status: Status, *, epochs: int | None) -> None:
        """Record a job's status as just written, and its epoch budget (None: spec unreadable)."""
        self._jobs.record((namespace, name), JobRecord(status=status, epochs=epochs))

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted job: its per-job series and its place in jobs by phase."""
        self._jobs.forget((namespace, name))

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)
