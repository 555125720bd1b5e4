"""The gang's per-step agreement alone, against a training step, 2 workers and 1 (#15).

``python -m bench.agreement`` (also part of ``make bench-gang``) starts the
workers as ``rekindle run`` does (processes on 127.0.0.1, ``TF_CONFIG`` with
free ports, the trainer's ``make_strategy``) and builds the gang benchmark's
digits model (batch 64 global). In every round each worker times, in turn:

- ``steps`` training steps of ``fit`` (the time between consecutive
  ``on_train_batch_end`` calls, no agreement in them),
- ``calls`` calls of ``Agreement.agree((sigterm, timer_due))``, exactly as the
  trainer's callback makes one after every step (the compiled all-reduce), and
- ``steps`` steps again, a callback agreeing at each step's end as the
  trainer's does: the cross-check of the agreement's cost inside the loop.

The three run in turn, their order rotated every round (each after a barrier),
so that a change in the machine's load falls on all. The figure is the
agreement's cost per step (ms, the mean call of a round) and its share of the
same round's step time, plus what agreeing at each step's end adds to a step;
the median and range over the rounds. With one worker ``agree`` makes no
collective (the trainer's callback does not even call it): measured too, it
should be
about nothing. Writes ``bench/results/agreement.json``. No goal was set: the
figures are measured, not judged.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_table, write_result

VERDICT = "measured, not judged (no goal set)"
#: The gang benchmark's digits job (bench/gang.py SPEC): batch 64 global, 16 units.
TRAINING: dict[str, Any] = {
    "epochs": 1,
    "batchSize": 64,
    "seed": 5,
    "hyperparameters": {"units": 16, "learningRate": 0.01, "dropout": 0.2},
}


# ---------------------------------------------------------------- pure part


def _spread(values: list[float], digits: int) -> dict[str, float]:
    """Median, lowest and highest of one figure over the rounds."""
    if not values:
        raise ValueError("rounds: empty; run at least one round (--rounds 1 or more)")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def summarize(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Per-round ``agree_ms`` and ``step_ms`` to the agreement's cost per step and its share.

    Each round's share is its own agreement over its own step time (the two were
    timed back to back), so the load of the moment cancels in it.
    """
    for index, one in enumerate(rounds):
        for key in ("agree_ms", "step_ms"):
            value = one.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"rounds[{index}].{key}: expected a number >= 0, got {value!r}")
        if one["step_ms"] == 0:
            raise ValueError(f"rounds[{index}].step_ms: 0; time at least two steps a round")
    shares = [100 * r["agree_ms"] / r["step_ms"] for r in rounds]
    summary: dict[str, Any] = {
        "rounds": len(rounds),
        "agree_ms": _spread([r["agree_ms"] for r in rounds], 4),
        "step_ms": _spread([r["step_ms"] for r in rounds], 2),
        "agree_percent_of_step": _spread(shares, 2),
        "verdict": VERDICT,
    }
    if all("agreed_step_ms" in r for r in rounds):
        added = [r["agreed_step_ms"] - r["step_ms"] for r in rounds]
        summary["agreed_step_ms"] = _spread([r["agreed_step_ms"] for r in rounds], 2)
        summary["added_in_step_ms"] = _spread(added, 2)
    return summary


def spread_text(figure: dict[str, float], unit: str = "") -> str:
    """``median (min-max)`` for a table cell."""
    return f"{figure['median']:g}{unit} ({figure['min']:g}-{figure['max']:g})"


