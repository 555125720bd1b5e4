"""Build the chart's Grafana dashboard with grafana-foundation-sdk.

The dashboard is code so that its queries can be reviewed and tested; the
chart ships the generated JSON (``charts/rekindle/files/dashboards/rekindle.json``)
because Helm cannot run Python. ``tests/chart/test_dashboard.py`` fails when
the committed JSON differs from what this script builds.

Usage::

    python scripts/build_dashboard.py          # rewrite the JSON
    python scripts/build_dashboard.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueTextMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUTPUT: Final = (
    Path(__file__).resolve().parents[1]
    / "charts"
    / "rekindle"
    / "files"
    / "dashboards"
    / "rekindle.json"
)
UID: Final = "rekindle-training"
DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="${datasource}")

#: Selects the chosen cluster's series. "All" (the default) is ``.*``, which also matches
#: series without a ``cluster`` label: one Prometheus per cluster needs no such label.
CLUSTER: Final = 'cluster=~"$cluster"'
#: Selects the chosen job's series: the trainer's (labels set by the chart's PodMonitor)
#: and the operator's per-job ones (``rekindle_operator_job_*``, same labels).
JOB: Final = f'{CLUSTER}, namespace="$namespace", rekindle_job="$job"'
#: Selects the operator's series about the chosen namespace.
NAMESPACE: Final = f'{CLUSTER}, namespace="$namespace"'
#: The chosen job's pods by name (``<job>-<attempt>``), for exporters that know a pod's
#: name but not its labels (cAdvisor, NVIDIA's dcgm-exporter).
JOB_PODS: Final = 'pod=~"$job-[0-9]+"'
#: Trainer series are grouped by these so that a panel shows one job even
#: when two attempts overlap for a scrape or two.
BY_JOB: Final = "namespace, rekindle_job"


def _query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    """A range query with a legend."""
    return (
        prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    )


def _stat(
    title: str,
    description: str,
    expr: str,
    legend: str,
    *,
    unit: str = "none",
    no_value: str | None = None,
) -> stat.Panel:
    """A single-value panel showing the last value; ``no_value`` replaces "No data"."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(_query(expr, legend))
        .unit(unit)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(4)
        .span(3)
    )
    return panel if no_value is None else panel.no_value(no_value)


def _job_gauge(name: str, by: str = BY_JOB) -> str:
    """The chosen job's series of ``name``, one per job (and the ``by`` labels)."""
    return f"max by ({by}) ({name}{{{JOB}}})"


def _live_else_recorded(trainer: str, operator: str, by: str = BY_JOB) -> str:
    """The running trainer's value, else the one the operator recorded in the job's status.

    The trainer's series go with its pod; the operator's last while the job exists.
    """
    return f"{_job_gauge(trainer, by)} or {_job_gauge(operator, by)}"


def _series(
    title: str,
    description: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    span: int = 12,
    no_value: str | None = None,
) -> timeseries.Panel:
    """A time-series panel with one or more (expr, legend) queries."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(span)
    )
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, ref=chr(ord("A") + index)))
    return panel if no_value is None else panel.no_value(no_value)


def _gpu(metric: str) -> str:
    """dcgm-exporter's ``metric`` for the chosen job's pods, one series per pod and GPU.

    dcgm-exporter labels each GPU with the ``namespace`` and ``pod`` using it.
    Scraped with ``honorLabels: true`` those stay; without it (the GPU
    Operator's default) Prometheus renames them ``exported_namespace`` and
    ``exported_pod``, which are copied back here, so either setup works.
    """
    own = f'{metric}{{{CLUSTER}, namespace="$namespace", {JOB_PODS}}}'
    renamed = f'{metric}{{{CLUSTER}, exported_namespace="$namespace", exported_{JOB_PODS}}}'
    exported = (
        f'label_replace(label_replace({renamed}, "namespace", "$1", "exported_namespace", "(.+)"),'
        ' "pod", "$1", "exported_pod", "(.+)")'
    )
    return f"max by (namespace, pod, gpu) ({own} or {exported})"


def _containers(metric: str) -> str:
    """The cAdvisor ``metric`` of the chosen job's pods (each container, not the pod's total)."""
    return (
        f'{metric}{{{CLUSTER}, namespace="$namespace", {JOB_PODS}, container!="", '
        'container!="POD"}'
    )


def _quantiles(histogram: str, selector: str, by: str) -> list[tuple[str, str]]:
    """p50 and p95 of a histogram's rate, keeping the ``by`` labels."""
    grouping = f"{by}, le" if by else "le"
    series = f"{histogram}_bucket{{{selector}}}" if selector else f"{histogram}_bucket"
    rate = f"sum by ({grouping}) (rate({series}[$__rate_interval]))"
    suffix = " " + " ".join("{{" + label.strip() + "}}" for label in by.split(",")) if by else ""
    return [
        (f"histogram_quantile(0.5, {rate})", f"p50{suffix}"),
        (f"histogram_quantile(0.95, {rate})", f"p95{suffix}"),
    ]


