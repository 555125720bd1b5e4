"""Save and restore at disk speed: Rekindle's checkpoint I/O against plain file I/O.

``python -m bench.disk_speed`` (``make bench-disk``) writes
``bench/results/disk_speed.json`` and prints a table. ``--quick`` shrinks the
state to a few MB for a smoke run.

A Keras MLP whose state (weights and Adam's two slots) is about ``--gigabytes``
is built, and in one run, in interleaved repetitions:

- save: Rekindle's writer (:class:`~rekindle_trainer.checkpoint.saver.BackgroundSaver`
  in front of the store: serialization, CRC-32, fsync, manifest, rename; its
  thread runs at nice +5, so that a busy machine's training keeps the CPU) and
  the store's ``write`` on the calling thread, each against a plain ``write`` +
  ``fsync`` of the same arrays' bytes to one file;
- restore read: the store's ``latest_valid`` (what an attempt calls to resume:
  manifest checks, CRC-32 of the state file, the arrays) against a plain
  sequential read of the same checkpoint's files, both cold (each file's pages
  dropped from the page cache with ``posix_fadvise(DONTNEED)`` first, after an
  fsync: this file only, no other tenant's cache is touched) and warm (read
  straight after a read of the same files);
- the assignment of the restored arrays into the model (reported, not judged).

Each repetition runs both sides back to back, the order alternating, so that
other tenants of a shared machine load both alike. Ratios are throughput
ratios (plain seconds / Rekindle seconds: 1 is disk speed) per repetition; the
goal (issue #19) is a restore read ratio of 0.8 or more, judged by
:func:`bench.verdicts.ratio_at_least`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench import verdicts
from bench.common import print_table, write_result

#: Restore read throughput against a plain read's, at least (issue #19, point 3).
GOAL_RESTORE_RATIO = 0.8
#: Bytes of state a parameter takes with Adam: the weight and its two moments, float32.
STATE_BYTES_PER_PARAMETER = 12
_READ_CHUNK = 1 << 24


def layer_sizes(gigabytes: float, width: int = 4096) -> list[int]:
    """Widths of the Dense stack whose state (with Adam) is about ``gigabytes``.

    Pure. Each ``width`` x ``width`` layer holds ``width * (width + 1)`` parameters.
    """
    if gigabytes <= 0 or width < 1:
        raise ValueError(f"gigabytes and width must be positive. Received: {gigabytes}, {width}")
    per_layer = width * (width + 1) * STATE_BYTES_PER_PARAMETER
    return [width] * max(1, round(gigabytes * 1e9 / per_layer))


def build_model(gigabytes: float, width: int) -> Any:
    """A compiled MLP with its optimizer's slots built: its state is what a checkpoint holds."""
    import keras

    from rekindle_trainer.checkpoint import state

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((width,))] + [keras.layers.Dense(u) for u in layer_sizes(gigabytes, width)]
    )
    model.compile(optimizer="adam", loss="mse")
    state.build_optimizer(model)
    return model


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def _evict(folder: Path) -> None:
    """Drop the pages of every file under ``folder`` from the page cache (flushed first)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def plain_read(folder: Path) -> int:
    """Read every file of ``folder`` sequentially into one buffer each; the bytes read."""
    import numpy as np

    total = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        size = path.stat().st_size
        buffer = np.empty(size, dtype=np.uint8)
        view = buffer.data
        with path.open("rb", buffering=0) as handle:
            done = 0
            while done < size:
                got = handle.readinto(view[done : done + _READ_CHUNK])
                if not got:
                    break
                done += got
        total += done
    return total


def plain_write(path: Path, arrays: Sequence[Any]) -> int:
    """Write the arrays' bytes back to back to ``path`` and fsync it; the bytes written."""
    total = 0
    with path.open("wb", buffering=0) as handle:
        for array in arrays:
            data = array.reshape(-1).view("uint8").data
            handle.write(data)
            total += data.nbytes
        os.fsync(handle.fileno())
    return total


def throughput_figures(
    nbytes: int, plain_seconds: Sequence[float], rekindle_seconds: Sequence[float]
) -> dict[str, Any]:
    """Bytes per second of each side and their per-repetition ratio (plain s / Rekindle s).

    Pure. A ratio of 1 is Rekindle at the plain file's speed; 0.5 is half of it.
    """
    if not plain_seconds or len(plain_seconds) != len(rekindle_seconds):
        raise ValueError(
            "plain_seconds and rekindle_seconds: one figure each per repetition, at least one"
        )
    ratios = [p / r for p, r in zip(plain_seconds, rekindle_seconds, strict=True)]
    return {
        "plain_bytes_per_second": _spread([nbytes / s for s in plain_seconds], 0),
        "rekindle_bytes_per_second": _spread([nbytes / s for s in rekindle_seconds], 0),
        "plain_seconds": _spread(plain_seconds, 4),
        "rekindle_seconds": _spread(rekindle_seconds, 4),
        "ratio": _spread(ratios, 3),
        "ratios": [round(r, 3) for r in ratios],
    }


