"""Gang benchmarks (#15): exactness under faults, gang restart time, per-step costs 2 vs 1.

``make bench-gang`` (``python -m bench.gang``) writes ``bench/results/gang.json``
and prints a table. Every run is ``rekindle run`` (the local runner: two trainer
processes on 127.0.0.1 under ``MultiWorkerMirroredStrategy``, the operator's
gang rules) on a small digits job (the e2e gang scenarios' settings: 23 global
steps per epoch, a checkpoint every 5 steps, an early stop around epoch 4-6).

1. Exactness: the uninterrupted 2-worker run against one with worker 1
   SIGKILLed mid-epoch, then worker 0 SIGKILLed at an epoch's end, then worker 1
   SIGTERMed: the final checkpoint's weights (SHA-256 and the largest absolute
   difference), the early-stop epoch, the best epoch and value.
2. Gang restart: from the first SIGKILL (the killed worker's last progress
   event) to every worker of the next gang running its first resumed step,
   against a cold start (``rekindle run`` launched to every worker's first step).
3. Costs 2 workers vs 1: seconds per step and the stall per save, from the
   chief's termination message (``timing``), in the uninterrupted runs. The
   per-step agreement is part of the 2-worker step (it cannot be switched off),
   so the 2-worker figure is the all-reduce of the gradients plus the agreement.
4. The agreement alone: ``bench.agreement`` (its module docstring) times
   ``Agreement.agree`` against training steps in the same gang, 2 workers and 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench import agreement, verdicts
from bench.common import print_table, write_result

REPO = Path(__file__).resolve().parents[1]
#: The e2e gang scenarios' job (tests/e2e/manifests.py GANG_FAST), as ``rekindle run`` reads it.
SPEC: dict[str, Any] = {
    "image": "local",
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "workers": 2,
    "training": {
        "epochs": 12,
        "batchSize": 64,
        "seed": 5,
        "hyperparameters": {"units": 16, "learningRate": 0.01, "dropout": 0.2},
    },
    "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 3},
    "earlyStopping": {"monitor": "val_loss", "patience": 1, "minDelta": 0.03},
    "restartPolicy": {"maxRestarts": 5, "backoff": {"initialSeconds": 1, "maxSeconds": 4}},
}
#: Worker 1 killed mid-epoch 1 (23 steps an epoch), worker 0 killed as epoch 2 ends, worker 1
#: SIGTERMed mid-epoch 3: each fires in the first attempt that reaches its point.
FAULTS = ("sigkill@step=12,worker=1", "sigkill@epoch=2", "sigterm@step=58,worker=1")


def manifest(folder: Path, name: str, workers: int) -> Path:
    """The job's YAML for ``rekindle run``."""
    doc = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {**SPEC, "workers": workers},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(folder: Path, name: str, workers: int, faults: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``rekindle run`` to its end: its work folder, launch time and wall seconds."""
    workdir = folder / name
    command = [sys.executable, "-m", "rekindle_operator.cli", "run"]
    command += [str(manifest(folder, name, workers)), "--workdir", str(workdir), "--fresh"]
    command += ["--no-progress", "--metrics-port", "0"]
    for fault in faults:
        command += ["--inject", fault]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    launched = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.time() - launched
    if done.returncode != 0:
        raise RuntimeError(f"rekindle run {name} exited {done.returncode}:\n{done.stdout[-3000:]}")
    return {"workdir": workdir, "launched": launched, "wall": wall, "workers": workers}


def progress(workdir: Path, attempt: int, worker: int, workers: int) -> list[dict[str, Any]]:
    """The progress events of one worker of one attempt."""
    folder = workdir / "attempts" / f"{attempt:04d}"
    path = (folder / f"w{worker}" if workers > 1 else folder) / "progress.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def first_step(events: list[dict[str, Any]]) -> float:
    """When the worker reported its first step of the attempt."""
    return float(min(e["time"] for e in events if e["kind"] == "step"))


def termination(workdir: Path, attempt: int, worker: int, workers: int) -> dict[str, Any]:
    folder = workdir / "attempts" / f"{attempt:04d}"
    path = (folder / f"w{worker}" if workers > 1 else folder) / "termination-log"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def attempts(workdir: Path) -> int:
    return len([p for p in (workdir / "attempts").iterdir() if p.is_dir()])


def final_weights(workdir: Path) -> tuple[str, list[Any], dict[str, Any]]:
    """The newest checkpoint's model arrays: SHA-256, the arrays, its manifest."""
    from rekindle_trainer.checkpoint import store

    checkpoints = store.CheckpointStore(workdir / "checkpoints" / workdir.name)
    if not checkpoints.names():
        checkpoints = store.CheckpointStore(workdir / "checkpoints")
    loaded = checkpoints.load(checkpoints.names()[-1])
    digest = hashlib.sha256()
    arrays = []
    for name, array in loaded.groups.get("model", []):
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
        arrays.append(array)
    return digest.hexdigest(), arrays, dict(loaded.manifest)


def exactness(reference: dict[str, Any], faulted: dict[str, Any]) -> dict[str, Any]:
    """The faulted run's end against the reference's (see the module docstring, 1)."""
    ref_sha, ref_arrays, _ = final_weights(reference["workdir"])
    sha, arrays, _ = final_weights(faulted["workdir"])
    distance = max(
        (
            float(abs(a.astype("float64") - b.astype("float64")).max())
            for a, b in zip(ref_arrays, arrays, strict=True)
        ),
        default=0.0,
    )
    last = attempts(faulted["workdir"])
    ref_end = termination(reference["workdir"], 1, 0, 2)
    end = termination(faulted["workdir"], last, 0, 2)
    keys = ("early_stop_epoch", "best_epoch", "best_metric", "step")
    same = {k: ref_end.get(k) == end.get(k) for k in keys}
    return {
        "faults": list(FAULTS),
        "attempts": last,
        "bitwise": sha == ref_sha,
        "max_abs_difference": distance,
        "reference": {k: ref_end.get(k) for k in keys},
        "faulted": {k: end.get(k) for k in keys},
        "same_end": same,
        "verdict": verdicts.MET if sha == ref_sha and all(same.values()) else verdicts.NOT_MET,
    }


def restart_time(reference: dict[str, Any], faulted: dict[str, Any]) -> dict[str, Any]:
    """Cold start of the gang, and the gang restart after the first SIGKILL (worker 1)."""
    workdir = reference["workdir"]
    cold = max(first_step(progress(workdir, 1, w, 2)) for w in (0, 1)) - reference["launched"]
    killed = progress(faulted["workdir"], 1, 1, 2)
    kill_seen = max(e["time"] for e in killed)
    resumed = max(first_step(progress(faulted["workdir"], 2, w, 2)) for w in (0, 1))
    return {
        "cold_start_seconds": round(cold, 2),
        "restart_seconds": round(resumed - kill_seen, 2),
        "backoff_seconds": SPEC["restartPolicy"]["backoff"]["initialSeconds"],
        "note": "restart: worker 1's last progress event before its SIGKILL to every worker's "
        "first step of the next gang (backoff included when the cause is counted a failure)",
    }


def step_costs(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """Seconds per step and stall per save of the chief, 1 worker against 2."""
    figures: dict[str, Any] = {}
    for label, result in (("1_worker", one), ("2_workers", two)):
        workers = result["workers"]
        timing = termination(result["workdir"], 1, 0, workers).get("timing") or {}
        saves = [e for e in progress(result["workdir"], 1, 0, workers) if e["kind"] == "checkpoint"]
        steps = int(timing.get("steps") or 0)
        training = float(timing.get("training") or 0.0)
        stall = float(timing.get("checkpoint_stall") or 0.0)
        figures[label] = {
            "steps": steps,
            "saves": len(saves),
            "seconds_per_step": round((training - stall) / steps, 5) if steps else None,
            "stall_per_save_seconds": round(stall / len(saves), 4) if saves else None,
            "startup_seconds": timing.get("startup"),
            "wall_seconds": round(result["wall"], 1),
        }
    a, b = figures["1_worker"], figures["2_workers"]
    if a["seconds_per_step"] and b["seconds_per_step"]:
        figures["step_ratio_2_vs_1"] = round(b["seconds_per_step"] / a["seconds_per_step"], 2)
    if a["stall_per_save_seconds"] and b["stall_per_save_seconds"]:
        figures["save_ratio_2_vs_1"] = round(
            b["stall_per_save_seconds"] / a["stall_per_save_seconds"], 2
        )
    return figures


def stops(exact: dict[str, Any]) -> str:
    """``stop/best`` of the faulted run, then the reference's."""
    got, ref = exact["faulted"], exact["reference"]
    return (
        f"{got['early_stop_epoch']}/{got['best_epoch']} "
        f"(reference {ref['early_stop_epoch']}/{ref['best_epoch']})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gang", description=__doc__)
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep the work folders")
    args = parser.parse_args(argv)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-gang-"))
    folder.mkdir(parents=True, exist_ok=True)
    reference = run(folder, "gang-reference", 2)
    faulted = run(folder, "gang-faulted", 2, FAULTS)
    solo = run(folder, "solo-reference", 1)
    ex, rs = exactness(reference, faulted), restart_time(reference, faulted)
    co = step_costs(solo, reference)
    agreed = agreement.measure(rounds=5, steps=40, calls=40)
    figures = {
        "exactness": ex,
        "restart": rs,
        "costs": co,
        "agreement": agreed,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    path = write_result("gang", figures)
    rows = [
        ("exactness: bitwise final weights", ex["bitwise"], ex["verdict"]),
        ("exactness: max |difference|", ex["max_abs_difference"], ""),
        ("exactness: early stop, best epoch", stops(ex), ""),
        ("attempts (3 faults)", ex["attempts"], ""),
        ("gang cold start (s)", rs["cold_start_seconds"], ""),
        ("gang restart after a SIGKILL (s)", rs["restart_seconds"], ""),
        ("s/step 1 worker", co["1_worker"]["seconds_per_step"], ""),
        ("s/step 2 workers", co["2_workers"]["seconds_per_step"], ""),
        ("stall/save 1 worker (s)", co["1_worker"]["stall_per_save_seconds"], ""),
        ("stall/save 2 workers (s)", co["2_workers"]["stall_per_save_seconds"], ""),
        *agreement.table_rows({k: agreed[k] for k in ("1_worker", "2_workers")}),
    ]
    print_table("Gang (2 workers, rekindle run)", ("figure", "value", "verdict"), rows)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
