"""Names of the metrics the operator serves on ``/metrics``.

Kept apart from the code that registers them so that the chart's dashboard and
alerts can be tested against them without importing kopf.
"""

from __future__ import annotations

from typing import Final

#: Gauge, labels ``namespace``, ``phase``: TrainingJobs by phase.
JOBS: Final = "rekindle_operator_jobs"
#: Counter, labels ``namespace``, ``cause``: attempts replaced, by cause
#: (Preempted, Evicted, NodeLost, Deleted, OOMKilled, Crashed, ImagePullError, ConfigError,
#: PendingTimeout).
RESTARTS: Final = "rekindle_operator_restarts_total"
#: Counter, label ``namespace``: jobs that ended Succeeded by early stopping.
EARLY_STOPS: Final = "rekindle_operator_early_stops_total"
#: Counter, labels ``namespace``, ``reason``: jobs that ended Failed.
FAILURES: Final = "rekindle_operator_failed_jobs_total"
#: Histogram: seconds one reconcile of one TrainingJob took.
RECONCILE_SECONDS: Final = "rekindle_operator_reconcile_duration_seconds"
#: Histogram: seconds from observing an attempt's end to creating its replacement pod.
REACTION_SECONDS: Final = "rekindle_operator_reaction_seconds"
#: Counter, labels ``verb``, ``resource``, ``code``: failed Kubernetes API calls.
API_ERRORS: Final = "rekindle_operator_api_errors_total"

OPERATOR_METRICS: Final = (
    JOBS,
    RESTARTS,
    EARLY_STOPS,
    FAILURES,
    RECONCILE_SECONDS,
    REACTION_SECONDS,
    API_ERRORS,
)
