"""``rekindle run examples/digits.yaml`` with the real trainer (TensorFlow on the CPU).

The issue's bar: with a SIGKILL and a SIGTERM injected, the job ends
Succeeded, reason EarlyStopped, at the same epoch (and the same best value)
as an uninterrupted run of the same manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rekindle_trainer.contract.timestamps import parse_time

REPO = Path(__file__).resolve().parents[3]
DIGITS = REPO / "examples" / "digits.yaml"


def _rekindle_run(workdir: Path, *inject: str) -> tuple[int, str, dict[str, Any]]:
    args = [str(Path(sys.executable).with_name("rekindle")), "run", str(DIGITS)]
    args += ["--workdir", str(workdir), "--fresh", "--metrics-port", "0", "--no-progress"]
    for fault in inject:
        args += ["--inject", fault]
    result = subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output = result.stdout + result.stderr
    status: dict[str, Any] = json.loads((workdir / "job.json").read_text())["status"]
    return result.returncode, output, status


@pytest.mark.slow
def test_digits_survives_sigkill_and_sigterm_and_stops_at_the_uninterrupted_epoch(
    tmp_path: Path,
) -> None:
    code, output, clean = _rekindle_run(tmp_path / "clean")
    assert code == 0, output
    assert (clean["phase"], clean["reason"]) == ("Succeeded", "EarlyStopped")
    assert clean["restarts"]["total"] == 0
    stop_epoch = clean["earlyStopEpoch"]
    assert stop_epoch is not None
    assert stop_epoch > 6, "the faults below must land before early stopping"

    code, output, faulted = _rekindle_run(
        tmp_path / "faulted", "sigkill@epoch=3", "sigterm@epoch=6"
    )
    assert code == 0, output
    assert (faulted["phase"], faulted["reason"]) == ("Succeeded", "EarlyStopped")
    assert faulted["restarts"]["byCause"] == {"NodeLost": 1, "Preempted": 1}
    assert faulted["attempt"] == 3
    assert faulted["earlyStopEpoch"] == stop_epoch
    assert faulted["bestMetric"]["epoch"] == clean["bestMetric"]["epoch"]
    assert faulted["bestMetric"]["value"] == pytest.approx(clean["bestMetric"]["value"], rel=1e-4)
    assert "injecting sigkill@epoch=3" in output
    assert "injecting sigterm@epoch=6" in output
    assert f"early stop    epoch {stop_epoch}" in output
    # Goodput through the same engine: the SIGKILLed attempt is unreported, the
    # SIGTERMed one saved and restored; the summary says it, and the account is whole.
    goodput = faulted["goodput"]
    badput = goodput["badputSeconds"]
    assert badput["unreported"] > 0
    assert badput["restore"] > 0
    assert goodput["productiveSeconds"] > 0
    wall = (parse_time(faulted["completionTime"]) - parse_time(goodput["since"])).total_seconds()
    assert goodput["productiveSeconds"] + sum(badput.values()) == pytest.approx(wall, abs=1e-3)
    assert "goodput" in output
    assert "% of " in output
