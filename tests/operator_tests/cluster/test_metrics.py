"""The operator's metrics: declared names, per-job gauges from each status, and their end."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rekindle_operator.cluster import jobs, reconcile
from rekindle_operator.cluster.context import OperatorContext
from rekindle_operator.cluster.operator_metrics import (
    JOB_FAMILIES,
    JobRecord,
    OperatorMetrics,
    Sample,
    job_samples,
)
from rekindle_operator.core import metric_names
from rekindle_operator.core.goodput import Badput, Goodput, GpuSeconds
from rekindle_operator.core.job_status import BestMetric, Restarts, Status
from rekindle_operator.core.reasons import Phase


def families(metrics: OperatorMetrics) -> dict[str, object]:
    text = generate_latest(metrics.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_declared_name_is_registered_and_nothing_else() -> None:
    # Histograms' "_created" series show as families of their own in the text format.
    registered = {n for n in families(OperatorMetrics()) if not n.endswith("_created")}
    declared = {name.removesuffix("_total") for name in metric_names.OPERATOR_METRICS}
    assert registered == declared


def status(**changes: Any) -> Status:
    """A status with ``changes`` (dataclass field names)."""
    return Status().but(**changes)


def test_jobs_by_phase_counts_the_last_phase_of_each_job() -> None:
    metrics = OperatorMetrics()
    metrics.record_job("ml", "a", status(phase=Phase.RUNNING), epochs=5)
    metrics.record_job("ml", "b", status(phase=Phase.RUNNING), epochs=5)
    metrics.record_job("ml", "b", status(phase=Phase.SUCCEEDED), epochs=5)
    metrics.record_job("cv", "c", status(phase=Phase.RUNNING), epochs=5)
    metrics.record_job("cv", "new", status(), epochs=5)  # not reconciled yet: no phase
    metrics.forget("ml", "a")
    text = generate_latest(metrics.registry).decode()
    assert f'{metric_names.JOBS}{{namespace="ml",phase="Succeeded"}} 1.0' in text
    assert f'{metric_names.JOBS}{{namespace="cv",phase="Running"}} 1.0' in text
    assert 'namespace="ml",phase="Running"' not in text


STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FINISHED = STARTED + timedelta(minutes=30)
ONE_RESTART = Restarts(total=1, disruptions=1, by_cause={"NodeLost": 1})


@dataclass(frozen=True)
class SampleCase:
    """A job's status and epoch budget, and the per-job samples they must give."""

    name: str
    status: Status
    epochs: int | None
    want: set[Sample]


SAMPLE_CASES = [
    SampleCase(
        "new job, not reconciled yet",
        Status(),
        10,
        {
            Sample(metric_names.JOB_ATTEMPT, 0),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 0),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_EPOCHS_BUDGET, 10),
        },
    ),
    SampleCase(
        "running after a node was lost",
        status(
            phase=Phase.RUNNING,
            attempt=2,
            current_epoch=4,
            lost_steps=37,
            restarts=ONE_RESTART,
            best_metric=BestMetric(name="val_loss", value=0.25, epoch=3),
            start_time=STARTED,
        ),
        40,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Running")),
            Sample(metric_names.JOB_ATTEMPT, 2),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 4),
            Sample(metric_names.JOB_LOST_STEPS, 37),
            Sample(metric_names.JOB_EPOCHS_BUDGET, 40),
            Sample(metric_names.JOB_RESTARTS, 1, ("cause", "NodeLost")),
            Sample(metric_names.JOB_BEST_METRIC, 0.25, ("monitor", "val_loss")),
            Sample(metric_names.JOB_START_TIME, STARTED.timestamp()),
        },
    ),
    SampleCase(
        "stopped early: the stop epoch and the epochs it saved",
        status(
            phase=Phase.SUCCEEDED,
            attempt=2,
            current_epoch=9,
            early_stop_epoch=9,
            restarts=ONE_RESTART,
            best_metric=BestMetric(name="val_accuracy", value=0.97, epoch=7),
            start_time=STARTED,
            completion_time=FINISHED,
        ),
        40,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Succeeded")),
            Sample(metric_names.JOB_ATTEMPT, 2),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 9),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_EPOCHS_BUDGET, 40),
            Sample(metric_names.JOB_EARLY_STOP_EPOCH, 9),
            Sample(metric_names.JOB_EPOCHS_SAVED, 31),
            Sample(metric_names.JOB_RESTARTS, 1, ("cause", "NodeLost")),
            Sample(metric_names.JOB_BEST_METRIC, 0.97, ("monitor", "val_accuracy")),
            Sample(metric_names.JOB_START_TIME, STARTED.timestamp()),
            Sample(metric_names.JOB_COMPLETION_TIME, FINISHED.timestamp()),
        },
    ),
    SampleCase(
        "stopped on the last epoch: nothing saved",
        status(phase=Phase.SUCCEEDED, attempt=1, current_epoch=5, early_stop_epoch=5),
        5,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Succeeded")),
            Sample(metric_names.JOB_ATTEMPT, 1),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 5),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_EPOCHS_BUDGET, 5),
            Sample(metric_names.JOB_EARLY_STOP_EPOCH, 5),
            Sample(metric_names.JOB_EPOCHS_SAVED, 0),
        },
    ),
    SampleCase(
        "completed every epoch: no early-stop series",
        status(phase=Phase.SUCCEEDED, attempt=1, current_epoch=5, completion_time=FINISHED),
        5,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Succeeded")),
            Sample(metric_names.JOB_ATTEMPT, 1),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 5),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_EPOCHS_BUDGET, 5),
            Sample(metric_names.JOB_COMPLETION_TIME, FINISHED.timestamp()),
        },
    ),
    SampleCase(
        "restarts split by cause, one series each",
        status(
            phase=Phase.RESTARTING,
            attempt=4,
            restarts=Restarts(
                total=3, failures=2, disruptions=1, by_cause={"Crashed": 2, "Preempted": 1}
            ),
        ),
        5,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Restarting")),
            Sample(metric_names.JOB_ATTEMPT, 4),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 0),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_EPOCHS_BUDGET, 5),
            Sample(metric_names.JOB_RESTARTS, 2, ("cause", "Crashed")),
            Sample(metric_names.JOB_RESTARTS, 1, ("cause", "Preempted")),
        },
    ),
    SampleCase(
        "spec unreadable: no budget, so no epochs saved either",
        status(phase=Phase.FAILED, early_stop_epoch=3, completion_time=FINISHED),
        None,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Failed")),
            Sample(metric_names.JOB_ATTEMPT, 0),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 0),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_EARLY_STOP_EPOCH, 3),
            Sample(metric_names.JOB_COMPLETION_TIME, FINISHED.timestamp()),
        },
    ),
]


