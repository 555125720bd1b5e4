"""Trainer benchmarks: checkpoint overhead, work lost, resume time, early-stop savings.

``make bench-trainer`` (``python -m bench.trainer``) writes
``bench/results/trainer.json`` and prints a table. ``--quick`` shrinks every
part for a smoke run. Every figure is measured here, on this machine; the JSON
records its description.

1. Checkpoint overhead: a >= 10 M parameter MLP trained without saves (twice:
   the second is an A/A control that shows this machine's noise floor), with a
   save per epoch and with four saves per epoch, side by side in one process on
   one model: two-epoch segments interleaved in rounds (A A' B C A A' B C ...),
   after a warm-up whose rate sets the steps per epoch so that an epoch lasts
   about ``--epoch-seconds`` (10 s). Each segment's second epoch is measured
   (the first save's stall is in it and its write runs during it): wall-clock
   steps per second and the process's CPU seconds per step (every thread, the
   writer's included), each as a ratio to the same round's no-saves segment.
   Also the stall per save on the training thread, the writer thread's CPU
   seconds per save, reference copies to host memory, and the bound
   (stall + writer CPU) / time between saves for a save per epoch and every 60 s.
   The peers run in the same rounds: plain ``model.fit`` without a callback, with
   Keras ``ModelCheckpoint`` (weights, every epoch) and with ``BackupAndRestore``
   (every epoch), each against the plain ``model.fit`` of its round; the peer
   table says whether Rekindle is ahead, by ``bench.verdicts.ahead_of``.
   Verdicts against the goals come from ``bench/verdicts.py``: the measured
   overhead is "not resolved" while the A/A control's noise floor (its widest
   round's deviation from 1) is wider than the goal, or with one round.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import verdicts
from bench.common import print_table, write_result
from rekindle_trainer.checkpoint import position_file

REPO = Path(__file__).resolve().parents[1]
BIG_UNITS = 2048  # 1024 -> 2048 -> 2048 -> 2048 -> 10: about 10.5 M parameters
DIGITS_DOC: dict[str, Any] = {
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "epochs": 100,
    "seed": 3,
    "checkpoint": {"everyEpochs": 1},
    "earlyStopping": {"monitor": "val_loss", "patience": 2},
}


def big_data(samples: int, seed: int) -> tuple[Any, Any]:
    """Synthetic inputs and labels for the big model (no download)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 1024)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int32")
    return x, y


