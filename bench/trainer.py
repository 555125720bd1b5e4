"""Trainer benchmarks: checkpoint overhead, work lost, resume time, early-stop savings.

``make bench-trainer`` (``python -m bench.trainer``) writes
``bench/results/trainer.json`` and prints a table. ``--quick`` shrinks every
part for a smoke run. Every figure is measured here, on this machine; the JSON
records its description.

1. Checkpoint overhead: steps per second of a >= 10 M parameter MLP without
   saves, with a save per epoch and every 5 steps, side by side in one
   process on one model: short segments interleaved in rounds (A B C A B C
   ...), after a warm-up segment. Per variant the median rate and its ratio to
   the same round's no-saves rate (min-max spread), the stall per save measured
   on the training thread, the reference copies to host memory measured
   between the rounds, and the overhead derived from the stall for a save per
   epoch and every 60 s (stall / training time between saves).
2. Work lost per interruption: SIGTERM (steps between the last step seen and
   the restored one) and SIGKILL at random steps (the same, bounded by the
   save interval).
3. Resume time: process start to the first step, cold and resumed.
4. Early-stop savings on digits under one SIGKILL after epoch 8: epochs run by
   Rekindle against Keras ``BackupAndRestore`` + ``EarlyStopping``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_table, write_result
from rekindle_trainer import position

REPO = Path(__file__).resolve().parents[1]
BIG_UNITS = 2048  # 1024 -> 2048 -> 2048 -> 2048 -> 10: about 10.5 M parameters
DIGITS_DOC: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 100,
    "seed": 3,
    "checkpoint": {"everyEpochs": 1},
    "earlyStopping": {"monitor": "val_loss", "patience": 2},
}


def build_big(config: Any) -> Any:
    """The >= 10 M parameter entrypoint (synthetic data, no download)."""
    import keras
    import numpy as np

    from rekindle_trainer.setup import TrainingSetup

    samples = int(config.hyperparameters.get("samples", 1280))
    rng = np.random.default_rng(config.seed)
    x = rng.normal(size=(samples, 1024)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((1024,)),
            keras.layers.Dense(BIG_UNITS, activation="relu"),
            keras.layers.Dense(BIG_UNITS, activation="relu"),
            keras.layers.Dense(BIG_UNITS, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return TrainingSetup(model=model, train=(x, y))


# ---------------------------------------------------------------------------
# 1. Checkpoint overhead (in this process)
# ---------------------------------------------------------------------------

#: The variants run side by side: each round trains one short segment of each, in turn.
VARIANTS: dict[str, dict[str, Any]] = {
    "no saves": {"everyEpochs": 0},
    "every epoch": {"everyEpochs": 1},
    "every 5 steps": {"everyEpochs": 0, "everySteps": 5},
}


def _histogram(metric: Any) -> tuple[float, float]:
    """``(count, sum)`` of a prometheus-client histogram."""
    samples = next(iter(metric.collect())).samples
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    return float(count), float(total)


def _segment(
    model: Any, data: Any, folder: Path, checkpoint: dict[str, Any], epochs: int
) -> dict[str, Any]:
    """One short ``session.fit`` of the shared model with one save policy."""
    import keras

    from rekindle_trainer import callback as callback_module
    from rekindle_trainer import contract, session

    steps: list[float] = []
    ended: list[float] = []

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            steps.append(time.perf_counter())

        def on_train_end(self, logs: Any = None) -> None:
            ended.append(time.perf_counter())  # after the last epoch's save was handed over

    doc = {
        "epochs": epochs,
        "batchSize": 64,
        "checkpoint": {"keep": 1, "keepBest": False, **checkpoint},
        "earlyStopping": {"enabled": False, "monitor": "loss"},
    }
    env = {
        contract.ENV_CONFIG: json.dumps(doc),
        contract.ENV_CHECKPOINT_DIR: str(folder),
        contract.ENV_METRICS_PORT: "0",
        contract.ENV_TERMINATION_LOG: str(folder.parent / f"{folder.name}.term"),
    }
    # Each save's own stall (the histogram only has sums): read after every save.
    stalls: list[float] = []
    original = callback_module.RekindleCallback._save

    def recording(self: Any, trigger: str, logs: Any, *, wait: bool = False) -> None:
        original(self, trigger, logs, wait=wait)
        if not wait:
            stalls.append(self.last_stall)

    callback_module.RekindleCallback._save = recording  # type: ignore[method-assign]
    try:
        with session(env) as run:
            run.fit(model, data, callbacks=[Clock()])
    finally:
        callback_module.RekindleCallback._save = original  # type: ignore[method-assign]
    writes, write_sum = _histogram(run.metrics.checkpoint_seconds)
    # From the end of the first step (tracing and start-up excluded) to the end of training.
    return {
        "steps_per_second": (len(steps) - 1) / (ended[0] - steps[0]),
        "saves": len(stalls),
        "stalls": stalls,
        "write_seconds": write_sum / writes if writes else None,
    }


def _best_of(function: Any, tries: int = 5) -> float:
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _host_copies(model: Any) -> dict[str, float]:
    """Reference copies to host memory, warm, best of three, between the segments."""
    from rekindle_trainer import hostcopy, state

    values = state.variables(model)
    pool = hostcopy.BufferPool(depth=1)
    buffers = pool.acquire(values)
    return {
        "weights_numpy_seconds": _best_of(lambda: [w.numpy() for w in model.weights], 3),
        "state_numpy_seconds": _best_of(lambda: state.snapshot(model), 3),
        "state_into_buffers_seconds": _best_of(lambda: hostcopy.copy_into(values, buffers), 3),
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def checkpoint_overhead(quick: bool) -> dict[str, Any]:
    """Interleaved rounds (A B C A B C ...) of short segments on one model."""
    samples = 640
    epochs = 2
    rounds = 2 if quick else 4
    import keras

    from rekindle_trainer.config import parse_config

    config = parse_config({"epochs": epochs, "hyperparameters": {"samples": samples}})
    keras.utils.set_random_seed(config.seed)
    setup = build_big(config)
    model, data = setup.model, setup.train
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    copies: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, left out: traces the step function and builds the optimizer.
        _segment(model, data, Path(tmp) / "warm-up", VARIANTS["no saves"], 1)
        for round_ in range(rounds):
            for name, checkpoint in VARIANTS.items():
                folder = Path(tmp) / f"{name.replace(' ', '-')}-{round_}"
                runs[name].append(_segment(model, data, folder, checkpoint, epochs))
                shutil.rmtree(folder, ignore_errors=True)
            copies.append(_host_copies(model))
    steps_per_epoch = -(-samples // 64)
    base = [r["steps_per_second"] for r in runs["no saves"]]
    base_rate = statistics.median(base)
    variants: dict[str, Any] = {}
    for name, results in runs.items():
        ratios = [r["steps_per_second"] / b for r, b in zip(results, base, strict=True)]
        stalls = [stall for r in results for stall in r["stalls"]]
        writes = [r["write_seconds"] for r in results if r["write_seconds"] is not None]
        variants[name] = {
            "steps_per_second": _spread([r["steps_per_second"] for r in results]),
            "ratio_to_no_saves": _spread(ratios),
            "overhead_percent": round(100 * (1 - statistics.median(ratios)), 2),
            "saves_per_segment": results[0]["saves"],
            "stall_seconds_per_save": _spread(stalls) if stalls else None,
            "write_seconds_per_save": _spread(writes) if writes else None,
        }
    # The save-per-epoch variant's stall: saves further apart than a write takes.
    stall = variants["every epoch"]["stall_seconds_per_save"]["median"]
    reference = {key: round(statistics.median(c[key] for c in copies), 4) for key in copies[0]}
    epoch_seconds = steps_per_epoch / base_rate
    derived = {
        "every epoch": {
            "seconds_between_saves": round(epoch_seconds, 2),
            "overhead_percent": round(100 * stall / epoch_seconds, 2),
            "goal_percent": 2.0,
        },
        "every 60 s": {
            "seconds_between_saves": 60.0,
            "overhead_percent": round(100 * stall / 60.0, 2),
            "goal_percent": 5.0,
        },
    }
    for entry in derived.values():
        entry["goal_met"] = entry["overhead_percent"] <= entry["goal_percent"]
    return {
        "parameters": model.count_params(),
        "state_bytes": sum(int(v.numpy().nbytes) for v in model.variables)
        + sum(int(v.numpy().nbytes) for v in model.optimizer.variables),
        "rounds": rounds,
        "segment_steps": epochs * steps_per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "variants": variants,
        "stall_seconds_per_save_median": round(stall, 4),
        "host_copy_seconds": reference,
        "stall_within_host_copy": stall <= reference["state_numpy_seconds"],
        "derived_overhead": derived,
    }


# ---------------------------------------------------------------------------
# Processes: rekindle-train attempts and the plain Keras baseline
# ---------------------------------------------------------------------------


def _env(folder: Path, doc: dict[str, Any], attempt: int) -> dict[str, str]:
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(REPO),
        "REKINDLE_CONFIG": json.dumps(doc),
        "REKINDLE_CHECKPOINT_DIR": str(folder / "ckpt"),
        "REKINDLE_ATTEMPT": str(attempt),
        "REKINDLE_METRICS_PORT": "0",
        "REKINDLE_TERMINATION_LOG": str(folder / f"term-{attempt}.json"),
        "REKINDLE_PROGRESS_FILE": str(folder / "progress.jsonl"),
    }


def _events(folder: Path) -> list[dict[str, Any]]:
    path = folder / "progress.jsonl"
    if not path.exists():
        return []
    complete = path.read_text().split("\n")[:-1]  # a line being written is left out
    return [json.loads(line) for line in complete if line]


def _spawn(folder: Path, doc: dict[str, Any], attempt: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rekindle_trainer.cli"],
        env=_env(folder, doc, attempt),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark process did not get there in time")
        time.sleep(0.002)


def _first_step_after(folder: Path, start: int) -> float | None:
    for event in _events(folder)[start:]:
        if event["kind"] == "step":
            return float(event["time"])
    return None


def work_lost(quick: bool) -> dict[str, Any]:
    doc = {**DIGITS_DOC, "epochs": 30, "checkpoint": {"everyEpochs": 0, "everySteps": 25}}
    kills = 2 if quick else 4
    rng = random.Random(7)
    out: dict[str, Any] = {"save_interval_steps": 25}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lost: list[int] = []
        for attempt in range(1, kills + 1):
            start = len(_events(folder))
            process = _spawn(folder, doc, attempt)
            _wait(lambda s=start: _first_step_after(folder, s) is not None)
            time.sleep(rng.uniform(0.3, 2.0))
            process.kill()
            process.wait()
            reached = position.read(folder / "ckpt")
            assert reached is not None
            seen = reached.step
            before = len(_events(folder))
            resumed = _spawn(folder, doc, attempt + 100)
            _wait(lambda b=before: any(e["kind"] == "restored" for e in _events(folder)[b:]))
            restored = next(e for e in reversed(_events(folder)) if e["kind"] == "restored")
            lost.append(seen - int(restored["step"]))
            resumed.kill()
            resumed.wait()
        out["sigkill_lost_steps"] = lost
        out["sigkill_lost_steps_max"] = max(lost)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        process = _spawn(folder, doc, 1)
        _wait(lambda: _first_step_after(folder, 0) is not None)
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        code = process.wait()
        term = json.loads((folder / "term-1.json").read_text())
        resumed = _spawn(folder, doc, 2)
        _wait(lambda: any(e["kind"] == "restored" for e in _events(folder)))
        restored = next(e for e in _events(folder) if e["kind"] == "restored")
        resumed.kill()
        resumed.wait()
        out["sigterm_exit_code"] = code
        out["sigterm_lost_steps"] = int(term["step"]) - int(restored["step"])
    return out


def resume_time(quick: bool) -> dict[str, Any]:
    doc = {
        "entrypoint": "bench.trainer:build_big",
        "epochs": 2,
        "batchSize": 64,
        "hyperparameters": {"samples": 640},
        "checkpoint": {"everyEpochs": 1, "keep": 1},
        "earlyStopping": {"enabled": False, "monitor": "loss"},
    }
    tries = 1 if quick else 2
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(tries):
            folder = Path(tmp) / str(index)
            started = time.time()
            process = _spawn(folder, doc, 1)
            _wait(lambda f=folder: _first_step_after(f, 0) is not None)
            cold.append(_first_step_after(folder, 0) - started)  # type: ignore[operator]
            _wait(lambda f=folder: any(e["kind"] == "checkpoint" for e in _events(f)))
            process.kill()
            process.wait()
            start = len(_events(folder))
            started = time.time()
            process = _spawn(folder, doc, 2)
            _wait(lambda f=folder, s=start: _first_step_after(f, s) is not None)
            warm.append(_first_step_after(folder, start) - started)  # type: ignore[operator]
            process.kill()
            process.wait()
    return {
        "cold_start_to_first_step_seconds": round(statistics.median(cold), 2),
        "resume_to_first_step_seconds": round(statistics.median(warm), 2),
        "checkpoint_parameters_millions": 10.5,
    }


def _keras_baseline(folder: Path, log: Path) -> None:
    """Plain Keras: BackupAndRestore + EarlyStopping, one epoch line per epoch run."""
    import keras

    from rekindle_trainer.config import parse_config
    from rekindle_trainer.examples import digits

    config = parse_config({k: v for k, v in DIGITS_DOC.items() if k != "entrypoint"})
    keras.utils.set_random_seed(config.seed)
    setup = digits.build(config)

    class Log(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            with log.open("a") as handle:
                handle.write(json.dumps({"kind": "epoch_end", "epoch": epoch + 1}) + "\n")

    setup.model.fit(
        *setup.train,
        validation_data=setup.validation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(folder)),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=2),
            Log(),
        ],
    )


def _epochs_run(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if '"epoch_end"' in line)


def early_stop_savings(kill_after_epoch: int = 8) -> dict[str, Any]:
    def rekindle(kill: bool) -> tuple[int, int | None]:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            process = _spawn(folder, DIGITS_DOC, 1)
            if kill:
                _wait(
                    lambda: any(
                        e["kind"] == "epoch_end" and e["epoch"] >= kill_after_epoch
                        for e in _events(folder)
                    )
                )
                process.kill()
                process.wait()
                process = _spawn(folder, DIGITS_DOC, 2)
            process.wait()
            term = json.loads((folder / f"term-{2 if kill else 1}.json").read_text())
            return sum(1 for e in _events(folder) if e["kind"] == "epoch_end"), term[
                "early_stop_epoch"
            ]

    def keras_run(kill: bool) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            folder, log = Path(tmp) / "backup", Path(tmp) / "epochs.jsonl"
            command = [
                sys.executable,
                "-m",
                "bench.trainer",
                "--keras-baseline",
                str(folder),
                str(log),
            ]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
            process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
            if kill:
                _wait(lambda: _epochs_run(log) >= kill_after_epoch)
                process.kill()
                process.wait()
                process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
            process.wait()
            return _epochs_run(log)

    rekindle_clean, rekindle_stop = rekindle(kill=False)
    rekindle_killed, rekindle_killed_stop = rekindle(kill=True)
    keras_clean = keras_run(kill=False)
    keras_killed = keras_run(kill=True)
    return {
        "kill_after_epoch": kill_after_epoch,
        "rekindle_epochs_uninterrupted": rekindle_clean,
        "rekindle_epochs_with_kill": rekindle_killed,
        "rekindle_early_stop_epoch": rekindle_stop,
        "rekindle_early_stop_epoch_with_kill": rekindle_killed_stop,
        "keras_epochs_uninterrupted": keras_clean,
        "keras_epochs_with_kill": keras_killed,
    }


def _print_overhead(overhead: dict[str, Any]) -> None:
    """The side-by-side table, the stall against the host copies, the derived overhead."""
    millions = overhead["parameters"] / 1e6
    print_table(
        f"Checkpoint overhead ({millions:.1f} M parameter MLP, {overhead['rounds']} interleaved "
        f"rounds of {overhead['segment_steps']} steps, median [min-max])",
        ["saves", "steps/s", "ratio to no saves", "overhead %", "stall s/save", "write s/save"],
        [
            [
                name,
                _fmt(r["steps_per_second"]),
                _fmt(r["ratio_to_no_saves"]),
                r["overhead_percent"],
                _fmt(r["stall_seconds_per_save"]),
                _fmt(r["write_seconds_per_save"]),
            ]
            for name, r in overhead["variants"].items()
        ],
    )
    copies = overhead["host_copy_seconds"]
    print_table(
        "Stall per save against copies to host memory (warm, best of 3 between rounds, median)",
        ["what", "seconds"],
        [
            ["stall per save (median, every epoch)", overhead["stall_seconds_per_save_median"]],
            ["weights only, numpy()", copies["weights_numpy_seconds"]],
            ["full state (weights+optimizer), numpy()", copies["state_numpy_seconds"]],
            ["full state into reused buffers", copies["state_into_buffers_seconds"]],
        ],
    )
    print_table(
        "Overhead derived from the stall (stall per save / training time between saves)",
        ["saves", "seconds between", "overhead %", "goal %", "met"],
        [
            [
                name,
                r["seconds_between_saves"],
                r["overhead_percent"],
                r["goal_percent"],
                "yes" if r["goal_met"] else "NO",
            ]
            for name, r in overhead["derived_overhead"].items()
        ],
    )


def _fmt(spread: dict[str, float] | None) -> str:
    if spread is None:
        return "-"
    return f"{spread['median']} [{spread['min']}-{spread['max']}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--only", choices=["overhead", "lost", "resume", "early"], action="append")
    parser.add_argument("--keras-baseline", nargs=2, metavar=("DIR", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keras_baseline:
        _keras_baseline(Path(args.keras_baseline[0]), Path(args.keras_baseline[1]))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parts = set(args.only or ["overhead", "lost", "resume", "early"])
    figures: dict[str, Any] = {"quick": args.quick}
    if "overhead" in parts:
        figures["checkpoint_overhead"] = overhead = checkpoint_overhead(args.quick)
        _print_overhead(overhead)
    if "lost" in parts:
        figures["work_lost"] = lost = work_lost(args.quick)
        print_table(
            "Work lost per interruption (digits, save every 25 steps)",
            ["signal", "steps lost", "bound"],
            [
                ["SIGTERM", lost["sigterm_lost_steps"], "0"],
                ["SIGKILL", " ".join(map(str, lost["sigkill_lost_steps"])), "save interval (25)"],
            ],
        )
    if "resume" in parts:
        figures["resume_time"] = resume = resume_time(args.quick)
        print_table(
            "Process start to first step (10.5 M parameters)",
            ["start", "seconds"],
            [
                ["cold", resume["cold_start_to_first_step_seconds"]],
                ["resumed", resume["resume_to_first_step_seconds"]],
            ],
        )
    if "early" in parts:
        figures["early_stop_savings"] = early = early_stop_savings()
        print_table(
            f"Epochs run on digits, SIGKILL after epoch {early['kill_after_epoch']}",
            ["trainer", "uninterrupted", "with one kill"],
            [
                [
                    "Rekindle",
                    early["rekindle_epochs_uninterrupted"],
                    early["rekindle_epochs_with_kill"],
                ],
                [
                    "Keras BackupAndRestore+EarlyStopping",
                    early["keras_epochs_uninterrupted"],
                    early["keras_epochs_with_kill"],
                ],
            ],
        )
    path = write_result("trainer", figures)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