GOODPUT = Goodput(
    since=STARTED,
    through=STARTED + timedelta(seconds=300),
    productive_seconds=200.0,
    badput_seconds=Badput(queued=30.0, startup=40.0, checkpoint_stall=10.0, restart_downtime=20.0),
    gpu_seconds=GpuSeconds(saved_by_early_stopping=800.0, lost_to_interruptions=160.0),
)
SAMPLE_CASES.append(
    SampleCase(
        "goodput: productive, every badput cause, wall and GPU seconds",
        status(phase=Phase.RUNNING, attempt=2, goodput=GOODPUT),
        None,
        {
            Sample(metric_names.JOB_PHASE, 1, ("phase", "Running")),
            Sample(metric_names.JOB_ATTEMPT, 2),
            Sample(metric_names.JOB_EPOCHS_TRAINED, 0),
            Sample(metric_names.JOB_LOST_STEPS, 0),
            Sample(metric_names.JOB_GOODPUT_SECONDS, 200.0),
            Sample(metric_names.JOB_WALL_SECONDS, 300.0),
            *(
                Sample(metric_names.JOB_BADPUT_SECONDS, seconds, ("cause", cause))
                for cause, seconds in {
                    "queued": 30.0,
                    "startup": 40.0,
                    "restore": 0.0,
                    "checkpoint_stall": 10.0,
                    "restart_downtime": 20.0,
                    "lost_work_replayed": 0.0,
                    "unreported": 0.0,
                    "suspended": 0.0,
                }.items()
            ),
            Sample(metric_names.JOB_GPU_SECONDS, 800.0, ("kind", "saved_by_early_stopping")),
            Sample(metric_names.JOB_GPU_SECONDS, 160.0, ("kind", "lost_to_interruptions")),
        },
    )
)


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=[c.name for c in SAMPLE_CASES])
def test_job_samples_from_status(case: SampleCase) -> None:
    samples = job_samples(JobRecord(status=case.status, epochs=case.epochs))
    assert len(samples) == len(set(samples)), samples
    assert set(samples) == case.want


def test_every_sample_belongs_to_a_declared_family_with_its_label() -> None:
    for case in SAMPLE_CASES:
        for sample in job_samples(JobRecord(status=case.status, epochs=case.epochs)):
            assert sample.name in metric_names.JOB_METRICS, sample
            _, label = JOB_FAMILIES[sample.name]
            assert (sample.label[0] if sample.label else None) == label, sample


def scraped(metrics: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every per-job sample in the exposition, keyed by (name, labels)."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in metric_names.JOB_METRICS
    }


def test_the_exposition_labels_each_job_by_namespace_and_rekindle_job() -> None:
    metrics = OperatorMetrics()
    (case,) = [c for c in SAMPLE_CASES if c.name.startswith("stopped early")]
    metrics.record_job("ml", "digits", case.status, epochs=case.epochs)
    metrics.record_job("cv", "digits", status(phase=Phase.RUNNING, attempt=1), epochs=7)
    series = scraped(metrics)
    job = (("namespace", "ml"), (metric_names.JOB_LABEL, "digits"))
    assert series[(metric_names.JOB_EARLY_STOP_EPOCH, frozenset(job))] == 9
    assert series[(metric_names.JOB_EPOCHS_SAVED, frozenset(job))] == 31
    assert series[(metric_names.JOB_BEST_METRIC, frozenset({*job, ("monitor", "val_accuracy")}))]
    other = frozenset({("namespace", "cv"), (metric_names.JOB_LABEL, "digits")})
    assert series[(metric_names.JOB_EPOCHS_BUDGET, other)] == 7
    assert (metric_names.JOB_EARLY_STOP_EPOCH, other) not in series
    assert len(series) == len(case.want) + 5  # the second job: phase, attempt, epochs, lost, budget


