"""Live progress benchmark: status writes, operator CPU and RSS with many running trainers.

``make bench-progress`` (``python -m bench.progress``) writes
``bench/results/progress.json`` and prints a table. It starts the emulated API
(``tests/kube``, no kubelet) and the real ``rekindle operator`` process, creates
``--jobs`` running TrainingJobs (1,000 by default) plus idle ones (a tenth:
suspended, pending, and finished), and stands in for every trainer with a stub
``GET /progress`` on its own port (``REKINDLE_TRAINER_ADDRESS_DIR`` tells the
operator where each pod answers). Each stub trains at a fixed pace: a step
every ``1/steps-per-second`` s, an epoch (and a checkpoint) every
``--epoch-seconds``, each job offset so that epochs do not end together.
Then, over a ``--window-seconds`` window:

1. status writes per second, and per running job per minute (goal: at most
   the policy's bound, :meth:`LivePolicy.writes_per_minute`);
2. the operator's CPU (user + system seconds per second) and its RSS at the end;
3. reads of idle and finished jobs' stubs (goal: none);
4. jobs whose ``status.currentEpoch`` lags their stub's epoch of 30 s before
   the window's end (goal: none: an epoch end is in the status within 30 s).

The goals' verdicts come from ``bench/verdicts.py``. ``--quick`` runs 20 jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from tests.kube.cluster import Cluster
from tests.kube.store import Store
from tests.support.operator_process import OperatorProcess

from bench import verdicts
from bench.common import print_table, write_result
from bench.operator import CRD, NS, RequestLog, rss_mb, running_status, training_job, wait_until
from rekindle_operator.cluster.live import ENV_ADDRESS_DIR
from rekindle_operator.core.live_progress import LivePolicy
from rekindle_trainer.contract.live import PROGRESS_PATH, LiveCheckpoint, LiveProgress

#: An epoch end must be in the status within this many seconds.
LAG_GOAL_SECONDS = 30.0


@dataclass(frozen=True)
class Pace:
    """How fast every stub trains; job ``index`` starts ``index * spread`` s into an epoch."""

    epoch_seconds: float
    steps_per_second: float
    jobs: int

    def offset(self, index: int) -> float:
        """Seconds job ``index`` is ahead of the first (epochs end spread over one epoch)."""
        return self.epoch_seconds * index / max(self.jobs, 1)

    def epoch_at(self, index: int, elapsed: float) -> int:
        """Epochs job ``index`` has finished ``elapsed`` s after the stubs started."""
        return int((elapsed + self.offset(index)) // self.epoch_seconds)

    def document(self, index: int, elapsed: float, started: datetime.datetime) -> LiveProgress:
        """What job ``index``'s trainer serves at ``elapsed``."""
        epoch = self.epoch_at(index, elapsed)
        steps = int((elapsed + self.offset(index)) * self.steps_per_second)
        per_epoch = int(self.epoch_seconds * self.steps_per_second)
        saved = started + datetime.timedelta(seconds=epoch * self.epoch_seconds)
        checkpoint = (
            LiveCheckpoint(name=f"ckpt-{epoch}-{epoch * per_epoch}", time=saved) if epoch else None
        )
        return LiveProgress(
            attempt=1,
            phase="training",
            epoch=epoch,
            step=steps,
            steps_this_attempt=steps,
            checkpoint=checkpoint,
            saves=epoch,
        )


def lagging(pace: Pace, shown: dict[int, int], elapsed: float) -> list[int]:
    """Jobs whose status shows fewer epochs than their trainer had :data:`LAG_GOAL_SECONDS` ago."""
    then = max(elapsed - LAG_GOAL_SECONDS, 0.0)
    return sorted(i for i, epoch in shown.items() if epoch < pace.epoch_at(i, then))


@dataclass
class Stubs:
    """Every job's stub ``/progress``, one port each, on one event loop in a thread."""

    pace: Pace
    reads: dict[int, int] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    _loop: asyncio.AbstractEventLoop | None = None

    def start(self, indices: list[int]) -> None:
        """Listen for each of ``indices`` (free ports), in a daemon thread."""
        ready = threading.Event()
        self.started = time.monotonic()
        wall = datetime.datetime.now(datetime.UTC)

        def handler(index: int) -> Callable[[web.Request], Any]:
            async def serve(_: web.Request) -> web.Response:
                self.reads[index] = self.reads.get(index, 0) + 1
                doc = self.pace.document(index, time.monotonic() - self.started, wall)
                return web.Response(text=doc.to_json(), content_type="application/json")

            return serve

        async def main() -> None:
            for index in indices:
                app = web.Application()
                app.router.add_get(PROGRESS_PATH, handler(index))
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0, backlog=16)
                await site.start()
                server = site._server
                assert server is not None
                self.ports[index] = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ready.set()
            await asyncio.Event().wait()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(main())

        threading.Thread(target=run, daemon=True).start()
        if not ready.wait(300):
            raise TimeoutError("the stubs did not start")

    def elapsed(self) -> float:
        """Seconds since the stubs started training."""
        return time.monotonic() - self.started


