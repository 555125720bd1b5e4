"""Operator benchmark: memory, reaction time, API requests, on the emulated API.

``make bench-operator`` (``python -m bench.operator``) writes
``bench/results/operator.json`` and prints a table. For each job count (200
and 1,000 by default) it starts the emulated API (``tests/kube``) and the real
``rekindle operator`` process (as ``rekindle operator -A --standalone``, no
debug logging), creates the jobs, waits for every first pod, marks every pod
Running (as a kubelet would) and waits for every job to show it, then measures:

1. RSS of the operator process once every job runs (goal: < 250 MB at 1,000);
2. requests per idle job per minute: every API request the operator makes
   while nothing changes, watch streams excluded (goal: none, no polling).
   Every job is Running first: a pending pod would leave a pending-timeout
   requeue (``restartPolicy.pendingTimeoutSeconds``, 600 s) due after any
   short window, and zero requests in it would prove nothing. The JSON's
   ``idle_window`` says what the window covered;
3. reaction time, each one timed by the API store itself: from the moment the
   store recorded a pod's failed status (exit 143, as a preemption) to the
   moment it recorded the replacement pod's creation. Failures are injected
   at a fixed rate (``--rate``, default 5 per second) that the emulator
   serves with room to spare, each job failing once (goal: p99 < 250 ms at
   200 jobs);
4. API requests per job per state change during those reactions;
5. the emulator's own service time, so that a slow emulator is not read as a
   slow operator: the time the store spends on each write the operator makes
   (p50, p99), and the HTTP round trip of a plain GET from this process.

No kubelet runs: pods are never started as processes. The benchmark itself
plays the kubelet and only writes pod statuses, since the operator is what is
measured. Every figure is measured on this machine (shared, 2 cores; the load
average is recorded) against an emulator written in Python: a real API server
is faster. ``--quick`` runs a small smoke version.

Each goal's verdict ("met", "not met", "not resolved (...)", "not measured
(...)") is computed from the figures by ``bench/verdicts.py`` and written to
the JSON and the table.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import cProfile
import datetime
import functools
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tests.kube.cluster import Cluster
from tests.kube.store import PODS, Store, WatchEvent
from tests.support.operator_process import OperatorProcess

from bench import verdicts
from bench.common import print_table, write_result
from rekindle_operator.core import job_spec
from rekindle_operator.resources.pods import CONTAINER_NAME

NS = "bench"
CRD = Path(__file__).resolve().parents[1] / "charts/rekindle/crds/trainingjobs.rekindle.dev.yaml"
#: A pod's status as its kubelet writes it when the trainer is killed (a preemption).
PREEMPTED: dict[str, Any] = {
    "phase": "Failed",
    "containerStatuses": [
        {"name": CONTAINER_NAME, "state": {"terminated": {"exitCode": 143, "reason": "Error"}}}
    ],
    "conditions": [],
}
#: The goals set at one job count: (figure, job count, limit).
GOALS_AT_JOBS = (("reaction_p99_ms", 200, 250.0), ("operator_rss_mb", 1000, 250.0))
#: The store methods that serve a request (timed to tell the emulator's cost apart).
SERVED = ("create", "patch", "replace", "delete", "find", "list_body")


def training_job(name: str) -> dict[str, Any]:
    """A small valid TrainingJob (one-second backoff, so a replacement is due at once)."""
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "image": "ghcr.io/rekindle-dev/trainer:0.1.0",
            "entrypoint": "rekindle_trainer.examples.digits:build",
            "training": {"epochs": 10},
            "restartPolicy": {"backoff": {"initialSeconds": 1, "maxSeconds": 1}},
        },
    }


def running_status(now: datetime.datetime) -> dict[str, Any]:
    """A pod's status as its kubelet writes it once the trainer container runs."""
    stamp = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "phase": "Running",
        "startTime": stamp,
        "containerStatuses": [
            {
                "name": CONTAINER_NAME,
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": stamp}},
            }
        ],
        "conditions": [],
    }