def _spread(values: Sequence[float], digits: int) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def _measure(model: Any, root: Path, reps: int) -> dict[str, list[float]]:
    """Interleaved repetitions of each pair; seconds per side."""
    from rekindle_trainer.checkpoint import state
    from rekindle_trainer.checkpoint.saver import BackgroundSaver
    from rekindle_trainer.checkpoint.store import CheckpointStore, Snapshot

    snapshot = Snapshot(state.snapshot(model), {"epoch": 1, "step": 1, "trigger": "bench"})
    arrays = [a for group in snapshot.groups.values() for _, a in group]
    seconds: dict[str, list[float]] = {
        k: []
        for k in (
            "save_plain",
            "save_rekindle",
            "save_store",
            "read_cold_plain",
            "read_cold_rekindle",
            "read_warm_plain",
            "read_warm_rekindle",
            "assign",
        )
    }
    for rep in range(reps):
        folder = root / f"rep-{rep}"
        store = CheckpointStore(folder / "ckpt", keep=1)
        saver = BackgroundSaver(store, lambda *_: None)
        plain_file = folder / "plain" / "state.bin"
        plain_file.parent.mkdir(parents=True)
        published = folder / "ckpt" / snapshot.name
        write: dict[str, Callable[[], Any]] = {
            "save_plain": partial(plain_write, plain_file, arrays),
            "save_rekindle": partial(saver.submit, snapshot, wait=True),
            "save_store": partial(store.write, snapshot),  # this thread's priority, not niced
        }
        for key in _order(list(write), rep):
            if key != "save_plain":  # else the store finds an identical one and only keeps it
                shutil.rmtree(published, ignore_errors=True)
            seconds[key].append(_timed(write[key])[0])
        for warmth in ("cold", "warm"):
            read: dict[str, Callable[[], Any]] = {
                f"read_{warmth}_plain": partial(plain_read, published),
                f"read_{warmth}_rekindle": store.latest_valid,
            }
            for key in _order(list(read), rep):
                if warmth == "cold":
                    _evict(published)
                else:
                    plain_read(published)
                seconds[key].append(_timed(read[key])[0])  # what was read is freed here
        loaded, _ = store.latest_valid()
        assert loaded is not None
        groups = loaded.groups
        seconds["assign"].append(
            _timed(partial(state.restore, model, groups, ("model", "optimizer")))[0]
        )
        del loaded, groups
        shutil.rmtree(folder)
    return seconds


def _order(keys: list[str], rep: int) -> list[str]:
    """Plain first on even repetitions, Rekindle first on odd ones."""
    return keys if rep % 2 == 0 else keys[::-1]


def disk_speed(gigabytes: float, reps: int, width: int, where: Path | None) -> dict[str, Any]:
    """Build the state, measure, and judge the restore read against its goal."""
    model = build_model(gigabytes, width)
    from rekindle_trainer.checkpoint import state

    nbytes = sum(int(v.numpy().nbytes) for vs in state.variables(model).values() for v in vs)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        seconds = _measure(model, Path(tmp), reps)
    figures: dict[str, Any] = {
        "parameters": model.count_params(),
        "state_bytes": nbytes,
        "repetitions": reps,
        "save": throughput_figures(nbytes, seconds["save_plain"], seconds["save_rekindle"]),
        "save_on_calling_thread": throughput_figures(
            nbytes, seconds["save_plain"], seconds["save_store"]
        ),
        "assign_seconds": _spread(seconds["assign"], 4),
    }
    for warmth in ("cold", "warm"):
        read = throughput_figures(
            nbytes, seconds[f"read_{warmth}_plain"], seconds[f"read_{warmth}_rekindle"]
        )
        read["goal_ratio"] = GOAL_RESTORE_RATIO
        read["verdict"] = verdicts.ratio_at_least(read["ratios"], GOAL_RESTORE_RATIO)
        figures[f"restore_read_{warmth}"] = read
    return figures


def _print(figures: dict[str, Any], where: str) -> None:
    gb = figures["state_bytes"] / 1e9
    rows = []
    for label, key in (
        ("save: background writer (nice +5)", "save"),
        ("save: store.write, this thread", "save_on_calling_thread"),
        ("restore read, cold page cache", "restore_read_cold"),
        ("restore read, warm page cache", "restore_read_warm"),
    ):
        r = figures[key]
        rows.append(
            [
                label,
                f"{r['plain_bytes_per_second']['median'] / 1e6:.0f}",
                f"{r['rekindle_bytes_per_second']['median'] / 1e6:.0f}",
                f"{r['ratio']['median']} [{r['ratio']['min']}-{r['ratio']['max']}]",
                r.get("goal_ratio", "-"),
                r.get("verdict", "-"),
            ]
        )
    print_table(
        f"Checkpoint I/O against plain file I/O ({gb:.2f} GB state, "
        f"{figures['parameters'] / 1e6:.1f} M parameters with Adam, "
        f"{figures['repetitions']} interleaved repetitions, in {where}; "
        "MB/s median, ratio = plain s / Rekindle s, median [min-max])",
        ["what", "plain MB/s", "Rekindle MB/s", "ratio", "goal", "verdict"],
        rows,
    )
    assign = figures["assign_seconds"]
    print(f"assigning the restored arrays to the model: {assign['median']} s (median)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.disk_speed", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few MB, one repetition (smoke)")
    parser.add_argument("--gigabytes", type=float, default=2.0, help="state size (default 2.0)")
    parser.add_argument("--reps", type=int, help="repetitions (default 5; --quick: 1)")
    parser.add_argument("--dir", type=Path, help="where to write (default: the temp folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.quick:
        figures = disk_speed(0.004, args.reps or 1, 128, args.dir)
    else:
        figures = disk_speed(args.gigabytes, args.reps or 5, 4096, args.dir)
    where = str(args.dir or tempfile.gettempdir())
    figures["quick"] = args.quick
    figures["folder"] = where
    _print(figures, where)
    path = write_result("disk_speed_quick" if args.quick else "disk_speed", figures)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
