"""``python -m tests.soak`` (``make soak``): the chaos soak on the emulated cluster.

Prints the seed first (rerun a soak with ``--seed``), then one row per job and
the totals, writes ``bench/results/soak.json`` and exits 1 when any job broke
a promise (:func:`tests.soak.driver.check`).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import print_table, write_result

from tests.e2e.emulated import EmulatedCluster
from tests.soak.driver import JobResult, Soak, totals
from tests.soak.plan import FaultKind, draw


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="default: drawn and printed")
    parser.add_argument("--parallel", type=int, default=4, help="jobs running at once")
    parser.add_argument("--max-per-job", type=int, default=6)
    parser.add_argument(
        "--kinds",
        default=",".join(k.value for k in FaultKind),
        help="comma-separated fault kinds (default: all)",
    )
    parser.add_argument("--result", default="soak", help="bench/results/<name>.json")
    return parser.parse_args(argv)


def commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or "unknown"


def rows(results: list[JobResult]) -> list[list[object]]:
    return [
        [
            r.name,
            ",".join(k.value for k in r.landed) or "-",
            len(r.no_room),
            r.status.get("earlyStopEpoch"),
            sum(((r.status.get("restarts") or {}).get("byCause") or {}).values()),
            f"{r.seconds:.0f}",
            "ok" if not r.problems else "; ".join(r.problems),
        ]
        for r in results
    ]


def main(argv: list[str]) -> int:
    args = parse(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"soak seed {seed} (rerun: python -m tests.soak --seed {seed})", flush=True)
    kinds = [FaultKind(k) for k in args.kinds.split(",") if k]
    plan = draw(seed, jobs=args.jobs, faults=args.faults, kinds=kinds, max_per_job=args.max_per_job)
    print(f"plan: {plan.counts()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rekindle-soak-") as workdir:
        cluster = EmulatedCluster(Path(workdir)).start()
        try:
            soak = Soak(cluster, plan, parallel=args.parallel, spec={})
            reference = soak.reference()
            print(f"reference: early stop at epoch {reference.stop_epoch}", flush=True)
            results = soak.run(reference)
        finally:
            cluster.stop()
    header = ["JOB", "FAULTS LANDED", "NO ROOM", "STOP", "RESTARTS", "SECONDS", "CHECKS"]
    print_table(f"soak seed {seed}, commit {commit()}", header, rows(results))
    figures = totals(results)
    figures.update(seed=seed, commit=commit(), operator_kills=soak.operator_kills)
    figures["cpus"] = os.cpu_count()
    print(f"\ntotals: {figures}")
    print(f"written: {write_result(args.result, figures)}")
    return 0 if figures["jobs_ok"] == figures["jobs"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