def pending_timeout_seconds() -> float:
    """The jobs' ``restartPolicy.pendingTimeoutSeconds``, as the operator parses it."""
    spec = job_spec.parse_spec(training_job("probe")["spec"])
    return float(spec.restart_policy.pending_timeout_seconds)


def longest_requeue_seconds(
    phases: collections.Counter[str], pending_timeout: float
) -> float | None:
    """The longest delay after which the operator reconciles one of these idle jobs by itself.

    A Running job with no ``activeDeadlineSeconds`` and no TTL (the benchmark
    sets neither) has no timer: the engine waits for a change (None). Any
    other job may have one, at most the pending timeout (the backoff is 1 s).
    """
    return None if set(phases) == {"Running"} else pending_timeout


def job_phases(cluster: Cluster) -> collections.Counter[str]:
    """How many of the benchmark's jobs are in each ``status.phase`` (``-`` for none yet)."""
    jobs = cluster.list("trainingjobs", NS)
    return collections.Counter((j.get("status") or {}).get("phase") or "-" for j in jobs)


def mark_running(cluster: Cluster, pods: list[str]) -> None:
    """Write every pod's status as Running, as the kubelet does once the container starts."""
    status = running_status(datetime.datetime.now(datetime.UTC))

    def write(store: Store) -> None:
        for pod in pods:
            store.set_pod_status(NS, pod, status)

    cluster.call(write)


def emulator_floor_ms(run: dict[str, Any]) -> float:
    """The emulated API's own p99 in a run: its HTTP GET round trip or its store's service time.

    A reaction includes at least one such round trip, so a reaction p99 is not
    the operator's alone when the emulator's own p99 is as long as the goal.
    """
    return float(max(run["emulator_http_get_p99_ms"], run["emulator_store_service_p99_ms"]))


