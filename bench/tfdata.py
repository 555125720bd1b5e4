"""Resume of a file-based ``tf.data`` pipeline: process start to the first resumed step.

``python -m bench.tfdata`` writes ``bench/results/tfdata.json`` and prints a
table. ``--quick`` shrinks it for a smoke run. The pipeline is the
digits-from-TFRecord example (``rekindle_trainer.examples.digits_records``):
``--records`` records (50,000) read from files, shuffled, through a costly
parse/augment map (``--map-cost``), batched by 64. One preparation run trains
into the epoch and saves every tenth of it; each variant then starts
``rekindle-train`` on a folder holding only one checkpoint:

* ``0%``: no checkpoint (the start of the epoch),
* ``iterator 10/50/90%``: the checkpoint at that point, which holds the
  iterator's state (restored: no batch is read again),
* ``skip 10/50/90%``: the same checkpoint rewritten without the iterator state,
  as an older release wrote it (resumed by reading and dropping the batches
  before it: today's path before iterator checkpointing).

Each figure is the time from spawning the process to its first step's progress
event. Variants run interleaved, round after round, so that the machine's noise
hits them alike; each ratio is to the same round's ``0%``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import verdicts
from bench.common import print_table, write_result
from bench.trainer import REPO, _env, _events, _first_step_after, _wait
from rekindle_trainer.checkpoint.store import CheckpointStore, Snapshot
from rekindle_trainer.training import iterators

GOAL_RATIO = 1.1
BATCH = 64
POSITIONS = (10, 50, 90)
_MANIFEST_ONLY = ("format_version", "name", "created", "arrays", "files", "manifest_crc32")


def _spawn(folder: Path, doc: dict[str, Any], attempt: int) -> subprocess.Popen[bytes]:
    """``rekindle-train`` on ``folder``, this checkout's trainer first on the path."""
    env = _env(folder, doc, attempt)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "trainer_image"), str(REPO)])
    return subprocess.Popen(
        [sys.executable, "-m", "rekindle_trainer.cli"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _doc(records: int, map_cost: int, records_dir: Path, every: int) -> dict[str, Any]:
    return {
        "entrypoint": "rekindle_trainer.examples.digits_records:build",
        "epochs": 2,
        "batchSize": BATCH,
        "seed": 3,
        "hyperparameters": {
            "records": records,
            "shards": 8,
            "shuffleBuffer": 1024,
            "mapCost": map_cost,
            "recordsDir": str(records_dir),
        },
        "checkpoint": {"everyEpochs": 1, "everySteps": every, "keep": 20},
        "earlyStopping": {"enabled": False},
    }


def _prepare(folder: Path, doc: dict[str, Any], steps: dict[int, int]) -> dict[int, str]:
    """Train into the epoch until the last wanted checkpoint is published; their names."""
    process = _spawn(folder, doc, 1)
    last = max(steps.values())

    def published() -> bool:
        return any(e["kind"] == "checkpoint" and e["step"] >= last for e in _events(folder))

    try:
        _wait(published, timeout=1800)
    finally:
        process.kill()
        process.wait()
    names = {}
    for percent, step in steps.items():
        found = [n for n in CheckpointStore(folder / "ckpt").names() if n.endswith(f"-{step:010d}")]
        assert found, f"no checkpoint at step {step}"
        names[percent] = found[0]
    return names


def _strip(store: CheckpointStore, name: str) -> int:
    """Rewrite checkpoint ``name`` without its iterator state; the state's size in bytes."""
    loaded = store.load(name)
    state = dict(loaded.groups).pop(iterators.GROUP)
    groups = {g: a for g, a in loaded.groups.items() if g != iterators.GROUP}
    meta = {k: v for k, v in loaded.manifest.items() if k not in _MANIFEST_ONLY}
    meta["data"] = {k: v for k, v in meta["data"].items() if not k.startswith("iterator")}
    store.write(Snapshot(groups=groups, meta=meta))
    return sum(a.nbytes for _, a in state)


def _variants(root: Path, prepared: Path, names: dict[int, str]) -> tuple[dict[str, Path], int]:
    """A checkpoint folder per variant (``0%`` has none); the 90 % iterator state's bytes."""
    folders = {"0%": root / "zero"}
    state_bytes = 0
    for percent, name in names.items():
        for how in ("iterator", "skip"):
            target = root / f"{how}-{percent}" / "ckpt"
            target.mkdir(parents=True)
            shutil.copytree(prepared / "ckpt" / name, target / name)
            if how == "skip":
                size = _strip(CheckpointStore(target), name)
                state_bytes = size if percent == max(names) else state_bytes
            folders[f"{how} {percent}%"] = target.parent
    return folders, state_bytes


def _time_to_first_step(folder: Path, doc: dict[str, Any], attempt: int) -> float:
    """Spawn an attempt on ``folder``; seconds from the spawn to its first step event."""
    start = len(_events(folder))
    started = time.time()
    process = _spawn(folder, doc, attempt)
    try:
        _wait(lambda: _first_step_after(folder, start) is not None, timeout=1800)
    finally:
        process.kill()
        process.wait()
    first = _first_step_after(folder, start)
    assert first is not None
    return first - started


def measure(
    records: int, map_cost: int, rounds: int, positions: tuple[int, ...] = POSITIONS
) -> dict[str, Any]:
    """The figures: per variant the seconds of every round, medians and ratios to ``0%``.

    ``positions``: the percents of the epoch resumed at (tenths of it).
    """
    steps_per_epoch = -(-records // BATCH)
    every = steps_per_epoch // 10
    steps = {p: every * p // 10 for p in positions}
    with tempfile.TemporaryDirectory(prefix="rekindle-bench-tfdata-") as tmp:
        root = Path(tmp)
        doc = _doc(records, map_cost, root / "records", every)
        prepared = root / "prepared"
        began = time.perf_counter()
        names = _prepare(prepared, doc, steps)
        prepare_seconds = time.perf_counter() - began
        folders, state_bytes = _variants(root, prepared, names)
        seconds: dict[str, list[float]] = {v: [] for v in folders}
        attempt = 10
        for index in range(rounds):
            order = list(folders)
            order = order[index % len(order) :] + order[: index % len(order)]  # rotate
            for variant in order:
                attempt += 1
                seconds[variant].append(_time_to_first_step(folders[variant], doc, attempt))
                if variant == "0%":  # its next round starts from nothing again
                    shutil.rmtree(folders[variant], ignore_errors=True)
    ratios = {
        v: [round(s / z, 3) for s, z in zip(values, seconds["0%"], strict=True)]
        for v, values in seconds.items()
    }
    last = f"iterator {max(positions)}%"
    iterator_last = statistics.median(ratios[last])
    return {
        "records": records,
        "batch_size": BATCH,
        "steps_per_epoch": steps_per_epoch,
        "map_cost": map_cost,
        "rounds": rounds,
        "resume_steps": {f"{p}%": s for p, s in steps.items()},
        "prepare_seconds_to_90_percent": round(prepare_seconds, 1),
        "iterator_state_bytes_at_90_percent": state_bytes,
        "seconds": {v: [round(s, 2) for s in values] for v, values in seconds.items()},
        "median_seconds": {v: round(statistics.median(s), 2) for v, s in seconds.items()},
        "ratio_to_0_percent": ratios,
        "median_ratio_to_0_percent": {v: round(statistics.median(r), 3) for v, r in ratios.items()},
        "goal": f"iterator 90% within {GOAL_RATIO}x of 0%",
        "verdict": (
            verdicts.at_most(iterator_last, GOAL_RATIO)
            if last == "iterator 90%"
            else "not measured (no resume at 90%)"
        ),
    }


def _first_batch(source: Any, skip: int, state: bytes | None) -> tuple[float, Any]:
    """Seconds from asking the source for the rest of the epoch to its first batch; the batch."""
    began = time.perf_counter()
    source.restored_state = state
    iterator = iter(source.segment(0, 1, skip).x)
    batch = next(iterator)
    return time.perf_counter() - began, batch


def data_path(records: int, map_cost: int, rounds: int) -> dict[str, Any]:
    """The data path alone, in one process: asking for the resumed epoch to its first batch.

    The pipeline is built once per measurement (as an attempt builds it); the iterator
    states at 10/50/90 % come from one pass over the epoch. No process start, no model:
    what iterator restore changes, without the start-up that dominates the timings above.
    """
    import numpy as np
    import tensorflow as tf

    from rekindle_trainer.examples import digits_records
    from rekindle_trainer.training import data

    config: Any = argparse.Namespace(seed=3, batch_size=BATCH, hyperparameters={})
    steps_per_epoch = -(-records // BATCH)
    steps = {p: steps_per_epoch * p // 100 for p in POSITIONS}
    with tempfile.TemporaryDirectory(prefix="rekindle-bench-tfdata-") as tmp:
        x, y, _, _ = digits_records._split(config.seed)
        files = digits_records.write_records(Path(tmp) / "records", x, y, records, 8)

        def source() -> Any:
            dataset = digits_records.pipeline(files, records, config, 1024, map_cost)
            return data.DatasetSource(dataset, None, True)

        first = source()
        assert first.tracker is not None
        live = iter(first.tracker.wrap(first.dataset, None))
        states: dict[int, bytes] = {}
        for step in range(1, max(steps.values()) + 1):
            next(live)
            percent = next((p for p, s in steps.items() if s == step), None)
            if percent is not None:
                saved = first.tracker.save().state
                assert saved is not None
                states[percent] = saved.tobytes()
        seconds: dict[str, list[float]] = {"0%": []}
        for p in POSITIONS:
            seconds[f"iterator {p}%"], seconds[f"skip {p}%"] = [], []
        same = True
        for _ in range(rounds):
            seconds["0%"].append(_first_batch(source(), 0, None)[0])
            for p in POSITIONS:
                took, restored = _first_batch(source(), steps[p], states[p])
                seconds[f"iterator {p}%"].append(took)
                took, skipped = _first_batch(source(), steps[p], None)
                seconds[f"skip {p}%"].append(took)
                same = same and all(
                    np.array_equal(a, b)
                    for a, b in zip(
                        tf.nest.flatten(restored), tf.nest.flatten(skipped), strict=True
                    )
                )
    return {
        "seconds": {v: [round(s, 3) for s in values] for v, values in seconds.items()},
        "median_seconds": {v: round(statistics.median(s), 3) for v, s in seconds.items()},
        "restored_batch_equals_skipped_batch": same,
        "state_bytes": {f"{p}%": len(states[p]) for p in POSITIONS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--map-cost", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--data-path-only", action="store_true", help="only the in-process data-path figures"
    )
    parser.add_argument(
        "--process-only", action="store_true", help="only the process-level figures"
    )
    parser.add_argument(
        "--positions",
        type=lambda text: tuple(int(p) for p in text.split(",")),
        default=POSITIONS,
        help="percents of the epoch to resume at, tenths only (default 10,50,90)",
    )
    args = parser.parse_args(argv)
    records, rounds = (3_200, 1) if args.quick else (args.records, args.rounds)
    if args.process_only:
        return _report(measure(records, args.map_cost, rounds, args.positions), records, args)
    inner = data_path(records, args.map_cost, rounds)
    print_table(
        "data path alone: asking for the resumed epoch to its first batch (in one process)",
        ["variant", "median s", "each round (s)"],
        [[v, inner["median_seconds"][v], inner["seconds"][v]] for v in inner["seconds"]],
    )
    same = inner["restored_batch_equals_skipped_batch"]
    print(f"restored first batch == skipped first batch: {same}")
    if args.data_path_only:
        write_result("tfdata-data-path", {"records": records, "map_cost": args.map_cost, **inner})
        return 0
    figures = {**measure(records, args.map_cost, rounds, args.positions), "data_path": inner}
    return _report(figures, records, args)


def _report(figures: dict[str, Any], records: int, args: argparse.Namespace) -> int:
    """Write the JSON and print the process-level table and verdict."""
    path = write_result("tfdata", figures)
    rows = [
        [
            v,
            figures["median_seconds"][v],
            figures["median_ratio_to_0_percent"][v],
            figures["seconds"][v],
        ]
        for v in figures["seconds"]
    ]
    print_table(
        f"tf.data resume, {records} records, map cost {args.map_cost}: process start to first step",
        ["variant", "median s", "ratio to 0%", "each round (s)"],
        rows,
    )
    print(f"\ngoal {figures['goal']}: {figures['verdict']}")
    print(f"iterator state at 90%: {figures['iterator_state_bytes_at_90_percent']} bytes")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