def table_rows(by_workers: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The printed table's rows: agreement, step and share for each gang size."""
    rows = []
    for label, summary in by_workers.items():
        rows.append((f"agree() per step, {label} (ms)", spread_text(summary["agree_ms"]), ""))
        rows.append((f"training step, {label} (ms)", spread_text(summary["step_ms"]), ""))
        share = spread_text(summary["agree_percent_of_step"], " %")
        rows.append((f"agreement / step, {label}", share, summary["verdict"]))
        if "added_in_step_ms" in summary:
            with_it = spread_text(summary["agreed_step_ms"])
            rows.append((f"step agreeing at its end, {label} (ms)", with_it, ""))
            added = spread_text(summary["added_in_step_ms"])
            rows.append((f"added by agreeing, {label} (ms)", added, ""))
    return rows


# ------------------------------------------------------------- one worker


def _timed_steps(model: Any, dataset: Any, steps: int, agreement: Any = None) -> float:
    """Mean ms between consecutive step ends over ``steps`` steps of ``fit``.

    With ``agreement``, each step end also agrees, as the trainer's callback does.
    """
    import keras

    ends: list[float] = []

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            ends.append(time.perf_counter())
            if agreement is not None:
                agreement.agree((False, False))

    model.fit(dataset, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[Clock()])
    return 1000 * (ends[-1] - ends[0]) / (len(ends) - 1)


def _timed_agree(agreement: Any, calls: int) -> float:
    """Mean ms of one ``agree`` call, as the callback makes it after a step."""
    started = time.perf_counter()
    for _ in range(calls):
        agreement.agree((False, False))
    return 1000 * (time.perf_counter() - started) / calls


def worker(workers: int, rounds: int, steps: int, calls: int) -> list[dict[str, float]]:
    """This process's rounds (``TF_CONFIG`` already set for a gang)."""
    from rekindle_trainer.core.config import parse_config
    from rekindle_trainer.examples import digits
    from rekindle_trainer.training import keras_mwms, strategy
    from rekindle_trainer.training.agreement import Agreement

    made = strategy.make_strategy(1, workers)
    import tensorflow as tf

    with made.scope():
        setup = digits.build(parse_config(TRAINING))
    x, y = setup.train
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(64).with_options(options)
    agreement = Agreement(made)
    if agreement.gang != (workers > 1):
        raise RuntimeError(f"Agreement.gang is {agreement.gang} with {workers} worker(s)")
    results = []
    with strategy.uneven_first_batch(setup.model), keras_mwms.installed(made):
        _timed_steps(setup.model, dataset, 3)  # traces the step
        _timed_agree(agreement, 5)  # traces the all-reduce
        for index in range(rounds):
            phases = {
                "step_ms": lambda: _timed_steps(setup.model, dataset, steps),
                "agree_ms": lambda: _timed_agree(agreement, calls),
                "agreed_step_ms": lambda: _timed_steps(setup.model, dataset, steps, agreement),
            }
            order = list(phases)[index % 3 :] + list(phases)[: index % 3]  # rotated each round
            timed = {}
            for name in order:
                agreement.barrier()
                timed[name] = phases[name]()
            results.append(timed)
    return results


# -------------------------------------------------------------- the runs


def run_gang(workers: int, rounds: int, steps: int, calls: int) -> list[list[dict[str, float]]]:
    """Start ``workers`` processes of this module as one gang; each one's rounds."""
    from rekindle_operator.local.runner import free_ports
    from rekindle_trainer.contract.gang import tf_config_text

    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    folder = Path(tempfile.mkdtemp(prefix="bench-agreement-"))
    base = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    base.pop("TF_CONFIG", None)
    processes = []
    for index in range(workers):
        env = {**base, "TF_CONFIG": tf_config_text(hosts, index)} if workers > 1 else base
        command = [sys.executable, "-m", "bench.agreement", "--worker", str(folder / f"w{index}")]
        command += ["--workers", str(workers), "--rounds", str(rounds)]
        command += ["--steps", str(steps), "--calls", str(calls)]
        processes.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
    for index, process in enumerate(processes):
        _, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"worker {index} exited {process.returncode}:\n{err[-3000:]}")
    return [json.loads((folder / f"w{i}").read_text()) for i in range(workers)]


def measure(rounds: int, steps: int, calls: int) -> dict[str, Any]:
    """Both gang sizes, the chief's rounds summarized (every worker's kept)."""
    figures: dict[str, Any] = {"rounds": rounds, "steps": steps, "calls": calls}
    for workers, label in ((1, "1_worker"), (2, "2_workers")):
        per_worker = run_gang(workers, rounds, steps, calls)
        figures[label] = {**summarize(per_worker[0]), "per_worker_rounds": per_worker}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agreement", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="alternations (default 5)")
    parser.add_argument("--steps", type=int, default=40, help="steps timed a round (default 40)")
    parser.add_argument("--calls", type=int, default=40, help="agree() calls a round (40)")
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("rounds", "steps", "calls"):
        if getattr(args, name) < (2 if name == "steps" else 1):
            parser.error(f"--{name}: too small ({getattr(args, name)})")
    if args.worker:
        rounds = worker(args.workers, args.rounds, args.steps, args.calls)
        Path(args.worker).write_text(json.dumps(rounds))
        return 0
    figures = measure(args.rounds, args.steps, args.calls)
    figures["load_average"] = list(os.getloadavg())
    path = write_result("agreement", figures)
    rows = table_rows({k: figures[k] for k in ("1_worker", "2_workers")})
    print_table("Per-step agreement vs a step", ("figure", "median (range)", "verdict"), rows)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
