"""The trainer's Prometheus metrics and its ``/metrics`` + ``/healthz`` endpoint.

Names come from :mod:`rekindle_trainer.contract` so that the chart's dashboard
and alerts are tested against the same strings. Each trainer owns its own
registry (tests run several in one process). Labels are bounded: Keras log
names, save triggers and the monitored metric; nothing grows per step.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from rekindle_trainer import contract
from rekindle_trainer.contract.live import PROGRESS_PATH
from rekindle_trainer.reporting.live import LiveState

_SAVE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_STALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _version() -> str:
    """The installed ``rekindle`` distribution's version ("0.0.0" from a bare source tree)."""
    try:
        return version("rekindle")
    except PackageNotFoundError:
        return "0.0.0"


class TrainerMetrics:
    """Every metric family of :data:`contract.TRAINER_METRICS`, in one registry.

    Each family is its contract name, help text and label. Counters by save trigger
    start at 0 for every trigger, so that a rate is defined before the first save of
    a kind.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        gauge, counter = self._gauge, self._counter
        c = contract
        self.epoch = gauge(c.METRIC_EPOCH, "Epochs fully trained in this job.")
        self.step = gauge(c.METRIC_STEP, "Global optimizer steps taken.")
        self.epochs_budget = gauge(c.METRIC_EPOCHS_BUDGET, "Epoch budget.")
        self.attempt = gauge(c.METRIC_ATTEMPT, "Attempt number of this trainer.")
        self.log_value = gauge(
            c.METRIC_LOG_VALUE, "Last end-of-epoch value of each Keras log.", c.LABEL_METRIC
        )
        self.checkpoints_saved = counter(
            c.METRIC_CHECKPOINTS_SAVED, "Checkpoints published, by trigger.", c.SAVE_TRIGGERS
        )
        self.checkpoints_superseded = counter(
            c.METRIC_CHECKPOINTS_SUPERSEDED,
            "Periodic saves replaced by a newer one before the writer got to them.",
            c.SUPERSEDABLE_TRIGGERS,
        )
        self.checkpoint_seconds = self._histogram(
            c.METRIC_CHECKPOINT_SECONDS,
            "Seconds from the start of a save to its atomic publish.",
            _SAVE_BUCKETS,
        )
        self.stall_seconds = self._histogram(
            c.METRIC_CHECKPOINT_STALL_SECONDS,
            "Seconds training was stalled by a save.",
            _STALL_BUCKETS,
        )
        self.checkpoint_bytes = gauge(c.METRIC_CHECKPOINT_BYTES, "Size of the newest checkpoint.")
        self.written_bytes = counter(
            c.METRIC_CHECKPOINT_WRITTEN_BYTES, "Bytes written to the volume by saves."
        )
        self.last_checkpoint_time = gauge(
            c.METRIC_LAST_CHECKPOINT_TIME, "Unix time of the newest published checkpoint."
        )
        self.last_step_time = gauge(c.METRIC_LAST_STEP_TIME, "Unix time of the last finished step.")
        self.restores = counter(c.METRIC_RESTORES, "Restores from a checkpoint.")
        self.corrupt = counter(
            c.METRIC_CORRUPT_CHECKPOINTS, "Checkpoints skipped as corrupt or half-written."
        )
        self.lost_steps = counter(c.METRIC_LOST_STEPS, "Steps recomputed after a resume.")
        self.early_stops = counter(c.METRIC_EARLY_STOPS, "Early-stopping events.")
        self.early_stop_epoch = gauge(
            c.METRIC_EARLY_STOP_EPOCH, "Epoch (1-based) where early stopping fired."
        )
        self.epochs_saved = gauge(
            c.METRIC_EPOCHS_SAVED, "Epochs saved by early stopping (budget minus epochs run)."
        )
        self.best_value = gauge(
            c.METRIC_BEST_VALUE, "Best value of the monitored metric.", c.LABEL_MONITOR
        )
        self.preemptions = counter(c.METRIC_PREEMPTIONS, "SIGTERMs handled with a save.")
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info(
            c.METRIC_BUILD_INFO.removesuffix("_info"),
            "The running Rekindle build: always 1.",
            registry=self.registry,
        ).info({c.LABEL_COMPONENT: "trainer", c.LABEL_VERSION: _version()})

    def _gauge(self, name: str, documentation: str, label: str | None = None) -> Gauge:
        labels = [label] if label is not None else []
        return Gauge(name, documentation, labels, registry=self.registry)

    def _counter(
        self, name: str, documentation: str, triggers: tuple[str, ...] | None = None
    ) -> Counter:
        """A counter (``name`` with its ``_total``), by save trigger when ``triggers`` are given."""
        labels = [contract.LABEL_TRIGGER] if triggers is not None else []
        # prometheus-client appends ``_total`` to counters itself.
        family = Counter(name.removesuffix("_total"), documentation, labels, registry=self.registry)
        for trigger in triggers or ():
            family.labels(trigger)
        return family

    def _histogram(self, name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, documentation, buckets=buckets, registry=self.registry)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class Health:
    """What ``/healthz`` reports: the phase of the trainer and its last step time."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.last_step: float | None = None

    def document(self) -> dict[str, Any]:
        """The JSON body of ``/healthz``."""
        return {"status": "ok", "phase": self.phase, "last_step_time": self.last_step}


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/progress`` on a daemon thread.

    Args:
        metrics: the registry to expose.
        health: the health state to report.
        port: TCP port; 0 asks the OS for a free one (use :attr:`port` afterwards).
        host: the address to bind. Defaults to all interfaces (a pod's metrics port).
        live: what ``/progress`` serves (see :mod:`rekindle_trainer.contract.live`).
    """

    def __init__(
        self,
        metrics: TrainerMetrics,
        health: Health,
        port: int,
        host: str = "0.0.0.0",
        *,
        live: LiveState | None = None,
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            """Three read-only paths; everything else is 404."""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == contract.METRICS_PATH:
                    self._send(200, CONTENT_TYPE_LATEST, outer.metrics.exposition())
                elif path == contract.HEALTH_PATH:
                    body = json.dumps(outer.health.document()).encode()
                    self._send(200, "application/json", body)
                elif path == PROGRESS_PATH:
                    body = outer.live.document().to_json().encode()
                    self._send(200, "application/json", body)
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # scrapes every few seconds would flood the log

        self.metrics = metrics
        self.health = health
        self.live = live if live is not None else LiveState()
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rekindle-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