def test_a_newer_status_replaces_the_jobs_series() -> None:
    metrics = OperatorMetrics()
    metrics.record_job("ml", "digits", status(phase=Phase.RUNNING, attempt=1), epochs=40)
    metrics.record_job(
        "ml", "digits", status(phase=Phase.SUCCEEDED, attempt=1, early_stop_epoch=12), epochs=40
    )
    series = scraped(metrics)
    job = frozenset({("namespace", "ml"), (metric_names.JOB_LABEL, "digits")})
    assert series[(metric_names.JOB_EPOCHS_SAVED, job)] == 28
    assert (metric_names.JOB_PHASE, job | {("phase", "Succeeded")}) in series
    assert (metric_names.JOB_PHASE, job | {("phase", "Running")}) not in series


def test_a_deleted_job_drops_out_and_the_families_stay_declared() -> None:
    metrics = OperatorMetrics()
    (case,) = [c for c in SAMPLE_CASES if c.name.startswith("stopped early")]
    metrics.record_job("ml", "digits", case.status, epochs=case.epochs)
    metrics.record_job("ml", "other", status(phase=Phase.RUNNING), epochs=3)
    metrics.forget("ml", "digits")
    metrics.forget("ml", "never-seen")  # forgetting an unknown job is harmless
    series = scraped(metrics)
    assert all(dict(labels)[metric_names.JOB_LABEL] == "other" for _, labels in series)
    metrics.forget("ml", "other")
    assert scraped(metrics) == {}
    text = generate_latest(metrics.registry).decode()
    for name in metric_names.JOB_METRICS:
        assert f"# TYPE {name} gauge" in text, name


def test_counters_and_histograms_use_the_declared_labels() -> None:
    metrics = OperatorMetrics()
    metrics.restarts.labels("ml", "Preempted").inc()
    metrics.early_stops.labels("ml").inc()
    metrics.failures.labels("ml", "MaxRestartsExceeded").inc()
    metrics.api_errors.labels("patch", "pods", "409").inc()
    metrics.reconcile_seconds.observe(0.02)
    metrics.reaction_seconds.observe(0.1)
    text = generate_latest(metrics.registry).decode()
    assert f'{metric_names.RESTARTS}{{cause="Preempted",namespace="ml"}} 1.0' in text
    assert f'{metric_names.EARLY_STOPS}{{namespace="ml"}} 1.0' in text
    assert f'{metric_names.FAILURES}{{namespace="ml",reason="MaxRestartsExceeded"}} 1.0' in text
    assert f'{metric_names.API_ERRORS}{{code="409",resource="pods",verb="patch"}} 1.0' in text
    assert f"{metric_names.RECONCILE_SECONDS}_count 1.0" in text
    assert f'{metric_names.REACTION_SECONDS}_bucket{{le="0.25"}} 1.0' in text


def test_two_operators_in_one_process_do_not_collide() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()
    first.restarts.labels("ml", "Evicted").inc()
    assert "Evicted" not in generate_latest(second.registry).decode()


class _Stopped:
    """A stand-in for kopf's ``stopped`` flag."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> bool:
        await self.event.wait()
        return True


async def test_a_reconciler_that_stops_takes_its_jobs_series_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deleted, paused by peering (another replica takes the job) or shut down: no stale series."""
    ctx = OperatorContext(api=None, metrics=OperatorMetrics())  # type: ignore[arg-type]
    passes = 0

    async def one_pass(
        ctx: OperatorContext, *, namespace: str, name: str, **_: Any
    ) -> float | None:
        nonlocal passes
        passes += 1
        ctx.metrics.record_job(namespace, name, status(phase=Phase.RUNNING, attempt=1), epochs=3)
        return None

    monkeypatch.setattr(reconcile, "reconcile", one_pass)
    ctx.metrics.record_job("ml", "other", status(phase=Phase.RUNNING), epochs=3)
    stopped = _Stopped()
    reconciler = asyncio.create_task(
        jobs.run_reconciler(
            ctx,
            namespace="ml",
            name="digits",
            pods=list,
            stopped=stopped,
            logger=logging.getLogger("test"),
        )
    )
    while passes == 0:
        await asyncio.sleep(0.01)
    assert {dict(labels)[metric_names.JOB_LABEL] for _, labels in scraped(ctx.metrics)} == {
        "digits",
        "other",
    }
    stopped.event.set()
    await asyncio.wait_for(reconciler, 2)
    assert {dict(labels)[metric_names.JOB_LABEL] for _, labels in scraped(ctx.metrics)} == {"other"}
