"""Operator benchmark: memory, reaction time, API requests, on the emulated API.

``make bench-operator`` (``python -m bench.operator``) writes
``bench/results/operator.json`` and prints a table. For each job count (200
and 1,000 by default) it starts the emulated API (``tests/kube``) and the real
``rekindle operator`` process, creates the jobs, waits for every first pod,
then measures:

1. RSS of the operator process once every job runs (goal: < 250 MB at 1,000);
2. requests per idle job per minute: every API request the operator makes
   while nothing changes, watch streams excluded (goal: none, no polling);
3. reaction time: from a pod's end written to the API (exit 143, as a
   preemption) to its replacement pod existing, for a sample of jobs, one at
   a time (goal: p99 < 250 ms at 200 jobs);
4. API requests per job per state change during those reactions.

Every figure is measured here, on this machine (shared, 2 cores), against an
emulator written in Python: a real API server is faster. ``--quick`` runs a
small smoke version.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.kube.cluster import Cluster
from tests.kube.store import WatchEvent
from tests.operator.test_operator import (
    OperatorProcess,
    end_pod,
    install_crds,
    stop_cluster,
    terminated,
    training_job,
)

from bench.common import print_table, write_result

NS = "bench"


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def requests_so_far(cluster: Cluster) -> list[Any]:
    """The requests the emulated API has served so far (kmock's log), watch streams excluded."""
    return [r for r in list(cluster.emulator._requests) if r.params.get("watch") != "true"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def operator_reaction_mean_ms(operator: OperatorProcess) -> float | None:
    """The operator's own mean reaction (its event seen -> pod created), from its histogram."""
    values: dict[str, float] = {}
    for line in operator.get("metrics", "/metrics")[1].splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(f"rekindle_operator_reaction_seconds{suffix} "):
                values[suffix] = float(line.split()[1])
    if not values.get("_count"):
        return None
    return round(values["_sum"] / values["_count"] * 1000, 1)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll ``predicate`` until true; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def run(jobs: int, samples: int, idle_seconds: float, workdir: Path) -> dict[str, Any]:
    """Measure one job count; the figures."""
    cluster = Cluster(workdir / f"cluster-{jobs}").start()
    operator: OperatorProcess | None = None
    try:
        cluster.ensure_namespace(NS)
        install_crds(cluster)
        operator = OperatorProcess(cluster, workdir / f"operator-{jobs}.log").start()
        assert operator.process is not None
        started = time.monotonic()
        for index in range(jobs):
            cluster.create(training_job(f"job-{index}", NS))
        running = wait_until(
            lambda: len(cluster.list("pods", NS)) >= jobs,
            timeout=120 + jobs * 3.0,
            what=f"{jobs} first pods",
            interval=0.5,
        )
        all_started = time.monotonic() - started
        wait_until(
            lambda: all(
                (j.get("status") or {}).get("attempt") == 1
                for j in cluster.list("trainingjobs", NS)
            ),
            timeout=120 + jobs * 1.0,
            what="every status written",
            interval=0.5,
        )
        time.sleep(2)  # events and the last writes settle
        memory = rss_mb(operator.process.pid)

        before_idle = len(requests_so_far(cluster))
        time.sleep(idle_seconds)
        idle_log = requests_so_far(cluster)[before_idle:]
        idle_requests = len(idle_log)
        idle_per_job_minute = idle_requests / jobs / (idle_seconds / 60)

        # The moment each pod is created, recorded by the API itself (no polling load on it).
        created_at: dict[str, float] = {}

        def record(event: WatchEvent) -> None:
            if event.type == "ADDED" and event.object.get("kind") == "Pod":
                created_at.setdefault(event.object["metadata"]["name"], time.monotonic())

        cluster.call(lambda store: store.listeners.append(record))
        reactions: list[float] = []
        before = len(requests_so_far(cluster))
        sampled = [f"job-{i}" for i in range(0, jobs, max(1, jobs // samples))][:samples]
        for name in sampled:
            t0 = time.monotonic()
            end_pod(cluster, NS, f"{name}-1", terminated(143))
            wait_until(lambda name=name: f"{name}-2" in created_at, timeout=30, what=f"{name}-2")
            reactions.append(created_at[f"{name}-2"] - t0)
            time.sleep(0.3)  # let the status write and the event land before the next one
        time.sleep(2)
        per_change = (len(requests_so_far(cluster)) - before) / len(sampled)
        operator_side = operator_reaction_mean_ms(operator)
        return {
            "jobs": jobs,
            "seconds_until_every_first_pod": round(all_started, 2),
            "seconds_waited_for_pods": round(running, 2),
            "operator_rss_mb": round(memory, 1),
            "idle_seconds_measured": idle_seconds,
            "idle_requests": idle_requests,
            "idle_request_lines": sorted({f"{r.method} {r.url.path}" for r in idle_log})[:20],
            "requests_per_idle_job_per_minute": round(idle_per_job_minute, 4),
            "reaction_samples": len(reactions),
            "reaction_p50_ms": round(statistics.median(reactions) * 1000, 1),
            "reaction_p99_ms": round(percentile(reactions, 99) * 1000, 1),
            "reaction_max_ms": round(max(reactions) * 1000, 1),
            "requests_per_state_change": round(per_change, 2),
            "operator_side_reaction_mean_ms": operator_side,
        }
    finally:
        if operator is not None:
            operator.stop()
        stop_cluster(cluster)


def main() -> int:
    """Run the benchmark for each job count and write ``bench/results/operator.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--samples", type=int, default=100, help="reactions measured per run")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="20 jobs, 20 samples, 5 s idle")
    parser.add_argument(
        "--workdir", type=Path, help="keep the clusters' files and operator logs here"
    )
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.samples, args.idle_seconds = [20], 20, 5.0
    results = []
    with tempfile.TemporaryDirectory(prefix="rekindle-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for jobs in args.jobs:
            print(f"measuring {jobs} jobs …", flush=True)
            results.append(run(jobs, args.samples, args.idle_seconds, workdir))
    goals = {
        "reaction_p99_ms_at_200_jobs": 250,
        "operator_rss_mb_at_1000_jobs": 250,
        "requests_per_idle_job_per_minute": 0,
    }
    path = write_result(
        "operator",
        {
            "description": "rekindle operator against the Python API emulator (tests/kube) on "
            "this machine; reaction = pod end written -> replacement pod exists",
            "goals": goals,
            "runs": results,
        },
    )
    print_table(
        "operator benchmark",
        ["jobs", "RSS MB", "idle req/job/min", "react p50 ms", "react p99 ms", "req/change"],
        [
            [
                r["jobs"],
                r["operator_rss_mb"],
                r["requests_per_idle_job_per_minute"],
                r["reaction_p50_ms"],
                r["reaction_p99_ms"],
                r["requests_per_state_change"],
            ]
            for r in results
        ],
    )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
