"""The chaos soak on the emulated cluster: many jobs, random faults, every promise checked.

One fault-free job gives the reference (its early-stop epoch and final
weights); then the planned jobs run, a few at a time, each meeting its faults
in order (:mod:`tests.soak.plan`). A pod fault waits for a checkpoint written
by the job's current attempt, lands, and is released only when the operator
has started the next attempt, so that an operator kill (which takes every
pod fault's lock) never hides one. Each job must end as the reference did,
bitwise, with its restarts by cause equal to the faults that landed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.e2e import manifests
from tests.e2e.backend import wait_until
from tests.e2e.emulated import EmulatedCluster
from tests.soak import plan
from tests.soak.plan import GRACEFUL, Fault, FaultKind, Plan, expected_restarts, target_epoch

#: One job's run, faults and restarts included, on a loaded 2-core machine.
JOB_TIMEOUT = 900.0
#: What every soak job changes in the scenario manifest: room for every fault.
SOAK_SPEC: dict[str, Any] = {
    # The example's own pace (early stop near epoch 48, not the scenarios' 18): on a
    # quiet machine an epoch takes well under a second, and faults need room.
    "training": {"epochs": 60, "hyperparameters": {"learningRate": 0.001}},
    "earlyStopping": {"minDelta": 0.001},
    # A frozen trainer (the stall fault) is noticed within about 30 s once the operator
    # saw it step, or 120 s after its attempt began running if it never did (an epoch
    # can take under a second here, faster than the operator's reads), and killed after
    # the grace period; a healthy one steps many times a second.
    "restartPolicy": {
        "maxRestarts": 30,
        "backoff": {"initialSeconds": 1, "maxSeconds": 2},
        "stallTimeoutSeconds": 20,
        "firstStepTimeoutSeconds": 120,
    },
    "terminationGracePeriodSeconds": 15,
}
CLAIM_OF = "{job}-checkpoints"
FINAL = frozenset({"Succeeded", "Failed"})
#: A fault lands only this many epochs or more before the early stop (see plan.target_epoch).
MARGIN_EPOCHS = plan.MARGIN_EPOCHS


class SharedExclusive:
    """Pod faults hold it shared; an operator kill holds it alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._alone = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._alone)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._alone and self._shared == 0)
            self._alone = True
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()


@dataclass(frozen=True)
class Reference:
    """The fault-free run every soak job must end as."""

    stop_epoch: int
    best: dict[str, Any]
    model_sha256: str
    checkpoint: str
    steps_per_epoch: int


@dataclass
class JobResult:
    """What one job did and how it ended."""

    name: str
    planned: list[Fault]
    landed: list[FaultKind] = field(default_factory=list)
    no_room: list[FaultKind] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    volume: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