def goal_verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each goal with the figure it is judged on and its verdict, from the runs' figures.

    Pure. A goal set at a job count is judged on the run at that count only
    ("not measured" without one); the reaction against that run's emulator
    floor (:func:`emulator_floor_ms`); the idle goal on every run, each run's
    idle verdict already knowing whether its window was long enough.
    """
    floors = {r["jobs"]: emulator_floor_ms(r) for r in runs}
    goals: list[dict[str, Any]] = []
    for key, jobs, limit in GOALS_AT_JOBS:
        by_jobs = {r["jobs"]: r[key] for r in runs}
        judge: Callable[[float, float], str] = verdicts.below
        goal: dict[str, Any] = {"goal": f"{key} < {limit:g} at {jobs} jobs"}
        if key == "reaction_p99_ms" and jobs in floors:
            judge = functools.partial(verdicts.latency_below, floor=floors[jobs])
            goal["emulator_p99_floor_ms"] = floors[jobs]
        goal["measured"] = by_jobs.get(jobs)
        goal["verdict"] = verdicts.at_jobs(by_jobs, jobs, limit, judge)
        goals.append(goal)
    goals.append(
        {
            "goal": "requests_per_idle_job_per_minute = 0 at every job count",
            "measured": {r["jobs"]: r["requests_per_idle_job_per_minute"] for r in runs},
            "verdict": verdicts.combined(r["idle_verdict"] for r in runs),
        }
    )
    return goals


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class RequestLog:
    """The requests the emulated API served, moved out of kmock's log as they come.

    kmock matches each request to a reaction by scanning its whole request log
    (``request in payload._source`` iterates every request ever served), so
    serving costs grow with the number of requests so far: over a benchmark
    of thousands of requests that, not the operator, dominated every reaction.
    Moving the served requests out every 50 ms keeps that scan short. A request
    is matched synchronously right after it is logged (no await in between),
    so moving it later cannot hide it from the matching.
    """

    served: list[Any] = field(default_factory=list)

    async def drain(self, cluster: Cluster) -> None:
        """Move kmock's logged requests here, forever (cancel to stop)."""
        log = cluster.emulator._requests
        while True:
            self.served.extend(log)
            log.clear()
            await asyncio.sleep(0.05)

    def count(self, cluster: Cluster) -> int:
        """Requests served so far, watch streams excluded (drains first, on the loop)."""
        return len(self.so_far(cluster))

    def so_far(self, cluster: Cluster) -> list[Any]:
        """Every request served so far, watch streams excluded."""

        def take(_: Store) -> list[Any]:
            self.served.extend(cluster.emulator._requests)
            cluster.emulator._requests.clear()
            return list(self.served)

        return [r for r in cluster.call(take) if r.params.get("watch") != "true"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for the report."""
    return round(seconds * 1000, 1)


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


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` (cheap, no API request) until true; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


@dataclass
class StoreClock:
    """What the API store saw and when, recorded by a listener on its event loop.

    The moments are the store's own (``time.monotonic`` right after each
    write), so a reaction is timed at the API, not at this process's polling.
    """

    pod_created: dict[str, float] = field(default_factory=dict)
    pod_failed: dict[str, float] = field(default_factory=dict)
    jobs_at_attempt_1: set[str] = field(default_factory=set)
    jobs_running: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: WatchEvent) -> None:
        """Record one change (called synchronously by the store)."""
        now = time.monotonic()
        obj = event.object
        name = obj.get("metadata", {}).get("name", "")
        with self.lock:
            if event.resource == PODS:
                if event.type == "ADDED":
                    self.pod_created.setdefault(name, now)
                elif (obj.get("status") or {}).get("phase") == "Failed":
                    self.pod_failed.setdefault(name, now)
            elif obj.get("kind") == "TrainingJob":
                status = obj.get("status") or {}
                if status.get("attempt") == 1:
                    self.jobs_at_attempt_1.add(name)
                    if status.get("phase") == "Running":
                        self.jobs_running.add(name)

    def count(self, what: str) -> int:
        """Pods created (``created``), jobs at attempt 1 (``jobs``), Running in it (``running``)."""
        seen = {
            "created": self.pod_created,
            "jobs": self.jobs_at_attempt_1,
            "running": self.jobs_running,
        }
        with self.lock:
            return len(seen[what])


@dataclass
class ServiceTimer:
    """Time every store call that serves a request; ``active`` limits it to a window."""

    seconds: list[float] = field(default_factory=list)
    active: bool = False

    def install(self, store: Store) -> None:
        """Wrap the store's serving methods on this instance (the emulator calls them)."""
        for name in SERVED:
            setattr(store, name, self._timed(getattr(store, name)))

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                if self.active:
                    self.seconds.append(time.perf_counter() - started)

        return timed