def build_big(config: Any) -> Any:
    """The >= 10 M parameter entrypoint (synthetic data, no download)."""
    import keras

    from rekindle_trainer.training.setup import TrainingSetup

    samples = int(config.hyperparameters.get("samples", 1280))
    units = int(config.hyperparameters.get("units", BIG_UNITS))  # smaller for the smoke test
    model = keras.Sequential(
        [
            keras.Input((1024,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return TrainingSetup(model=model, train=big_data(samples, config.seed))


# ---------------------------------------------------------------------------
# 1. Checkpoint overhead (in this process)
# ---------------------------------------------------------------------------

#: Seconds an epoch of the overhead runs takes: steps per epoch are chosen from the
#: warm-up's rate so that an epoch lasts about this long on the machine at hand. 10 s is a
#: short epoch for a 10 M parameter model (a CIFAR-10 epoch of a ResNet-18 on one GPU
#: takes about as long); the longer the epoch, the smaller a save's share of it.
EPOCH_SECONDS = 10.0
QUICK_EPOCH_SECONDS = 2.0
WARM_UP_STEPS = 16

NO_SAVES: dict[str, Any] = {"everyEpochs": 0}


#: The peers' variants (issue #19, point 5): plain ``model.fit`` on the same model and data,
#: without a callback (their baseline) and with each Keras checkpointing callback.
KERAS_NONE = "Keras fit, no callback"
KERAS_MODEL_CHECKPOINT = "Keras ModelCheckpoint (weights, every epoch)"
KERAS_BACKUP_AND_RESTORE = "Keras BackupAndRestore (every epoch)"
REKINDLE_NONE = "no saves"
REKINDLE_CONTROL = "no saves (A/A control)"
REKINDLE_EVERY_EPOCH = "every epoch"


def _variants(steps_per_epoch: int, peers: bool = True) -> dict[str, dict[str, Any]]:
    """The variants run side by side: each round trains one segment of each, in turn.

    The second "no saves" is the A/A control: how far two identical segments differ on
    this machine. The step interval gives four saves per epoch. A variant with a
    ``keras`` key is a plain ``model.fit`` with that Keras callback (or none).
    """
    every = max(1, steps_per_epoch // 4)
    variants: dict[str, dict[str, Any]] = {
        REKINDLE_NONE: NO_SAVES,
        REKINDLE_CONTROL: NO_SAVES,
        REKINDLE_EVERY_EPOCH: {"everyEpochs": 1},
        f"every {every} steps": {"everyEpochs": 0, "everySteps": every},
    }
    if peers:
        variants[KERAS_NONE] = {"keras": "none"}
        variants[KERAS_MODEL_CHECKPOINT] = {"keras": "model_checkpoint"}
        variants[KERAS_BACKUP_AND_RESTORE] = {"keras": "backup_and_restore"}
    return variants


def baseline_of(spec: dict[str, Any]) -> str:
    """The variant a variant's ratios are taken against: its own trainer without saves."""
    return KERAS_NONE if "keras" in spec else REKINDLE_NONE


@dataclass
class _Segment:
    """What one segment measured over its second epoch (the first save's write included)."""

    steps_per_second: float
    cpu_seconds_per_step: float
    stalls: list[float]
    writer_cpu_seconds: list[float]
    write_seconds: list[float]


def _segment(
    model: Any, data: Any, folder: Path, checkpoint: dict[str, Any], steps_per_epoch: int
) -> _Segment:
    """Two epochs of ``session.fit`` on the shared model with one save policy.

    The window measured is the second epoch: from the end of the first epoch's last step
    (so the first epoch-end save's stall is inside it and its write runs during it) to the
    end of the last step. Wall time and the process's CPU time (every thread, the writer's
    included) are both taken, so that other tenants of the machine, which stretch wall time
    but not this process's CPU time, can be told apart from the saves' own cost.
    """
    import keras

    from rekindle_trainer import contract, session
    from rekindle_trainer.checkpoint import saver
    from rekindle_trainer.training.checkpointing import Checkpointer

    marks: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marks.append((time.perf_counter(), time.process_time()))

    doc = {
        "epochs": 2,
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
    stalls: list[float] = []
    writer_cpu: list[float] = []
    write_wall: list[float] = []
    save = Checkpointer.save
    write = saver.BackgroundSaver._write

    def recording_save(
        self: Any, model: Any, meta: Any, *, wait: bool = False, extra: Any = None
    ) -> float | None:
        stall = save(self, model, meta, wait=wait, extra=extra)
        if stall is not None:
            stalls.append(stall)
        return stall

    def recording_write(self: Any, job: Any) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        write(self, job)
        if job.snapshot.meta.get("trigger") != "final":
            writer_cpu.append(time.thread_time() - cpu)
            write_wall.append(time.perf_counter() - wall)

    Checkpointer.save = recording_save  # type: ignore[method-assign]
    saver.BackgroundSaver._write = recording_write  # type: ignore[method-assign]
    try:
        with session(env) as run:
            run.fit(model, data, callbacks=[Clock()])
    finally:
        Checkpointer.save = save  # type: ignore[method-assign]
        saver.BackgroundSaver._write = write  # type: ignore[method-assign]
    (wall0, cpu0), (wall1, cpu1) = marks[steps_per_epoch - 1], marks[-1]
    steps = len(marks) - steps_per_epoch
    return _Segment(steps / (wall1 - wall0), (cpu1 - cpu0) / steps, stalls, writer_cpu, write_wall)


PEERS = ("none", "model_checkpoint", "backup_and_restore")


def _keras_callback(kind: str, folder: Path) -> Any:
    """The peer's checkpointing callback, saving every epoch into ``folder`` (None: none)."""
    if kind not in PEERS:
        raise ValueError(f"keras: unknown peer {kind!r}; one of {', '.join(PEERS)}")
    if kind == "none":
        return None
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "model_checkpoint":
        return keras.callbacks.ModelCheckpoint(
            str(folder / "model.weights.h5"), save_weights_only=True, save_freq="epoch"
        )
    return keras.callbacks.BackupAndRestore(str(folder / "backup"), save_freq="epoch")


def _keras_segment(
    model: Any, data: Any, folder: Path, kind: str, steps_per_epoch: int
) -> _Segment:
    """Two epochs of plain ``model.fit`` with a Keras checkpointing callback; as :func:`_segment`.

    Its saves are synchronous: the stall per save is the time in the callback's
    ``on_epoch_end`` (the first one falls inside the measured epoch, as Rekindle's does).
    """
    import keras

    marks: list[tuple[float, float]] = []
    stalls: list[float] = []

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marks.append((time.perf_counter(), time.process_time()))

    callbacks = [Clock()]
    peer = _keras_callback(kind, folder)
    if peer is not None:
        on_epoch_end = peer.on_epoch_end

        def timed(epoch: int, logs: Any = None) -> None:
            started = time.perf_counter()
            on_epoch_end(epoch, logs)
            stalls.append(time.perf_counter() - started)

        peer.on_epoch_end = timed
        callbacks.append(peer)
    x, y = data
    model.fit(x, y, batch_size=64, epochs=2, shuffle=True, verbose=0, callbacks=callbacks)
    (wall0, cpu0), (wall1, cpu1) = marks[steps_per_epoch - 1], marks[-1]
    steps = len(marks) - steps_per_epoch
    return _Segment(steps / (wall1 - wall0), (cpu1 - cpu0) / steps, stalls, [], [])


def _run_variant(
    model: Any, data: Any, folder: Path, spec: dict[str, Any], steps_per_epoch: int
) -> _Segment:
    if "keras" in spec:
        return _keras_segment(model, data, folder, spec["keras"], steps_per_epoch)
    return _segment(model, data, folder, spec, steps_per_epoch)


def _best_of(function: Any, tries: int = 5) -> float:
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _host_copies(model: Any) -> dict[str, float]:
    """Reference copies to host memory, warm, best of three, between the segments."""
    from rekindle_trainer.checkpoint import hostcopy, state
    from rekindle_trainer.training import variable_copy

    values = state.variables(model)
    pool = hostcopy.BufferPool(depth=1)
    buffers = pool.acquire(values)
    return {
        "weights_numpy_seconds": _best_of(lambda: [w.numpy() for w in model.weights], 3),
        "state_numpy_seconds": _best_of(lambda: state.snapshot(model), 3),
        "state_into_buffers_seconds": _best_of(lambda: variable_copy.copy_into(values, buffers), 3),
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _ratios(results: list[_Segment], base: list[_Segment]) -> tuple[list[float], list[float]]:
    """Each round's wall-clock rate and CPU seconds per step as ratios to its no-saves segment."""
    wall = [r.steps_per_second / b.steps_per_second for r, b in zip(results, base, strict=True)]
    cpu = [
        r.cpu_seconds_per_step / b.cpu_seconds_per_step for r, b in zip(results, base, strict=True)
    ]
    return wall, cpu


def _variant_figures(results: list[_Segment], base: list[_Segment]) -> dict[str, Any]:
    """One variant against the same rounds' no-saves segments."""
    wall, cpu = _ratios(results, base)
    stalls = [s for r in results for s in r.stalls]
    writer_cpu = [s for r in results for s in r.writer_cpu_seconds]
    writes = [s for r in results for s in r.write_seconds]
    return {
        "steps_per_second": _spread([r.steps_per_second for r in results]),
        "wall_ratio_to_no_saves": _spread(wall),
        "wall_overhead_percent": round(100 * (1 - statistics.median(wall)), 2),
        "cpu_seconds_per_step": _spread([r.cpu_seconds_per_step for r in results]),
        "cpu_ratio_to_no_saves": _spread(cpu),
        "cpu_overhead_percent": round(100 * (statistics.median(cpu) - 1), 2),
        "saves_per_segment": len(results[0].stalls),
        "stall_seconds_per_save": _spread(stalls) if stalls else None,
        "writer_cpu_seconds_per_save": _spread(writer_cpu) if writer_cpu else None,
        "write_seconds_per_save": _spread(writes) if writes else None,
    }


#: Goals, in percent of training time: a save per epoch, and a save every 60 s.
GOAL_EVERY_EPOCH_PERCENT = 2.0
GOAL_EVERY_60_S_PERCENT = 5.0


def measured_overhead(
    variant: dict[str, Any],
    control: dict[str, Any],
    control_wall_ratios: list[float],
    control_cpu_ratios: list[float],
    goal_percent: float = GOAL_EVERY_EPOCH_PERCENT,
) -> dict[str, Any]:
    """A variant's measured overhead with its verdicts against the A/A control's noise floor.

    Pure: ``variant`` and ``control`` are :func:`_variant_figures` results, the
    ratios are the control's per round. A median inside a noise floor wider than
    the goal is "not resolved", whatever its sign (:func:`bench.verdicts.overhead`).
    """
    wall_floor = verdicts.noise_floor_percent(control_wall_ratios)
    cpu_floor = verdicts.noise_floor_percent(control_cpu_ratios)
    rounds = len(control_wall_ratios)
    return {
        "cpu_overhead_percent": variant["cpu_overhead_percent"],
        "wall_overhead_percent": variant["wall_overhead_percent"],
        "a_a_cpu_percent": control["cpu_overhead_percent"],
        "a_a_wall_percent": control["wall_overhead_percent"],
        "a_a_cpu_noise_floor_percent": cpu_floor,
        "a_a_wall_noise_floor_percent": wall_floor,
        "goal_percent": goal_percent,
        "verdict_cpu": verdicts.overhead(
            variant["cpu_overhead_percent"], cpu_floor, goal_percent, rounds=rounds
        ),
        "verdict_wall": verdicts.overhead(
            variant["wall_overhead_percent"], wall_floor, goal_percent, rounds=rounds
        ),
    }


def bounded_overhead(
    stall: float, writer_cpu: float, epoch_seconds: float
) -> dict[str, dict[str, Any]]:
    """Upper bound, as if every CPU second of the writer were taken from training; verdicts."""
    bound: dict[str, dict[str, Any]] = {}
    for name, seconds, goal in (
        ("every epoch", epoch_seconds, GOAL_EVERY_EPOCH_PERCENT),
        ("every 60 s", 60.0, GOAL_EVERY_60_S_PERCENT),
    ):
        percent = round(100 * (stall + writer_cpu) / seconds, 2)
        bound[name] = {
            "seconds_between_saves": round(seconds, 2),
            "overhead_percent": percent,
            "goal_percent": goal,
            "verdict": verdicts.at_most(percent, goal),
        }
    return bound


def peer_comparison(
    figures: dict[str, dict[str, Any]], wall_floor: float, cpu_floor: float, rounds: int
) -> list[dict[str, Any]]:
    """Rekindle's save per epoch beside each Keras peer's, with "ahead of the peer" verdicts.

    Pure: ``figures`` are :func:`_variant_figures` by variant, each against its own
    trainer's no-saves segments; the floors are the A/A control's
    (:func:`bench.verdicts.ahead_of` says how they judge a difference).
    """
    ours = figures[REKINDLE_EVERY_EPOCH]
    rows = []
    for name in (REKINDLE_EVERY_EPOCH, KERAS_MODEL_CHECKPOINT, KERAS_BACKUP_AND_RESTORE):
        if name not in figures:
            continue
        theirs = figures[name]
        row: dict[str, Any] = {
            "variant": name,
            "baseline": KERAS_NONE if name != REKINDLE_EVERY_EPOCH else REKINDLE_NONE,
            "wall_ratio": theirs["wall_ratio_to_no_saves"],
            "cpu_ratio": theirs["cpu_ratio_to_no_saves"],
            "wall_overhead_percent": theirs["wall_overhead_percent"],
            "cpu_overhead_percent": theirs["cpu_overhead_percent"],
            "stall_seconds_per_save": theirs["stall_seconds_per_save"],
        }
        if name != REKINDLE_EVERY_EPOCH:
            row["rekindle_ahead_wall"] = verdicts.ahead_of(
                ours["wall_overhead_percent"],
                theirs["wall_overhead_percent"],
                wall_floor,
                rounds=rounds,
            )
            row["rekindle_ahead_cpu"] = verdicts.ahead_of(
                ours["cpu_overhead_percent"],
                theirs["cpu_overhead_percent"],
                cpu_floor,
                rounds=rounds,
            )
        rows.append(row)
    return rows


def checkpoint_overhead(
    quick: bool, epoch_seconds: float | None = None, *, peers: bool = True, units: int = BIG_UNITS
) -> dict[str, Any]:
    """Interleaved rounds (A A' B C ... P0 P1 P2, A' B C ... P2 A, ...) of two-epoch segments.

    One model for all; round *r* starts at the *r*-th variant, so that no variant always
    follows the same one.

    With ``peers`` each round also runs plain ``model.fit`` without a callback, with
    Keras ``ModelCheckpoint`` and with ``BackupAndRestore`` (issue #19, point 5).
    ``units`` shrinks the model for the smoke test (``tests/bench``).
    """
    target = epoch_seconds or (QUICK_EPOCH_SECONDS if quick else EPOCH_SECONDS)
    rounds = 1 if quick else 3
    import keras

    from rekindle_trainer.core.config import parse_config

    config = parse_config(
        {"epochs": 2, "hyperparameters": {"samples": 64 * WARM_UP_STEPS, "units": units}}
    )
    keras.utils.set_random_seed(config.seed)
    setup = build_big(config)
    model = setup.model
    copies: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, left out: traces the step function, builds the optimizer, gives the rate.
        warm = _segment(model, setup.train, Path(tmp) / "warm-up", NO_SAVES, WARM_UP_STEPS)
        steps_per_epoch = max(WARM_UP_STEPS, round(target * warm.steps_per_second))
        data = big_data(64 * steps_per_epoch, config.seed)
        variants = _variants(steps_per_epoch, peers)
        runs: dict[str, list[_Segment]] = {name: [] for name in variants}
        for round_ in range(rounds):
            # Each round starts one variant later: whatever lingers after a segment (the
            # last one's writes, freed memory) slows a different successor each round.
            names = list(variants)
            for index, name in enumerate(names[round_:] + names[:round_]):
                spec = variants[name]
                folder = Path(tmp) / f"{round_}-{index}"
                runs[name].append(_run_variant(model, data, folder, spec, steps_per_epoch))
                shutil.rmtree(folder, ignore_errors=True)
            copies.append(_host_copies(model))
    base = runs[REKINDLE_NONE]
    figures = {
        name: _variant_figures(results, runs[baseline_of(variants[name])])
        for name, results in runs.items()
    }
    every_epoch = figures["every epoch"]
    stall = every_epoch["stall_seconds_per_save"]["median"]
    writer_cpu = every_epoch["writer_cpu_seconds_per_save"]["median"]
    epoch_seconds = steps_per_epoch / statistics.median(r.steps_per_second for r in base)
    control_wall, control_cpu = _ratios(runs["no saves (A/A control)"], base)
    measured = {
        "every epoch": measured_overhead(
            every_epoch, figures["no saves (A/A control)"], control_wall, control_cpu
        )
    }
    bound = bounded_overhead(stall, writer_cpu, epoch_seconds)
    peer_rows = peer_comparison(
        figures,
        verdicts.noise_floor_percent(control_wall),
        verdicts.noise_floor_percent(control_cpu),
        rounds,
    )
    reference = {key: round(statistics.median(c[key] for c in copies), 4) for key in copies[0]}
    return {
        "parameters": model.count_params(),
        "state_bytes": sum(int(v.numpy().nbytes) for v in model.variables)
        + sum(int(v.numpy().nbytes) for v in model.optimizer.variables),
        "rounds": rounds,
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds": round(epoch_seconds, 2),
        "variants": figures,
        "measured_overhead": measured,
        "stall_seconds_per_save_median": stall,
        "writer_cpu_seconds_per_save_median": writer_cpu,
        "host_copy_seconds": reference,
        "stall_within_host_copy": stall <= reference["state_numpy_seconds"],
        "bounded_overhead": bound,
        "peers": peer_rows,
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
            reached = position_file.read(folder / "ckpt")
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

    from rekindle_trainer.core.config import parse_config
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
    """The side-by-side table, the stall against the host copies, the overhead against the goals."""
    millions = overhead["parameters"] / 1e6
    print_table(
        f"Checkpoint overhead ({millions:.1f} M parameter MLP, {overhead['rounds']} interleaved "
        f"rounds, each variant's second epoch of {overhead['steps_per_epoch']} steps "
        f"(~{overhead['epoch_seconds']} s), median [min-max])",
        [
            "saves",
            "steps/s",
            "wall ratio",
            "CPU s/step ratio",
            "stall s/save",
            "writer CPU s/save",
            "write s/save",
        ],
        [
            [
                name,
                _fmt(r["steps_per_second"]),
                _fmt(r["wall_ratio_to_no_saves"]),
                _fmt(r["cpu_ratio_to_no_saves"]),
                _fmt(r["stall_seconds_per_save"]),
                _fmt(r["writer_cpu_seconds_per_save"]),
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
    _print_verdicts(overhead)
    _print_peers(overhead)


def _print_peers(overhead: dict[str, Any]) -> None:
    """Rekindle's save per epoch beside the Keras peers', each against its own baseline."""
    rows = overhead.get("peers", [])
    if len(rows) < 2:
        return
    print_table(
        "Peers side by side (same model, same rounds; each ratio against its own trainer's "
        "no-saves segment: Rekindle's session, or plain model.fit; median [min-max])",
        [
            "saves every epoch",
            "wall ratio",
            "CPU s/step ratio",
            "wall overhead %",
            "CPU overhead %",
            "stall s/save",
            "Rekindle ahead (wall)",
            "Rekindle ahead (CPU)",
        ],
        [
            [
                r["variant"],
                _fmt(r["wall_ratio"]),
                _fmt(r["cpu_ratio"]),
                r["wall_overhead_percent"],
                r["cpu_overhead_percent"],
                _fmt(r["stall_seconds_per_save"]),
                r.get("rekindle_ahead_wall", "-"),
                r.get("rekindle_ahead_cpu", "-"),
            ]
            for r in rows
        ],
    )


def _print_verdicts(overhead: dict[str, Any]) -> None:
    """The measured overhead and its bound against the goals, with the computed verdicts."""
    print_table(
        "Measured overhead of a save per epoch (median over rounds; the A/A control is two "
        "identical no-saves segments, its noise floor the widest round's deviation from 1)",
        ["measure", "overhead %", "A/A control %", "A/A noise floor %", "goal %", "verdict"],
        [
            [
                "process CPU seconds per step",
                r["cpu_overhead_percent"],
                r["a_a_cpu_percent"],
                r["a_a_cpu_noise_floor_percent"],
                r["goal_percent"],
                r["verdict_cpu"],
            ]
            for r in overhead["measured_overhead"].values()
        ]
        + [
            [
                "wall-clock steps per second",
                r["wall_overhead_percent"],
                r["a_a_wall_percent"],
                r["a_a_wall_noise_floor_percent"],
                r["goal_percent"],
                r["verdict_wall"],
            ]
            for r in overhead["measured_overhead"].values()
        ],
    )
    print_table(
        "Overhead bound: (stall + writer CPU per save) / training time between saves",
        ["saves", "seconds between", "overhead %", "goal %", "verdict"],
        [
            [
                name,
                r["seconds_between_saves"],
                r["overhead_percent"],
                r["goal_percent"],
                r["verdict"],
            ]
            for name, r in overhead["bounded_overhead"].items()
        ],
    )


def _fmt(spread: dict[str, float] | None) -> str:
    if spread is None:
        return "-"
    return f"{spread['median']} [{spread['min']}-{spread['max']}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument(
        "--epoch-seconds",
        type=float,
        help=f"epoch length of the overhead runs in seconds (default {EPOCH_SECONDS})",
    )
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
        figures["checkpoint_overhead"] = overhead = checkpoint_overhead(
            args.quick, args.epoch_seconds
        )
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