class Soak:
    """Runs a :class:`~tests.soak.plan.Plan` on a started emulated cluster."""

    def __init__(
        self, cluster: EmulatedCluster, plan: Plan, *, parallel: int, spec: dict[str, Any]
    ) -> None:
        self.cluster = cluster
        self.plan = plan
        self.parallel = parallel
        self.spec = manifests.merge(SOAK_SPEC, spec)
        self.lock = SharedExclusive()
        self.operator_kills = 0
        self.killers: list[threading.Thread] = []

    # --- running -------------------------------------------------------------------------

    def reference(self) -> Reference:
        """The fault-free job, run alone."""
        name = "soak-reference"
        self.cluster.apply(manifests.digits(name, self.cluster.trainer_image, **self.spec))
        status = self._finished(name)
        final = _final(self.cluster.volume_report(CLAIM_OF.format(job=name), name))
        return Reference(
            stop_epoch=int(status["earlyStopEpoch"]),
            best=status["bestMetric"],
            model_sha256=final["model_sha256"],
            checkpoint=final["name"],
            steps_per_epoch=max(1, int(final["step"]) // max(1, int(final["epoch"]))),
        )

    def run(self, reference: Reference) -> list[JobResult]:
        """Every planned job, ``parallel`` at a time; each result is checked."""
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            futures = [
                pool.submit(self._job, f"soak-{n}", self.plan.of_job(n), reference)
                for n in range(self.plan.jobs)
            ]
            results = [f.result() for f in futures]
        for killer in self.killers:
            killer.join()
        for result in results:
            result.problems += check(result, reference)
        return results

    def _job(self, name: str, faults: list[Fault], reference: Reference) -> JobResult:
        result = JobResult(name, faults)
        started = time.monotonic()
        self.cluster.apply(manifests.digits(name, self.cluster.trainer_image, **self.spec))
        reached = 0
        try:
            for n, fault in enumerate(faults):
                target = target_epoch(
                    fault.at,
                    stop_epoch=reference.stop_epoch,
                    reached=reached,
                    left=len(faults) - n,
                )
                if target is None:
                    log(f"{name}: no room for {fault.kind}, the newest checkpoint is {reached}")
                landed = target is not None and self._fault(
                    name, fault, target, reference.stop_epoch
                )
                (result.landed if landed else result.no_room).append(fault.kind)
                reached = max(reached, self._newest_epoch(name))
            result.status = self._finished(name)
        except (TimeoutError, AssertionError) as exc:
            result.problems.append(f"{type(exc).__name__}: {exc}")
            result.status = (self.cluster.get("trainingjobs", name) or {}).get("status") or {}
        result.volume = self.cluster.volume_report(CLAIM_OF.format(job=name), name)
        result.seconds = time.monotonic() - started
        return result

    def _fault(self, name: str, fault: Fault, target: int, stop_epoch: int) -> bool:
        """Wait for the attempt's checkpoint of ``target``, then inject; False: no room left."""
        attempt = self._attempt_with_checkpoint(name, target, stop_epoch)
        if attempt is None:
            return False
        time.sleep(fault.delay)
        if fault.kind is FaultKind.OPERATOR_KILLED:
            # In the background: it waits until no pod fault is in flight on any job,
            # and this job's next fault must not wait for that while its trainer runs on.
            killer = threading.Thread(target=self._kill_operator, args=(fault.delay,))
            killer.start()
            self.killers.append(killer)
            return True
        pod = f"{name}-{attempt}"
        with self.lock.shared():
            if not self._still_training(name, attempt, stop_epoch):
                log(f"{name}: no room for {fault.kind}, it ran on while the operator was away")
                return False
            self._inject(fault.kind, pod)
            log(f"{fault.kind} {pod} (waited for epoch {target})")
            status = self.cluster.wait_job(
                name,
                lambda job: _next_or_final(job, attempt),
                timeout=JOB_TIMEOUT,
                what=f"the attempt after {fault.kind} of {pod}",
            ).get("status", {})
        if int(status.get("attempt") or 0) <= attempt:
            if self.cluster.termination(pod).get("exitCode") == 0:
                log(f"{name}: {fault.kind} of {pod} came after its trainer had finished")
                return False
            raise AssertionError(
                f"{fault.kind} of {pod} was not counted: the job ended {status.get('phase')} "
                f"at attempt {status.get('attempt')}, restarts {status.get('restarts')}"
            )
        return True

    def _kill_operator(self, delay: float) -> None:
        """Kill the operator while no pod fault is in flight; start it again after a while."""
        with self.lock.alone():
            self.cluster.kill_operator()
            log("operator killed")
            time.sleep(1.0 + delay)
            self.cluster.start_operator()
            log("operator started")
            self.operator_kills += 1

    def _still_training(self, name: str, attempt: int, stop_epoch: int) -> bool:
        """Whether ``attempt`` still runs, short of the last epochs (checked before a fault)."""
        status = (self.cluster.get("trainingjobs", name) or {}).get("status") or {}
        if status.get("phase") in FINAL or int(status.get("attempt") or 0) != attempt:
            return False
        return self._newest_epoch(name) <= stop_epoch - MARGIN_EPOCHS

    def _attempt_with_checkpoint(self, name: str, target: int, stop_epoch: int) -> int | None:
        """The running attempt once it published a checkpoint of ``target``.

        None when the run has no room left: the job ended, or the attempt is
        already within MARGIN_EPOCHS of the early stop (a fault could land after it).
        """
        no_room = -1

        def ready() -> int | None:
            status = (self.cluster.get("trainingjobs", name) or {}).get("status") or {}
            if status.get("phase") in FINAL:
                log(f"{name}: no room for epoch {target}, the job ended {status.get('phase')}")
                return no_room
            attempt = int(status.get("attempt") or 0)
            report = self.cluster.volume_report(CLAIM_OF.format(job=name), name)
            mine = [
                c.get("epoch") or 0 for c in report["checkpoints"] if c.get("attempt") == attempt
            ]
            if not attempt or not mine or max(mine) < target:
                return None
            if max(mine) > stop_epoch - MARGIN_EPOCHS:
                log(f"{name}: no room for epoch {target}, attempt {attempt} is at {max(mine)}")
                return no_room
            return attempt

        found = wait_until(ready, JOB_TIMEOUT, f"{name}: a checkpoint of epoch {target}")
        return None if found == no_room else found

    def _inject(self, kind: FaultKind, pod: str) -> None:
        node, ns, wait = self.cluster.node, self.cluster.namespace, "--wait=false"
        actions: dict[FaultKind, Callable[[], object]] = {
            FaultKind.SIGKILL: lambda: self.cluster.crash(pod),
            FaultKind.PREEMPT: lambda: self.cluster.preempt(pod),
            FaultKind.EVICT: lambda: node.evict(ns, pod),
            FaultKind.DELETE: lambda: self.cluster.kubectl.run("delete", "pod", pod, wait),
            FaultKind.NODE_LOST: lambda: node.lose_node(ns, pod),
            FaultKind.STALL: lambda: node.kill(ns, pod, signal.SIGSTOP),
        }
        actions[kind]()

    def _newest_epoch(self, name: str) -> int:
        report = self.cluster.volume_report(CLAIM_OF.format(job=name), name)
        return max((c.get("epoch") or 0 for c in report["checkpoints"]), default=0)

    def _finished(self, name: str) -> dict[str, Any]:
        def ended(job: dict[str, Any]) -> bool:
            return (job.get("status") or {}).get("phase") in FINAL

        job = self.cluster.wait_job(name, ended, timeout=JOB_TIMEOUT, what="the job's end")
        status: dict[str, Any] = job.get("status") or {}
        return status


def log(text: str) -> None:
    """One line of the soak's progress, stamped (the operator's log is in its own file)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def _next_or_final(job: dict[str, Any], attempt: int) -> bool:
    status = job.get("status") or {}
    return int(status.get("attempt") or 0) > attempt or status.get("phase") in FINAL


# --- checking ------------------------------------------------------------------------------


def _final(volume: dict[str, Any]) -> dict[str, Any]:
    good = [c for c in volume.get("checkpoints", []) if "corrupt" not in c]
    return good[-1] if good else {}


def _parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def goodput_gap(goodput: dict[str, Any]) -> float:
    """|productive + every badput - (through - since)|, seconds: 0 when the account adds up."""
    wall = (_parse(goodput["through"]) - _parse(goodput["since"])).total_seconds()
    badput = sum(float(v) for v in goodput["badputSeconds"].values())
    return abs(float(goodput["productiveSeconds"]) + badput - wall)


def check(result: JobResult, reference: Reference) -> list[str]:
    """Every promise the soak checks for one job; the broken ones, worded."""
    status, final = result.status, _final(result.volume)
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    expect(
        (status.get("phase"), status.get("reason")) == ("Succeeded", "EarlyStopped"),
        f"ended {status.get('phase')}/{status.get('reason')}: {status.get('message')}",
    )
    expect(
        status.get("earlyStopEpoch") == reference.stop_epoch,
        f"early stop at {status.get('earlyStopEpoch')}, the reference at {reference.stop_epoch}",
    )
    expect(status.get("bestMetric") == reference.best, f"best {status.get('bestMetric')}")
    expect(
        final.get("model_sha256") == reference.model_sha256,
        f"final weights differ from the reference ({final.get('name')})",
    )
    corrupt = [c["name"] for c in result.volume.get("checkpoints", []) if "corrupt" in c]
    quarantined = [e for e in result.volume.get("entries", []) if e.startswith(".corrupt-")]
    expect(not corrupt and not quarantined, f"corrupt checkpoints: {corrupt + quarantined}")
    by_cause = (status.get("restarts") or {}).get("byCause") or {}
    expect(
        by_cause == expected_restarts(result.landed),
        f"restarts {by_cause}, faults landed {expected_restarts(result.landed)}",
    )
    hard = sum(1 for kind in result.landed if kind not in GRACEFUL)
    lost = int(status.get("lostSteps") or 0)
    expect(
        lost <= hard * 2 * reference.steps_per_epoch,
        f"{lost} steps lost for {hard} hard faults of at most two epochs each",
    )
    goodput = status.get("goodput")
    expect(
        goodput is not None and goodput_gap(goodput) < 1.0,
        f"goodput does not add up to the wall time: {goodput}",
    )
    return problems


def totals(results: list[JobResult]) -> dict[str, Any]:
    """The soak's figures: faults landed by kind, restarts counted, jobs that held."""
    landed = collections.Counter(str(k) for r in results for k in r.landed)
    counted: collections.Counter[str] = collections.Counter()
    for result in results:
        counted.update((result.status.get("restarts") or {}).get("byCause") or {})
    return {
        "jobs": len(results),
        "jobs_ok": sum(1 for r in results if not r.problems),
        "faults_landed": dict(sorted(landed.items())),
        "faults_without_room": sum(len(r.no_room) for r in results),
        "restarts_counted": dict(sorted(counted.items())),
        "max_job_seconds": round(max((r.seconds for r in results), default=0.0), 1),
    }