def _increase(series: str) -> str:
    """Increase of a counter over the interval, counting a series born inside it whole.

    prometheus-client creates a labelled counter at its first increment, so
    ``increase()`` alone never sees the first restart, failure or save of a
    label set; a series that did not exist one interval ago counts from 0.
    """
    return (
        f"(({series} unless {series} offset $__rate_interval) "
        f"or increase({series}[$__rate_interval]))"
    )


def _annotations() -> list[dashboard.AnnotationQuery]:
    """Checkpoint saves and early stops as markers on every panel.

    The early stop is read from the operator's per-job series, which appears
    when the job's status records it: a series born inside the interval.
    """
    return [
        dashboard.AnnotationQuery()
        .name("Checkpoint saved")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("blue")
        .expr(
            f"changes(rekindle_trainer_last_checkpoint_timestamp_seconds{{{JOB}}}[$__interval]) > 0"
        ),
        dashboard.AnnotationQuery()
        .name("Early stop")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("green")
        .expr(
            f"rekindle_operator_job_early_stop_epoch{{{JOB}}} "
            f"unless rekindle_operator_job_early_stop_epoch{{{JOB}}} offset $__interval"
        ),
    ]


def _variables() -> list[Any]:
    """Data source, cluster, namespace and job pickers.

    Clusters are the ``cluster`` labels of ``rekindle_build_info`` (a Thanos or
    Mimir in front of several clusters' Prometheus adds one); "All" also covers
    a Prometheus without the label. Jobs are listed from the operator's
    per-job series: every TrainingJob has them for as long as it exists, with
    or without a running trainer.
    """
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dashboard.QueryVariable("cluster")
        .label("Cluster")
        .datasource(DATASOURCE)
        .query("label_values(rekindle_build_info, cluster)")
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC),
        dashboard.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query(f"label_values(rekindle_operator_job_phase{{{CLUSTER}}}, namespace)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC),
        dashboard.QueryVariable("job")
        .label("TrainingJob")
        .datasource(DATASOURCE)
        .query(f"label_values(rekindle_operator_job_phase{{{NAMESPACE}}}, rekindle_job)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC),
    ]


def build() -> dashboard.Dashboard:
    """The dashboard: the chosen job's training, checkpoints and restarts, then the operator."""
    board = (
        dashboard.Dashboard("Rekindle training")
        .uid(UID)
        .description(
            "A TrainingJob's progress, checkpoints, early stop and restarts; the operator's health."
        )
        .tags(["rekindle", "training"])
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .editable()
    )
    for variable in _variables():
        board = board.with_variable(variable)
    for annotation in _annotations():
        board = board.annotation(annotation)

    board = (
        board.with_row(dashboard.Row("Job"))
        .with_panel(
            _stat(
                "Phase",
                "The TrainingJob's phase (operator, from its status).",
                _job_gauge("rekindle_operator_job_phase", f"{BY_JOB}, phase"),
                "{{phase}}",
            ).text_mode(BigValueTextMode.NAME)
        )
        .with_panel(
            _stat(
                "Epoch",
                "Epochs fully trained: the running trainer's count, else the one the job's "
                "status recorded when its last attempt ended.",
                _live_else_recorded(
                    "rekindle_trainer_epoch", "rekindle_operator_job_epochs_trained"
                ),
                "{{rekindle_job}}",
            )
        )
        .with_panel(
            _stat(
                "Epoch budget",
                "The spec's epochs (operator).",
                _job_gauge("rekindle_operator_job_epochs_budget"),
                "{{rekindle_job}}",
            )
        )
        .with_panel(
            _stat(
                "Attempt",
                "The current (or last) attempt: 1 plus every restart of any cause (operator).",
                _job_gauge("rekindle_operator_job_attempt"),
                "{{rekindle_job}}",
            )
        )
        .with_panel(
            _stat(
                "Early stop epoch",
                "The epoch (1-based) at which early stopping fired (operator, from the job's "
                "status: it stays after the trainer exited).",
                _job_gauge("rekindle_operator_job_early_stop_epoch"),
                "{{rekindle_job}}",
                no_value="not stopped early",
            )
        )
        .with_panel(
            _stat(
                "Epochs saved by early stopping",
                "Epoch budget minus the epochs run when early stopping fired (operator, from "
                "the job's spec and status).",
                _job_gauge("rekindle_operator_job_epochs_saved_by_early_stopping"),
                "{{rekindle_job}}",
                no_value="not stopped early",
            )
        )
        .with_panel(
            _stat(
                "Best monitored metric",
                "The best value of the metric early stopping monitors: the running trainer's, "
                "else the one the job's status recorded.",
                _live_else_recorded(
                    "rekindle_trainer_best_metric",
                    "rekindle_operator_job_best_metric",
                    f"{BY_JOB}, monitor",
                ),
                "{{monitor}}",
            )
        )
        .with_panel(
            _stat(
                "Run time",
                "From the job's start (or resumption after a suspension) to its completion, or "
                "to now while it runs (operator).",
                f"({_job_gauge('rekindle_operator_job_completion_timestamp_seconds')} "
                f"or (time() + 0 * {_job_gauge('rekindle_operator_job_start_timestamp_seconds')}))"
                f" - {_job_gauge('rekindle_operator_job_start_timestamp_seconds')}",
                "{{rekindle_job}}",
                unit="s",
            )
        )
    )

    board = (
        board.with_row(dashboard.Row("Training"))
        .with_panel(
            _series(
                "Loss by epoch",
                "Training and validation loss at the end of each epoch.",
                [
                    (
                        f"max by ({BY_JOB}, metric) "
                        f'(rekindle_trainer_metric{{{JOB}, metric=~"loss|val_loss"}})',
                        "{{metric}}",
                    )
                ],
            )
        )
        .with_panel(
            _series(
                "Validation metrics by epoch",
                "Every validation metric Keras logs, at the end of each epoch.",
                [
                    (
                        f"max by ({BY_JOB}, metric) "
                        f'(rekindle_trainer_metric{{{JOB}, metric=~"val_.+"}})',
                        "{{metric}}",
                    )
                ],
            )
        )
        .with_panel(
            _series(
                "Epoch",
                "Epochs trained over time; flat is a stall, a drop a resume from an older save.",
                [(f"max by ({BY_JOB}) (rekindle_trainer_epoch{{{JOB}}})", "epoch")],
            )
        )
        .with_panel(
            _series(
                "Steps per second",
                "Training throughput.",
                [
                    (
                        f"sum by ({BY_JOB}) "
                        f"(deriv(rekindle_trainer_step{{{JOB}}}[$__rate_interval]))",
                        "{{rekindle_job}}",
                    )
                ],
            )
        )
    )

    board = (
        board.with_row(dashboard.Row("Checkpoints and restarts"))
        .with_panel(
            _series(
                "Checkpoint save duration",
                "Seconds from the start of a save to its atomic publish, and how long training "
                "stalled for it.",
                [
                    *_quantiles("rekindle_trainer_checkpoint_save_seconds", JOB, BY_JOB),
                    (
                        "histogram_quantile(0.95, sum by "
                        f"({BY_JOB}, le) "
                        f"(rate(rekindle_trainer_checkpoint_stall_seconds_bucket{{{JOB}}}"
                        "[$__rate_interval])))",
                        "stall p95 {{rekindle_job}}",
                    ),
                ],
                unit="s",
            )
        )
        .with_panel(
            _series(
                "Checkpoints saved by trigger",
                "Checkpoints published per interval: every N epochs, steps or seconds, on SIGTERM, "
                "at the end. 'superseded' counts periodic saves dropped unwritten because the "
                "writer was still busy: the volume cannot keep up with the save interval.",
                [
                    (
                        f"sum by ({BY_JOB}, trigger) "
                        f"{_increase(f'rekindle_trainer_checkpoints_saved_total{{{JOB}}}')}",
                        "{{trigger}}",
                    ),
                    (
                        f"sum by ({BY_JOB}, trigger) "
                        f"{_increase(f'rekindle_trainer_checkpoints_superseded_total{{{JOB}}}')}",
                        "superseded ({{trigger}})",
                    ),
                ],
            )
        )
        .with_panel(
            _series(
                "Checkpoint size",
                "Bytes of the newest checkpoint.",
                [
                    (
                        f"max by ({BY_JOB}) (rekindle_trainer_checkpoint_bytes{{{JOB}}})",
                        "{{rekindle_job}}",
                    )
                ],
                unit="bytes",
            )
        )
        .with_panel(
            _series(
                "Restarts by cause",
                "Attempts the operator replaced in this namespace, by cause (Preempted, Evicted, "
                "NodeLost, OOMKilled, Crashed, …).",
                [
                    (
                        "sum by (namespace, cause) "
                        f"{_increase(f'rekindle_operator_restarts_total{{{NAMESPACE}}}')}",
                        "{{cause}}",
                    )
                ],
            )
        )
        .with_panel(
            _series(
                "Restarts of this job by cause",
                "The chosen job's restarts so far, by cause (operator, from the job's status).",
                [(_job_gauge("rekindle_operator_job_restarts", f"{BY_JOB}, cause"), "{{cause}}")],
            )
        )
        .with_panel(
            _series(
                "Work lost on resume",
                "Steps each attempt recomputed because the newest checkpoint was older than the "
                "interruption.",
                [
                    (
                        f"max by ({BY_JOB}, attempt) (rekindle_trainer_lost_steps_total{{{JOB}}})",
                        "attempt {{attempt}}",
                    )
                ],
            )
        )
        .with_panel(
            _series(
                "Restores and corrupt checkpoints",
                "Resumes from a checkpoint, and checkpoints skipped as corrupt or half-written, "
                "per attempt.",
                [
                    (
                        f"max by ({BY_JOB}, attempt) (rekindle_trainer_restores_total{{{JOB}}})",
                        "restores, attempt {{attempt}}",
                    ),
                    (
                        f"max by ({BY_JOB}, attempt) "
                        f"(rekindle_trainer_corrupt_checkpoints_total{{{JOB}}})",
                        "corrupt skipped, attempt {{attempt}}",
                    ),
                ],
            )
        )
    )

    board = _goodput_row(board)

    board = (
        board.with_row(dashboard.Row("Resources"))
        .with_panel(
            _series(
                "GPU utilisation",
                "Percent of time each GPU of the job's pods was busy (NVIDIA dcgm-exporter's "
                "DCGM_FI_DEV_GPU_UTIL). Idle GPUs while training runs point at the input "
                "pipeline; idle with no steps at a stall.",
                [(_gpu("DCGM_FI_DEV_GPU_UTIL"), "{{pod}} GPU {{gpu}}")],
                unit="percent",
                span=6,
                no_value="No GPU metrics: needs NVIDIA's dcgm-exporter",
            )
        )
        .with_panel(
            _series(
                "GPU memory used",
                "Frame-buffer memory used on each GPU of the job's pods (dcgm-exporter's "
                "DCGM_FI_DEV_FB_USED, MiB, shown in bytes).",
                [(f"{_gpu('DCGM_FI_DEV_FB_USED')} * 1048576", "{{pod}} GPU {{gpu}}")],
                unit="bytes",
                span=6,
                no_value="No GPU metrics: needs NVIDIA's dcgm-exporter",
            )
        )
        .with_panel(
            _series(
                "CPU",
                "CPU cores each container of the job's pods uses (cAdvisor's "
                "container_cpu_usage_seconds_total, from the kubelet).",
                [
                    (
                        "sum by (namespace, pod, container) (rate("
                        f"{_containers('container_cpu_usage_seconds_total')}"
                        "[$__rate_interval]))",
                        "{{pod}} {{container}}",
                    )
                ],
                span=6,
                no_value="No cAdvisor metrics for this job's pods",
            )
        )
        .with_panel(
            _series(
                "Memory",
                "Working-set memory of each container of the job's pods, what the kubelet "
                "compares with the limit before an OOM kill (cAdvisor's "
                "container_memory_working_set_bytes).",
                [
                    (
                        "max by (namespace, pod, container) "
                        f"({_containers('container_memory_working_set_bytes')})",
                        "{{pod}} {{container}}",
                    )
                ],
                unit="bytes",
                span=6,
                no_value="No cAdvisor metrics for this job's pods",
            )
        )
    )

    return (
        board.with_row(dashboard.Row("Operator"))
        .with_panel(
            _series(
                "Jobs by phase",
                "TrainingJobs in this namespace by phase.",
                [
                    (
                        f"max by (namespace, phase) (rekindle_operator_jobs{{{NAMESPACE}}})",
                        "{{phase}}",
                    )
                ],
            )
        )
        .with_panel(
            _series(
                "Reaction time",
                "Seconds from observing an attempt's end to creating its replacement pod.",
                _quantiles("rekindle_operator_reaction_seconds", CLUSTER, ""),
                unit="s",
            )
        )
        .with_panel(
            _series(
                "Reconcile duration",
                "Seconds one reconcile of one TrainingJob took.",
                _quantiles("rekindle_operator_reconcile_duration_seconds", CLUSTER, ""),
                unit="s",
            )
        )
        .with_panel(
            _series(
                "Jobs ended",
                "Jobs that ended Failed (by reason) or Succeeded by early stopping, per interval.",
                [
                    (
                        "sum by (namespace, reason) "
                        f"{_increase(f'rekindle_operator_failed_jobs_total{{{NAMESPACE}}}')}",
                        "failed: {{reason}}",
                    ),
                    (
                        "sum by (namespace) "
                        f"{_increase(f'rekindle_operator_early_stops_total{{{NAMESPACE}}}')}",
                        "early stopped",
                    ),
                ],
            )
        )
        .with_panel(
            _series(
                "Kubernetes API errors",
                "Failed API calls of the operator per interval, by verb, resource and HTTP code.",
                [
                    (
                        "sum by (verb, resource, code) "
                        f"{_increase(f'rekindle_operator_api_errors_total{{{CLUSTER}}}')}",
                        "{{verb}} {{resource}} {{code}}",
                    )
                ],
            )
        )
    )


def _goodput_row(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """Where the chosen job's wall time went (docs/monitoring.md, Goodput; from its status)."""
    goodput = _job_gauge("rekindle_operator_job_goodput_seconds")
    wall = _job_gauge("rekindle_operator_job_wall_seconds")
    badput = f"sum by ({BY_JOB}) (rekindle_operator_job_badput_seconds{{{JOB}}})"
    every_cause = _job_gauge("rekindle_operator_job_badput_seconds", f"{BY_JOB}, cause")
    gpu = "rekindle_operator_job_gpu_seconds"
    later = "no attempt ended yet"
    return (
        board.with_row(dashboard.Row("Goodput"))
        .with_panel(
            _stat(
                "Goodput",
                "Productive training time over the job's wall time so far (operator, from "
                "status.goodput; it grows as attempts end).",
                f"{goodput} / ({wall} > 0)",
                "{{rekindle_job}}",
                unit="percentunit",
                no_value=later,
            )
        )
        .with_panel(
            _stat(
                "Productive time",
                "Seconds of steps that moved training forward (evaluation included).",
                goodput,
                "{{rekindle_job}}",
                unit="s",
                no_value=later,
            )
        )
        .with_panel(
            _stat(
                "Badput",
                "Seconds of the wall time that were not productive, all causes together.",
                badput,
                "{{rekindle_job}}",
                unit="s",
                no_value=later,
            )
        )
        .with_panel(
            _stat(
                "Wall time accounted",
                "From the job's first start to its last attempt start, queue exit or end: "
                "productive time plus badput.",
                wall,
                "{{rekindle_job}}",
                unit="s",
                no_value=later,
            )
        )
        .with_panel(
            _stat(
                "GPU-seconds lost to interruptions",
                "GPUs x seconds the job held redoing what interruptions undid: replayed work, "
                "restarts' startup and restore, attempts killed without a report.",
                f'max by ({BY_JOB}) ({gpu}{{{JOB}, kind="lost_to_interruptions"}})',
                "{{rekindle_job}}",
                no_value=later,
            )
        )
        .with_panel(
            _stat(
                "GPU-seconds saved by early stopping",
                "GPUs x the epochs early stopping skipped x the mean productive epoch time.",
                f'max by ({BY_JOB}) ({gpu}{{{JOB}, kind="saved_by_early_stopping"}})',
                "{{rekindle_job}}",
                no_value="not stopped early",
            )
        )
        .with_panel(
            _series(
                "Badput by cause",
                "Seconds of the wall time that were not productive, by cause: queued, startup, "
                "restore, checkpoint_stall, restart_downtime, lost_work_replayed, unreported, "
                "suspended (docs/monitoring.md, Goodput).",
                [(every_cause, "{{cause}}")],
                unit="s",
            )
        )
    )


def render() -> str:
    """The dashboard as the JSON text the chart ships (stable key order, trailing newline)."""
    model = build().build()
    doc: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    # Grafana wants a unique id per panel; number them in layout order.
    for number, panel in enumerate(doc["panels"], start=1):
        panel["id"] = number
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard JSON, or with ``--check`` say whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed JSON is stale"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the JSON goes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run python scripts/build_dashboard.py",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
