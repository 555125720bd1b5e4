"""`promtool check metrics` on what the operator and the trainer really serve.

Each registry is built in-process as the operator and the trainer build it,
filled so that every family has samples (labelled ones included), rendered
with prometheus-client's text format and piped to promtool, which lints
names, suffixes, help texts and types. Both carry ``rekindle_build_info`` and
the process metrics.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta

from prometheus_client.exposition import generate_latest

from rekindle_operator import __version__
from rekindle_operator.cluster.operator_metrics import OperatorMetrics
from rekindle_operator.core import metric_names
from rekindle_operator.core.job_status import BestMetric, Restarts, Status
from rekindle_operator.core.reasons import Phase
from rekindle_trainer import contract
from rekindle_trainer.reporting.metrics import TrainerMetrics
from tests.support.deps import need_tool

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _promtool_check(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` with the exposition on its standard input."""
    return subprocess.run(
        [need_tool("promtool"), "check", "metrics"],
        input=exposition.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _operator_exposition() -> bytes:
    """The operator's registry after a job stopped early, one failed, a restart, an API error."""
    metrics = OperatorMetrics()
    stopped = Status().but(
        phase=Phase.SUCCEEDED,
        attempt=2,
        current_epoch=9,
        early_stop_epoch=9,
        lost_steps=12,
        restarts=Restarts(total=1, disruptions=1, by_cause={"NodeLost": 1}),
        best_metric=BestMetric(name="val_loss", value=0.25, epoch=7),
        start_time=STARTED,
        completion_time=STARTED + timedelta(minutes=30),
    )
    metrics.record_job("ml", "digits", stopped, epochs=40)
    metrics.record_job("ml", "broken", Status().but(phase=Phase.FAILED, attempt=1), epochs=5)
    counted = (
        (metrics.restarts, ("ml", "NodeLost")),
        (metrics.early_stops, ("ml",)),
        (metrics.failures, ("ml", "InvalidConfig")),
        (metrics.api_errors, ("create", "pods", "403")),
    )
    for counter, labels in counted:
        counter.labels(*labels).inc()
    for histogram in (metrics.reconcile_seconds, metrics.reaction_seconds):
        histogram.observe(0.05)
    return generate_latest(metrics.registry)


def _trainer_exposition() -> bytes:
    """The trainer's registry in the middle of a resumed run that has saved and stopped early."""
    metrics = TrainerMetrics()
    metrics.epoch.set(4)
    metrics.step.set(92)
    metrics.epochs_budget.set(40)
    metrics.attempt.set(2)
    metrics.log_value.labels("val_loss").set(0.3)
    metrics.checkpoints_saved.labels("epoch").inc()
    metrics.checkpoints_superseded.labels("steps").inc()
    metrics.checkpoint_seconds.observe(0.4)
    metrics.stall_seconds.observe(0.01)
    metrics.checkpoint_bytes.set(1e6)
    metrics.written_bytes.inc(1e6)
    metrics.last_checkpoint_time.set(STARTED.timestamp())
    metrics.last_step_time.set(STARTED.timestamp())
    metrics.restores.inc()
    metrics.lost_steps.inc(10)
    metrics.early_stops.inc()
    metrics.early_stop_epoch.set(4)
    metrics.epochs_saved.set(36)
    metrics.best_value.labels("val_loss").set(0.3)
    metrics.preemptions.inc()
    return generate_latest(metrics.registry)


def _families(exposition: bytes) -> set[str]:
    """Every family named by a ``# TYPE`` line (prometheus-client's ``*_created`` gauges aside)."""
    names = re.findall(r"^# TYPE (\S+) ", exposition.decode(), re.MULTILINE)
    return {name for name in names if not name.endswith("_created")}


def test_promtool_finds_nothing_to_lint_in_the_operators_exposition() -> None:
    result = _promtool_check(_operator_exposition())
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (result.stdout + result.stderr).strip()


def test_promtool_finds_nothing_to_lint_in_the_trainers_exposition() -> None:
    result = _promtool_check(_trainer_exposition())
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (result.stdout + result.stderr).strip()


def test_promtool_check_would_catch_a_badly_named_counter() -> None:
    """The check above can fail: a counter without ``_total`` and help text is reported."""
    result = _promtool_check(b"# TYPE rekindle_saves counter\nrekindle_saves 1\n")
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


def test_both_serve_their_build_and_process_metrics() -> None:
    version = re.escape(__version__)
    for component, exposition in (
        ("operator", _operator_exposition()),
        ("trainer", _trainer_exposition()),
    ):
        text = exposition.decode()
        pattern = rf'^rekindle_build_info\{{component="{component}",version="{version}"\}} 1\.0$'
        assert re.search(pattern, text, re.MULTILINE), text
        assert set(contract.RUNTIME_METRICS) <= _families(exposition), component


def test_every_declared_family_is_served_and_nothing_else() -> None:
    operator = _families(_operator_exposition())
    assert operator == set(metric_names.OPERATOR_METRICS)
    trainer = _families(_trainer_exposition())
    assert trainer == set(contract.TRAINER_METRICS) | set(contract.RUNTIME_METRICS)