def http_round_trips(cluster: Cluster, path: str, count: int) -> list[float]:
    """Seconds for each of ``count`` plain GETs of ``path`` on the emulated API."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{cluster.url}{path}", timeout=30) as response:
            response.read()
        times.append(time.perf_counter() - started)
    return times


def measure_idle(
    cluster: Cluster, requests: RequestLog, jobs: int, idle_seconds: float
) -> dict[str, Any]:
    """The API requests the operator makes while no job changes, and what the window covered.

    Called once every job is Running: then the operator has no timed requeue
    due (see :func:`longest_requeue_seconds`), and a window of any length
    shows polling if there is any. The phases are read at both ends to show it.
    """
    phases_before = job_phases(cluster)
    before_idle = requests.count(cluster)
    time.sleep(idle_seconds)
    idle_log = requests.so_far(cluster)[before_idle:]
    phases_after = job_phases(cluster)
    pending_timeout = pending_timeout_seconds()
    longest = longest_requeue_seconds(phases_before, pending_timeout)
    covers = (
        "every timed requeue the operator had due"
        if longest is None or idle_seconds > longest
        else f"not the operator's {longest:g} s requeue"
    )
    return {
        "idle_seconds_measured": idle_seconds,
        "idle_window": {
            "seconds": idle_seconds,
            "pods_marked_running": True,
            "job_phases_at_start": dict(phases_before),
            "job_phases_at_end": dict(phases_after),
            "pending_timeout_seconds": pending_timeout,
            "longest_requeue_seconds": longest,
            "covers": covers,
        },
        "idle_requests": len(idle_log),
        "idle_request_lines": sorted({f"{r.method} {r.url.path}" for r in idle_log})[:20],
        "requests_per_idle_job_per_minute": round(len(idle_log) / jobs / (idle_seconds / 60), 4),
        "idle_verdict": verdicts.idle_requests(len(idle_log), idle_seconds, longest),
    }


def measure_reactions(
    cluster: Cluster,
    measured: tuple[StoreClock, ServiceTimer, RequestLog],
    jobs: int,
    samples: int,
    rate: float,
) -> dict[str, Any]:
    """Inject one preemption into ``samples`` jobs at ``rate`` per second; time the reactions."""
    clock, timer, requests = measured
    sampled = [f"job-{i}" for i in range(0, jobs, max(1, jobs // samples))][:samples]
    before = requests.count(cluster)
    timer.active = True
    injected = time.monotonic()
    for index, name in enumerate(sampled):
        delay = injected + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        cluster.patch("pods", NS, f"{name}-1", {"status": PREEMPTED}, subresource="status")
    replaced = [f"{name}-2" for name in sampled]
    wait_until(
        lambda: all(pod in clock.pod_created for pod in replaced),
        60 + samples / rate,
        f"{len(replaced)} replacement pods",
    )
    time.sleep(2)  # let the status writes and events land
    timer.active = False
    per_change = (requests.count(cluster) - before) / len(sampled)
    reactions = [clock.pod_created[f"{name}-2"] - clock.pod_failed[f"{name}-1"] for name in sampled]
    served = timer.seconds
    return {
        "failures_injected_per_second": rate,
        "reaction_samples": len(reactions),
        "reaction_p50_ms": ms(statistics.median(reactions)),
        "reaction_p99_ms": ms(percentile(reactions, 99)),
        "reaction_max_ms": ms(max(reactions)),
        "requests_per_state_change": round(per_change, 2),
        "emulator_store_service_p50_ms": ms(statistics.median(served)),
        "emulator_store_service_p99_ms": ms(percentile(served, 99)),
        "emulator_store_calls_timed": len(served),
    }


def run(
    jobs: int,
    samples: int,
    rate: float,
    idle_seconds: float,
    workdir: Path,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Measure one job count; the figures."""
    load_before = os.getloadavg()
    cluster = Cluster(workdir / f"cluster-{jobs}").start()
    operator: OperatorProcess | None = None
    profiler = cProfile.Profile() if profile is not None else None
    clock, timer, requests = StoreClock(), ServiceTimer(), RequestLog()
    draining: concurrent.futures.Future[None] | None = None
    try:
        cluster.ensure_namespace(NS)
        cluster.create(yaml.safe_load(CRD.read_text()))
        cluster.call(lambda store: store.listeners.append(clock))
        cluster.call(timer.install)
        draining = asyncio.run_coroutine_threadsafe(requests.drain(cluster), cluster.loop)
        if profiler is not None:
            cluster.call(lambda _: profiler.enable())  # profiles the emulator's thread only
        operator = OperatorProcess(cluster.kubeconfig, workdir / f"operator-{jobs}.log")
        operator.argv.remove("--verbose")  # debug logs cost the operator; production runs without
        operator.start()
        assert operator.process is not None

        started = time.monotonic()
        for index in range(jobs):
            cluster.create(training_job(f"job-{index}"))
        created = time.monotonic() - started
        limit = 120 + jobs * 1.0
        wait_until(lambda: clock.count("created") >= jobs, limit, f"{jobs} first pods")
        all_started = time.monotonic() - started
        wait_until(lambda: clock.count("jobs") >= jobs, limit, "every status at attempt 1")
        mark_running(cluster, [f"job-{index}-1" for index in range(jobs)])
        wait_until(lambda: clock.count("running") >= jobs, limit, "every job Running")
        time.sleep(2)  # events and the last writes settle
        memory = rss_mb(operator.process.pid)
        idle = measure_idle(cluster, requests, jobs, idle_seconds)
        gets = http_round_trips(
            cluster, f"/apis/rekindle.dev/v1alpha1/namespaces/{NS}/trainingjobs/job-0", 50
        )
        reactions = measure_reactions(cluster, (clock, timer, requests), jobs, samples, rate)
        return {
            "jobs": jobs,
            "seconds_to_create_jobs": round(created, 2),
            "seconds_until_every_first_pod": round(all_started, 2),
            "operator_rss_mb": round(memory, 1),
            **idle,
            **reactions,
            "operator_side_reaction_mean_ms": operator_reaction_mean_ms(operator),
            "emulator_http_get_p50_ms": ms(statistics.median(gets)),
            "emulator_http_get_p99_ms": ms(percentile(gets, 99)),
            "load_average_1m_before_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
        }
    finally:
        if draining is not None:
            draining.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError):
                draining.exception(timeout=5)
        if profiler is not None and profile is not None:
            cluster.call(lambda _: profiler.disable())
            profiler.dump_stats(profile)
        if operator is not None:
            operator.stop()
        try:
            cluster.stop(timeout=10)
        except (
            TimeoutError
        ) as exc:  # a watch handler that cannot close says nothing of the operator
            print(f"warning: emulated cluster did not stop cleanly: {exc}")


