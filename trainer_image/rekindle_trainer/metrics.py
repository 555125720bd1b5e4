"""The trainer's Prometheus metrics and its ``/metrics`` + ``/healthz`` endpoint.

Names come from :mod:`rekindle_trainer.contract` so that the chart's dashboard
and alerts are tested against the same strings. Each trainer owns its own
registry (tests run several in one process). Labels are bounded: Keras log
names, save triggers and the monitored metric; nothing grows per step.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from rekindle_trainer import contract

_SAVE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_STALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _bare(name: str) -> str:
    """prometheus-client appends ``_total`` to counters itself."""
    return name.removesuffix("_total")


class TrainerMetrics:
    """Every metric family of :data:`contract.TRAINER_METRICS`, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.epoch = Gauge(contract.METRIC_EPOCH, "Epochs fully trained in this job.", registry=r)
        self.step = Gauge(contract.METRIC_STEP, "Global optimizer steps taken.", registry=r)
        self.epochs_budget = Gauge(contract.METRIC_EPOCHS_BUDGET, "Epoch budget.", registry=r)
        self.attempt = Gauge(contract.METRIC_ATTEMPT, "Attempt number of this trainer.", registry=r)
        self.log_value = Gauge(
            contract.METRIC_LOG_VALUE,
            "Last end-of-epoch value of each Keras log.",
            [contract.LABEL_METRIC],
            registry=r,
        )
        self.checkpoints_saved = Counter(
            _bare(contract.METRIC_CHECKPOINTS_SAVED),
            "Checkpoints published, by trigger.",
            [contract.LABEL_TRIGGER],
            registry=r,
        )
        for trigger in contract.SAVE_TRIGGERS:
            self.checkpoints_saved.labels(trigger)
        self.checkpoints_superseded = Counter(
            _bare(contract.METRIC_CHECKPOINTS_SUPERSEDED),
            "Periodic saves replaced by a newer one before the writer got to them.",
            [contract.LABEL_TRIGGER],
            registry=r,
        )
        for trigger in contract.SUPERSEDABLE_TRIGGERS:
            self.checkpoints_superseded.labels(trigger)
        self.checkpoint_seconds = Histogram(
            contract.METRIC_CHECKPOINT_SECONDS,
            "Seconds from the start of a save to its atomic publish.",
            buckets=_SAVE_BUCKETS,
            registry=r,
        )
        self.stall_seconds = Histogram(
            contract.METRIC_CHECKPOINT_STALL_SECONDS,
            "Seconds training was stalled by a save.",
            buckets=_STALL_BUCKETS,
            registry=r,
        )
        self.checkpoint_bytes = Gauge(
            contract.METRIC_CHECKPOINT_BYTES, "Size of the newest checkpoint.", registry=r
        )
        self.written_bytes = Counter(
            _bare(contract.METRIC_CHECKPOINT_WRITTEN_BYTES),
            "Bytes written to the volume by saves.",
            registry=r,
        )
        self.last_checkpoint_time = Gauge(
            contract.METRIC_LAST_CHECKPOINT_TIME,
            "Unix time of the newest published checkpoint.",
            registry=r,
        )
        self.last_step_time = Gauge(
            contract.METRIC_LAST_STEP_TIME, "Unix time of the last finished step.", registry=r
        )
        self.restores = Counter(
            _bare(contract.METRIC_RESTORES), "Restores from a checkpoint.", registry=r
        )
        self.corrupt = Counter(
            _bare(contract.METRIC_CORRUPT_CHECKPOINTS),
            "Checkpoints skipped as corrupt or half-written.",
            registry=r,
        )
        self.lost_steps = Counter(
            _bare(contract.METRIC_LOST_STEPS), "Steps recomputed after a resume.", registry=r
        )
        self.early_stops = Counter(
            _bare(contract.METRIC_EARLY_STOPS), "Early-stopping events.", registry=r
        )
        self.early_stop_epoch = Gauge(
            contract.METRIC_EARLY_STOP_EPOCH,
            "Epoch (1-based) where early stopping fired.",
            registry=r,
        )
        self.epochs_saved = Gauge(
            contract.METRIC_EPOCHS_SAVED,
            "Epochs saved by early stopping (budget minus epochs run).",
            registry=r,
        )
        self.best_value = Gauge(
            contract.METRIC_BEST_VALUE,
            "Best value of the monitored metric.",
            [contract.LABEL_MONITOR],
            registry=r,
        )
        self.preemptions = Counter(
            _bare(contract.METRIC_PREEMPTIONS), "SIGTERMs handled with a save.", registry=r
        )

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class Health:
    """What ``/healthz`` reports: the phase of the trainer and its last step time."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.started = time.time()
        self.last_step: float | None = None

    def document(self) -> dict[str, Any]:
        """The JSON body of ``/healthz``."""
        return {"status": "ok", "phase": self.phase, "last_step_time": self.last_step}


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on a daemon thread.

    Args:
        metrics: the registry to expose.
        health: the health state to report.
        port: TCP port; 0 asks the OS for a free one (use :attr:`port` afterwards).
        host: the address to bind. Defaults to all interfaces (a pod's metrics port).
    """

    def __init__(
        self, metrics: TrainerMetrics, health: Health, port: int, host: str = "0.0.0.0"
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            """Two read-only paths; everything else is 404."""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == contract.METRICS_PATH:
                    self._send(200, CONTENT_TYPE_LATEST, outer.metrics.exposition())
                elif path == contract.HEALTH_PATH:
                    body = json.dumps(outer.health.document()).encode()
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
