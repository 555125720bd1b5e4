"""One brain, two bodies: the local runner obeys the shared engine table.

Every row of ``tests/support/engine_cases.py`` that a local process can
express is played through the runner's own path: a real process ends with the
row's exit code (or signal) and termination message, the runner classifies
that end, asks the engine and stores the job's status in ``job.json``. The
decision and the stored status must be the row's, as they are for the
operator's pods. Rows where nothing new was observed (a start, a backoff that
ran out, a suspension) go through the runner's reconcile path.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from rekindle_operator.core.observation import AttemptEnd
from rekindle_operator.local.attempt import Attempt, AttemptFiles
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import FaultSchedule
from rekindle_operator.local.runner import LocalJob, LocalRunner, RunSettings
from rekindle_operator.local.supervise import Supervised, WorkerExit
from rekindle_operator.local.workdir import Workdir
from tests.support import engine_cases
from tests.support.engine_cases import CASES, PROCESS_CASES, EngineCase

#: A process that writes the row's termination message, then ends as the row says.
_END_AS_TOLD = """
import os, signal, sys
text = os.environ["ROW_TERMINATION"]
if text:
    with open(os.environ["REKINDLE_TERMINATION_LOG"], "w") as stream:
        stream.write(text)
code = int(os.environ["ROW_EXIT_CODE"])
if code < 0:
    os.kill(os.getpid(), -code)
sys.exit(code)
"""

RECONCILE_CASES = tuple(c for c in CASES if c.ending is None)


def _runner(case: EngineCase, tmp_path: Path) -> LocalRunner:
    spec_doc = case.spec_document
    generation = case.generation or case.before.get("observedGeneration") or 1
    job = LocalJob(
        name=engine_cases.JOB,
        namespace="local",
        uid="uid-of-the-row",
        generation=generation,
        spec=case.spec,
        document={
            "apiVersion": "rekindle.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": engine_cases.JOB},
            "spec": spec_doc,
        },
        status=case.status,
    )
    settings = RunSettings(
        workdir=Workdir(tmp_path / "wd"),
        faults=FaultSchedule(pending=[]),
        metrics_port=0,
        show_progress=False,
        cwd=tmp_path,
        clock=lambda: case.now,
    )
    return LocalRunner(job, settings, Console(io.StringIO(), live=False))


def _stored_status(tmp_path: Path) -> dict[str, object]:
    status: dict[str, object] = json.loads((tmp_path / "wd" / "job.json").read_text())["status"]
    return status


def test_the_table_has_rows_for_the_local_runner() -> None:
    assert len(PROCESS_CASES) >= 10
    assert RECONCILE_CASES


@pytest.mark.parametrize("case", PROCESS_CASES, ids=[c.name for c in PROCESS_CASES])
def test_a_process_ending_as_the_row_says_gets_the_rows_decision(
    case: EngineCase, tmp_path: Path
) -> None:
    assert case.ending is not None
    assert case.ending.process is not None
    observed = case.ending.observed
    assert isinstance(observed, AttemptEnd)
    form = case.ending.process
    runner = _runner(case, tmp_path)
    files = AttemptFiles.under(runner.settings.workdir.attempts_dir, observed.attempt)
    env = {
        "REKINDLE_TERMINATION_LOG": str(files.termination_log),
        "ROW_TERMINATION": form.termination or "",
        "ROW_EXIT_CODE": str(form.exit_code),
    }
    end = Attempt([sys.executable, "-c", _END_AS_TOLD], env, files).wait(60)
    assert end is not None
    worker = WorkerExit(end=end, known_cause=form.known_cause, detail=form.detail)
    supervised = Supervised(workers=(worker,), interrupted=False)

    decision = runner.conclude(observed.attempt, supervised)

    assert case.decision_mismatches(decision) == [], case.why
    assert case.expect.status_mismatches(_stored_status(tmp_path)) == [], case.why


@pytest.mark.parametrize("case", RECONCILE_CASES, ids=[c.name for c in RECONCILE_CASES])
def test_with_nothing_observed_the_runner_decides_as_the_row_says(
    case: EngineCase, tmp_path: Path
) -> None:
    runner = _runner(case, tmp_path)
    decision = runner.decide(None)
    assert case.decision_mismatches(decision) == [], case.why
    if (tmp_path / "wd" / "job.json").exists():
        assert case.expect.status_mismatches(_stored_status(tmp_path)) == [], case.why
    else:  # nothing changed, so nothing was written: the status before already fits
        assert case.expect.status_mismatches(case.before) == [], case.why