def publish(address_dir: Path, stubs: Stubs, index: int) -> None:
    """Point job ``index``'s first pod at its stub."""
    path = address_dir / NS / f"job-{index}-1"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"127.0.0.1:{stubs.ports[index]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_statuses(cluster: Cluster, statuses: dict[str, dict[str, Any]]) -> None:
    """Write pod statuses as a kubelet would."""

    def write(store: Store) -> None:
        for pod, status in statuses.items():
            store.set_pod_status(NS, pod, status)

    cluster.call(write)


def shown_epochs(cluster: Cluster, running: int) -> dict[int, int]:
    """``status.currentEpoch`` of each running job."""
    shown = {}
    for job in cluster.list("trainingjobs", NS):
        name = job["metadata"]["name"]
        index = int(name.rsplit("-", 1)[1])
        if index < running:
            shown[index] = (job.get("status") or {}).get("currentEpoch", 0)
    return shown


def finished_status() -> dict[str, Any]:
    """A pod whose trainer completed."""
    return {
        "phase": "Succeeded",
        "containerStatuses": [
            {"name": "trainer", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ],
        "conditions": [],
    }


def prepare(cluster: Cluster, stubs: Stubs, address_dir: Path, running: int, idle: int) -> None:
    """Create the jobs; pods of running and finished ones are marked so; idle ones stay put."""
    total = running + idle
    for index in range(total):
        job = training_job(f"job-{index}")
        if index >= running and (index - running) % 3 == 0:
            job["spec"]["suspend"] = True  # idle: no pod at all
        cluster.create(job)
    for index in range(total):
        publish(address_dir, stubs, index)
    with_pods = [i for i in range(total) if not (i >= running and (i - running) % 3 == 0)]
    names = {f"job-{i}-1" for i in with_pods}
    wait_until(
        lambda: names <= {p["metadata"]["name"] for p in cluster.list("pods", NS)},
        120 + total,
        "every first pod",
    )
    now = datetime.datetime.now(datetime.UTC)
    statuses = {}
    for index in with_pods:
        if index < running or (index - running) % 3 == 2:  # finished ones run first
            statuses[f"job-{index}-1"] = {**running_status(now), "podIP": "10.0.0.1"}
        # (index - running) % 3 == 1: pending, never marked
    set_statuses(cluster, statuses)


def finish(cluster: Cluster, stubs: Stubs, running: int, idle: int) -> list[int]:
    """End the finished jobs' pods once each was read; wait until each job is Succeeded."""
    ending = [i for i in range(running, running + idle) if (i - running) % 3 == 2]
    limit = 120 + running + idle
    wait_until(lambda: all(stubs.reads.get(i, 0) for i in ending), limit, "finished jobs read")
    set_statuses(cluster, {f"job-{i}-1": finished_status() for i in ending})
    names = {f"job-{i}" for i in ending}

    def succeeded() -> bool:
        jobs = cluster.list("trainingjobs", NS)
        done = {j["metadata"]["name"] for j in jobs if (j.get("status") or {}).get("phase")}
        return names <= {
            j["metadata"]["name"]
            for j in jobs
            if j["metadata"]["name"] in done and j["status"]["phase"] == "Succeeded"
        }

    wait_until(succeeded, limit, "finished jobs Succeeded")
    return ending


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One measured run; the figures."""
    running, idle = args.jobs, max(args.jobs // 10, 3)
    pace = Pace(args.epoch_seconds, args.steps_per_second, running)
    address_dir = workdir / "addresses"
    stubs = Stubs(pace)
    stubs.start(list(range(running + idle)))
    cluster = Cluster(workdir / "cluster").start()
    requests = RequestLog()
    os.environ[ENV_ADDRESS_DIR] = str(address_dir)
    operator = OperatorProcess(cluster.kubeconfig, workdir / "operator.log")
    operator.argv.remove("--verbose")
    del os.environ[ENV_ADDRESS_DIR]
    try:
        cluster.ensure_namespace(NS)
        cluster.create(yaml.safe_load(CRD.read_text()))
        asyncio.run_coroutine_threadsafe(requests.drain(cluster), cluster.loop)
        operator.start()
        assert operator.process is not None
        prepare(cluster, stubs, address_dir, running, idle)
        finished = finish(cluster, stubs, running, idle)
        wait_until(
            lambda: sum(1 for e in shown_epochs(cluster, running).values() if e) >= running // 2,
            120 + running,
            "half the running jobs showing an epoch",
        )
        time.sleep(args.epoch_seconds)  # settle: every job has been read
        pid = operator.process.pid
        idle_reads_before = sum(stubs.reads.get(i, 0) for i in range(running, running + idle))
        reads_before = sum(stubs.reads.get(i, 0) for i in range(running))
        before, cpu_before, started = requests.count(cluster), cpu_seconds(pid), time.monotonic()
        time.sleep(args.window_seconds)
        window = time.monotonic() - started
        served = requests.so_far(cluster)[before:]
        cpu = cpu_seconds(pid) - cpu_before
        shown = shown_epochs(cluster, running)
        late = lagging(pace, shown, stubs.elapsed())
        writes = [r for r in served if r.method == "PATCH" and r.url.path.endswith("/status")]
        idle_reads = sum(stubs.reads.get(i, 0) for i in range(running, running + idle))
        reads = sum(stubs.reads.get(i, 0) for i in range(running)) - reads_before
        return {
            "running_jobs": running,
            "idle_jobs": idle,
            "epoch_seconds": args.epoch_seconds,
            "window_seconds": round(window, 1),
            "status_writes": len(writes),
            "status_writes_per_second": round(len(writes) / window, 2),
            "status_writes_per_job_per_minute": round(len(writes) / running / (window / 60), 3),
            "api_requests_per_second": round(len(served) / window, 2),
            "progress_reads_per_second": round(reads / window, 1),
            "operator_cpu_seconds_per_second": round(cpu / window, 3),
            "operator_rss_mb": round(rss_mb(pid), 1),
            "idle_and_finished_job_reads": idle_reads - idle_reads_before,
            "finished_jobs": len(finished),
            "finished_job_reads_while_they_ran": idle_reads_before,
            "jobs_lagging_over_30s": len(late),
            "lagging_examples": late[:10],
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        operator.stop()
        try:
            cluster.stop(timeout=10)
        except TimeoutError as exc:
            print(f"warning: emulated cluster did not stop cleanly: {exc}")


def goal_verdicts(figures: dict[str, Any], policy: LivePolicy) -> list[dict[str, Any]]:
    """Each goal with its figure and verdict (pure)."""
    bound = policy.writes_per_minute()
    return [
        {
            "goal": f"status_writes_per_job_per_minute <= {bound:g} (the policy's bound)",
            "measured": figures["status_writes_per_job_per_minute"],
            "verdict": verdicts.at_most(figures["status_writes_per_job_per_minute"], bound),
        },
        {
            "goal": "idle_and_finished_job_reads = 0",
            "measured": figures["idle_and_finished_job_reads"],
            "verdict": verdicts.at_most(figures["idle_and_finished_job_reads"], 0),
        },
        {
            "goal": "jobs_lagging_over_30s = 0 (an epoch end in the status within "
            f"{LAG_GOAL_SECONDS:g} s)",
            "measured": figures["jobs_lagging_over_30s"],
            "verdict": verdicts.at_most(figures["jobs_lagging_over_30s"], 0),
        },
    ]


def main() -> int:
    """Measure and write ``bench/results/progress.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="running jobs")
    parser.add_argument("--epoch-seconds", type=float, default=60.0)
    parser.add_argument("--steps-per-second", type=float, default=5.0)
    parser.add_argument("--window-seconds", type=float, default=120.0)
    parser.add_argument("--quick", action="store_true", help="20 jobs, 10 s epochs, 40 s window")
    parser.add_argument("--workdir", type=Path, help="keep the cluster's files and operator log")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.epoch_seconds, args.window_seconds = 20, 10.0, 40.0
    with tempfile.TemporaryDirectory(prefix="rekindle-bench-") as tmp:
        figures = run(args, args.workdir or Path(tmp))
    goals = goal_verdicts(figures, LivePolicy())
    path = write_result(
        "progress",
        {
            "description": "rekindle operator reading stub trainers' GET /progress, against the "
            "Python API emulator (tests/kube), no kubelet; default LivePolicy",
            "cpu_count": os.cpu_count(),
            "goals": goals,
            "run": figures,
        },
    )
    print_table("Live progress", ["figure", "value"], sorted(figures.items()))
    print_table("Goals", ["goal", "measured", "verdict"], [list(g.values()) for g in goals])
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
