"""Trainer benchmarks: checkpoint overhead, work lost, resume time, early-stop savings.

``make bench-trainer`` (``python -m bench.trainer``) writes
``bench/results/trainer.json`` and prints a table. ``--quick`` shrinks every
part for a smoke run. Every figure is measured here, on this machine; the JSON
records its description.

1. Checkpoint overhead: steps per second of a >= 10 M parameter MLP without
   saves, with a save per epoch, every N steps and every T seconds, side by
   side in one process (rounds interleaved, the first epoch of each run left
   out as warm-up), plus the stall per save (host copy) and the write time.
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


def _overhead_run(
    folder: Path, checkpoint: dict[str, Any], epochs: int, samples: int
) -> dict[str, Any]:
    import keras

    from rekindle_trainer import contract, session, state

    times: list[float] = []

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            times.append(time.perf_counter())

    doc = {
        "epochs": epochs,
        "batchSize": 64,
        "checkpoint": {"keep": 1, "keepBest": False, **checkpoint},
        "earlyStopping": {"enabled": False, "monitor": "loss"},
        "hyperparameters": {"samples": samples},
    }
    env = {
        contract.ENV_CONFIG: json.dumps(doc),
        contract.ENV_CHECKPOINT_DIR: str(folder),
        contract.ENV_METRICS_PORT: "0",
        contract.ENV_TERMINATION_LOG: str(folder.parent / f"{folder.name}.term"),
    }
    with session(env) as run:
        with run.strategy.scope():
            setup = build_big(run.config)
        params = setup.model.count_params()
        run.fit(setup.model, setup.train, callbacks=[Clock()])
        copies = []
        for _ in range(3):
            started = time.perf_counter()
            state.snapshot(setup.model)
            copies.append(time.perf_counter() - started)
    steps_per_epoch = -(-samples // 64)
    measured = times[steps_per_epoch:]  # leave out the first epoch (tracing, warm-up)
    seconds = measured[-1] - measured[0]
    m = run.metrics
    stall = next(iter(m.stall_seconds.collect())).samples
    save = next(iter(m.checkpoint_seconds.collect())).samples
    stall_count = next(s.value for s in stall if s.name.endswith("_count"))
    stall_sum = next(s.value for s in stall if s.name.endswith("_sum"))
    save_count = next(s.value for s in save if s.name.endswith("_count"))
    save_sum = next(s.value for s in save if s.name.endswith("_sum"))
    return {
        "parameters": params,
        "host_copy_seconds": min(copies),
        "stall_percent_of_training": 100 * stall_sum / (times[-1] - times[0]),
        "steps_per_second": (len(measured) - 1) / seconds,
        "saves": int(save_count),
        "stall_seconds_mean": stall_sum / stall_count if stall_count else 0.0,
        "save_seconds_mean": save_sum / save_count if save_count else 0.0,
        "checkpoint_bytes": m.checkpoint_bytes._value.get(),
    }


def checkpoint_overhead(quick: bool) -> dict[str, Any]:
    epochs = 3 if quick else 4
    samples = 640 if quick else 1280
    rounds = 1 if quick else 3
    variants = {
        "no saves": {"everyEpochs": 0},
        "every epoch": {"everyEpochs": 1},
        "every 10 steps": {"everyEpochs": 0, "everySteps": 10},
        "every 5 s": {"everyEpochs": 0, "everySeconds": 5},
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for name, checkpoint in variants.items():
                folder = Path(tmp) / f"{name.replace(' ', '-')}-{round_}"
                results[name].append(_overhead_run(folder, checkpoint, epochs, samples))
    base = statistics.median(r["steps_per_second"] for r in results["no saves"])
    summary = {}
    for name, runs in results.items():
        rate = statistics.median(r["steps_per_second"] for r in runs)
        summary[name] = {
            "steps_per_second": round(rate, 3),
            "overhead_percent": round(100 * (base - rate) / base, 2),
            "saves_per_run": runs[0]["saves"],
            "stall_seconds_mean": round(statistics.mean(r["stall_seconds_mean"] for r in runs), 4),
            "stall_percent_of_training": round(
                statistics.mean(r["stall_percent_of_training"] for r in runs), 2
            ),
            "host_copy_seconds": round(min(r["host_copy_seconds"] for r in runs), 4),
            "save_seconds_mean": round(statistics.mean(r["save_seconds_mean"] for r in runs), 4),
            "checkpoint_bytes": runs[0]["checkpoint_bytes"],
            "parameters": runs[0]["parameters"],
            "rounds": len(runs),
        }
    return summary


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
        print_table(
            "Checkpoint overhead (10.5 M parameter MLP, median steps/s, first epoch left out)",
            [
                "saves",
                "steps/s",
                "overhead %",
                "saves/run",
                "stall s",
                "stall % of time",
                "host copy s",
                "write s",
                "bytes",
            ],
            [
                [
                    name,
                    r["steps_per_second"],
                    r["overhead_percent"],
                    r["saves_per_run"],
                    r["stall_seconds_mean"],
                    r["stall_percent_of_training"],
                    r["host_copy_seconds"],
                    r["save_seconds_mean"],
                    r["checkpoint_bytes"],
                ]
                for name, r in overhead.items()
            ],
        )
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
