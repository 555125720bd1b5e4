"""Names of the metrics the operator serves on ``/metrics``.

Kept apart from the code that registers them so that the chart's dashboard and
alerts can be tested against them without importing kopf.

The ``rekindle_operator_job_*`` gauges are one series per TrainingJob, read at
scrape time from the job's status as the operator last saw it. They last as
long as the job does, so a job's results stay on the dashboard after its
trainer pod (whose own gauges vanish with it) has exited.
"""

from __future__ import annotations

from typing import Final

from rekindle_trainer import contract

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
#: Gauge, labels ``component`` (``operator``), ``version``: always 1; the trainer serves it too.
BUILD_INFO: Final = contract.METRIC_BUILD_INFO

#: The label that names the TrainingJob in per-job series: the chart's PodMonitor gives
#: trainer series the same label, so one dashboard variable selects both.
JOB_LABEL: Final = "rekindle_job"

#: Gauge, labels ``namespace``, ``rekindle_job``, ``phase``: 1 for the job's current phase.
JOB_PHASE: Final = "rekindle_operator_job_phase"
#: Gauge, labels ``namespace``, ``rekindle_job``: the current (or last) attempt; 0 before the first.
JOB_ATTEMPT: Final = "rekindle_operator_job_attempt"
#: Gauge, labels ``namespace``, ``rekindle_job``: the spec's epochs (``spec.training.epochs``).
JOB_EPOCHS_BUDGET: Final = "rekindle_operator_job_epochs_budget"
#: Gauge, labels ``namespace``, ``rekindle_job``: epochs fully trained (``status.currentEpoch``,
#: written when an attempt ends).
JOB_EPOCHS_TRAINED: Final = "rekindle_operator_job_epochs_trained"
#: Gauge, labels ``namespace``, ``rekindle_job``: the epoch (1-based) at which early stopping
#: fired (``status.earlyStopEpoch``); only for jobs that stopped early.
JOB_EARLY_STOP_EPOCH: Final = "rekindle_operator_job_early_stop_epoch"
#: Gauge, labels ``namespace``, ``rekindle_job``: the spec's epochs minus the epochs run when
#: early stopping fired; only for jobs that stopped early.
JOB_EPOCHS_SAVED: Final = "rekindle_operator_job_epochs_saved_by_early_stopping"
#: Gauge, labels ``namespace``, ``rekindle_job``, ``monitor``: the best value of the monitored
#: metric (``status.bestMetric``).
JOB_BEST_METRIC: Final = "rekindle_operator_job_best_metric"
#: Gauge, labels ``namespace``, ``rekindle_job``, ``cause``: the job's restarts by cause
#: (``status.restarts.byCause``; causes that never happened have no series).
JOB_RESTARTS: Final = "rekindle_operator_job_restarts"
#: Gauge, labels ``namespace``, ``rekindle_job``: steps trained twice because attempts ended
#: after their last checkpoint (``status.lostSteps``).
JOB_LOST_STEPS: Final = "rekindle_operator_job_lost_steps"
#: Gauge, labels ``namespace``, ``rekindle_job``: Unix time the job (or its resumption after a
#: suspension) started (``status.startTime``).
JOB_START_TIME: Final = "rekindle_operator_job_start_timestamp_seconds"
#: Gauge, labels ``namespace``, ``rekindle_job``: Unix time the job finished
#: (``status.completionTime``); only for finished jobs.
JOB_COMPLETION_TIME: Final = "rekindle_operator_job_completion_timestamp_seconds"

# Goodput (``status.goodput``; docs/monitoring.md, Goodput). The convention: the job's wall
# time since its first start, in seconds, is split into ``goodput`` (productive training) and
# ``badput`` labelled by ``cause``, so that goodput + sum(badput) == wall; resources held are
# ``<resource>_seconds`` labelled by ``kind``. Gauges, like every per-job series: read from the
# status, they grow while the job lives and vanish with it; never rate() them.

#: Gauge, labels ``namespace``, ``rekindle_job``: seconds of productive training.
JOB_GOODPUT_SECONDS: Final = "rekindle_operator_job_goodput_seconds"
#: Gauge, labels ``namespace``, ``rekindle_job``, ``cause`` (queued, startup, restore,
#: checkpoint_stall, restart_downtime, lost_work_replayed, unreported, suspended): seconds
#: of the wall time that were not productive, by cause (every cause has a series).
JOB_BADPUT_SECONDS: Final = "rekindle_operator_job_badput_seconds"
#: Gauge, labels ``namespace``, ``rekindle_job``: the seconds goodput and badput add up to
#: (from the first start to the last attempt start, queue exit or end).
JOB_WALL_SECONDS: Final = "rekindle_operator_job_wall_seconds"
#: Gauge, labels ``namespace``, ``rekindle_job``, ``kind`` (saved_by_early_stopping,
#: lost_to_interruptions): GPUs (``resources.gpus`` x ``workers``) x seconds.
JOB_GPU_SECONDS: Final = "rekindle_operator_job_gpu_seconds"

#: Every per-job gauge (see :data:`JOB_LABEL`).
JOB_METRICS: Final = (
    JOB_PHASE,
    JOB_ATTEMPT,
    JOB_EPOCHS_BUDGET,
    JOB_EPOCHS_TRAINED,
    JOB_EARLY_STOP_EPOCH,
    JOB_EPOCHS_SAVED,
    JOB_BEST_METRIC,
    JOB_RESTARTS,
    JOB_LOST_STEPS,
    JOB_START_TIME,
    JOB_COMPLETION_TIME,
    JOB_GOODPUT_SECONDS,
    JOB_BADPUT_SECONDS,
    JOB_WALL_SECONDS,
    JOB_GPU_SECONDS,
)

#: Every metric family the operator exports (Prometheus names, counters with ``_total``).
OPERATOR_METRICS: Final = (
    JOBS,
    RESTARTS,
    EARLY_STOPS,
    FAILURES,
    RECONCILE_SECONDS,
    REACTION_SECONDS,
    API_ERRORS,
    *JOB_METRICS,
    # The build, and the process metrics (CPU, memory, file descriptors) of prometheus-client.
    *contract.RUNTIME_METRICS,
)