def print_report(results: list[dict[str, Any]], goals: list[dict[str, Any]]) -> None:
    """The runs' table and the goals' verdicts."""
    print_table(
        "operator benchmark (emulated API, no kubelet: the benchmark writes pod statuses)",
        [
            "jobs",
            "RSS MB",
            "idle req/job/min",
            "react p50 ms",
            "react p99 ms",
            "req/change",
            "store p50/p99 ms",
            "GET p50 ms",
            "load 1m",
            "idle verdict",
        ],
        [
            [
                r["jobs"],
                r["operator_rss_mb"],
                r["requests_per_idle_job_per_minute"],
                r["reaction_p50_ms"],
                r["reaction_p99_ms"],
                r["requests_per_state_change"],
                f"{r['emulator_store_service_p50_ms']}/{r['emulator_store_service_p99_ms']}",
                r["emulator_http_get_p50_ms"],
                "/".join(map(str, r["load_average_1m_before_after"])),
                r["idle_verdict"],
            ]
            for r in results
        ],
    )
    print_table(
        "goals (verdicts computed from the figures by bench/verdicts.py)",
        ["goal", "measured", "verdict"],
        [[g["goal"], g["measured"], g["verdict"]] for g in goals],
    )


def main() -> int:
    """Run the benchmark for each job count and write ``bench/results/operator.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--samples", type=int, default=100, help="reactions measured per run")
    parser.add_argument("--rate", type=float, default=5.0, help="failures injected per second")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="20 jobs, 20 samples, 5 s idle")
    parser.add_argument(
        "--workdir", type=Path, help="keep the clusters' files and operator logs here"
    )
    parser.add_argument(
        "--profile-emulator", type=Path, help="write cProfile stats of the emulator's thread here"
    )
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.samples, args.idle_seconds = [20], 20, 5.0
    results = []
    with tempfile.TemporaryDirectory(prefix="rekindle-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for jobs in args.jobs:
            print(f"measuring {jobs} jobs …", flush=True)
            profile = args.profile_emulator
            if profile is not None and len(args.jobs) > 1:
                profile = profile.with_name(f"{profile.stem}-{jobs}{profile.suffix}")
            results.append(run(jobs, args.samples, args.rate, args.idle_seconds, workdir, profile))
    goals = goal_verdicts(results)
    path = write_result(
        "operator",
        {
            "description": "rekindle operator against the Python API emulator (tests/kube) on "
            "this machine (2 shared cores); no kubelet: pods never run, the benchmark writes "
            "their statuses (Running, then Failed for each injected preemption); reaction = "
            "the store's record of a pod's failed status -> its record of the replacement "
            "pod's creation",
            "cpu_count": os.cpu_count(),
            "goals": goals,
            "runs": results,
        },
    )
    print_report(results, goals)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
