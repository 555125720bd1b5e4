"""The operator's own Prometheus metrics, registered under the names in :mod:`metric_names`.

One :class:`OperatorMetrics` holds every metric in its own registry, so that
tests (and two operators in one process) never collide on the global one.
Jobs by phase are not a counter kept in step by hand: a collector counts the
phases the operator last saw at scrape time, so a deleted job simply drops out.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rekindle_operator import metric_names

#: Reconciles take milliseconds unless the API server is slow; the top buckets catch that.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Reaction from a pod's end to its replacement: the goal is p99 under 250 ms.
REACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

JobKey = tuple[str, str]


class _PhaseCollector(Collector):
    """Counts TrainingJobs by (namespace, phase) from the phases last recorded."""

    def __init__(self) -> None:
        self.phases: dict[JobKey, str] = {}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            metric_names.JOBS,
            "TrainingJobs by phase, as the operator last saw them.",
            labels=["namespace", "phase"],
        )
        tally = Tally((namespace, phase) for (namespace, _), phase in self.phases.items())
        for (namespace, phase), count in sorted(tally.items()):
            family.add_metric([namespace, phase], count)
        yield family


class OperatorMetrics:
    """Every operator metric, in one registry that ``/metrics`` serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._phases = _PhaseCollector()
        self.registry.register(self._phases)
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

    def set_phase(self, namespace: str, name: str, phase: str) -> None:
        """Record the phase of one job (for the jobs-by-phase gauge)."""
        self._phases.phases[(namespace, name)] = phase

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted job from the jobs-by-phase gauge."""
        self._phases.phases.pop((namespace, name), None)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)
