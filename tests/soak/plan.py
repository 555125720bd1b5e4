"""The chaos soak's plan: which fault hits which job, in what order, and what it must count.

Pure: drawing the plan from a seed, the epoch a fault waits for, and the
restarts a job must end with are decided here, so they are tested by table
and the driver (:mod:`tests.soak.driver`) only does what the plan says.
"""

from __future__ import annotations

import collections
import enum
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class FaultKind(enum.StrEnum):
    """What the soak does to a running job (or to the operator)."""

    SIGKILL = "sigkill"  # the trainer's process is killed: a crash
    PREEMPT = "preempt"  # DisruptionTarget PreemptionByScheduler, then a graceful delete
    EVICT = "evict"  # the Eviction API (a drain)
    DELETE = "delete"  # someone deletes the pod
    NODE_LOST = "node-lost"  # the pod's node vanishes
    STALL = "stall"  # the trainer is frozen (SIGSTOP): only the stall timeout notices
    OPERATOR_KILLED = "operator-killed"  # the operator dies and comes back: no restart counted


#: The restart cause each fault must be counted as (None: it is not a restart of the job).
EXPECTED_CAUSE: dict[FaultKind, str | None] = {
    FaultKind.SIGKILL: "Crashed",
    FaultKind.PREEMPT: "Preempted",
    FaultKind.EVICT: "Evicted",
    FaultKind.DELETE: "Deleted",
    FaultKind.NODE_LOST: "NodeLost",
    FaultKind.STALL: "Stalled",
    FaultKind.OPERATOR_KILLED: None,
}

#: A fault lands at least this many epochs before the early stop, so that the trainer
#: still trains when it lands (an epoch of the soak's jobs can take well under a second).
MARGIN_EPOCHS = 3

#: Faults after which the trainer saved (SIGTERM): they lose no step.
GRACEFUL = frozenset({FaultKind.PREEMPT, FaultKind.EVICT, FaultKind.DELETE})


@dataclass(frozen=True)
class Fault:
    """One fault: the ``job`` (index) it hits, when, and how.

    ``at`` is a point (0 to 1) in the fault's share of the run left: the fault
    waits for a checkpoint of that point written by the job's current attempt
    (see :func:`target_epoch`), then ``delay`` seconds, so that some faults
    land mid-epoch.
    """

    job: int
    kind: FaultKind
    at: float
    delay: float


@dataclass(frozen=True)
class Plan:
    """Every job's faults, in the order each job meets them."""

    seed: int
    jobs: int
    faults: tuple[Fault, ...]

    def of_job(self, job: int) -> list[Fault]:
        return [f for f in self.faults if f.job == job]

    def counts(self) -> dict[str, int]:
        """How many faults of each kind (for the printed table)."""
        return dict(sorted(collections.Counter(str(f.kind) for f in self.faults).items()))


def draw(
    seed: int,
    *,
    jobs: int,
    faults: int,
    kinds: Sequence[FaultKind],
    max_per_job: int,
    max_delay: float = 0.5,
) -> Plan:
    """Draw ``faults`` faults over ``jobs`` jobs from ``seed``.

    Every kind appears at least once when there are enough faults; no job gets
    more than ``max_per_job`` (each fault needs a checkpoint of its own attempt
    before the run's end, so a job holds only so many).
    """
    if jobs < 1 or faults < 0 or not kinds:
        raise ValueError("the soak needs at least one job and one fault kind")
    if faults > jobs * max_per_job:
        raise ValueError(
            f"{faults} faults do not fit {jobs} jobs of at most {max_per_job} faults each: "
            "add jobs or lower the fault count"
        )
    rng = random.Random(seed)
    drawn = list(kinds)[:faults] + [rng.choice(list(kinds)) for _ in range(faults - len(kinds))]
    rng.shuffle(drawn)
    load = [0] * jobs
    placed: list[Fault] = []
    for kind in drawn:
        job = rng.choice([j for j in range(jobs) if load[j] < max_per_job])
        load[job] += 1
        placed.append(Fault(job, kind, at=0.0, delay=round(rng.uniform(0, max_delay), 3)))
    return Plan(seed, jobs, tuple(_spread(placed, load, rng)))


def _spread(placed: list[Fault], load: list[int], rng: random.Random) -> Iterable[Fault]:
    """Give each fault its point within its own slice of the room left (see target_epoch)."""
    for job in range(len(load)):
        for fault in (f for f in placed if f.job == job):
            yield Fault(job, fault.kind, at=round(rng.uniform(0.1, 0.9), 3), delay=fault.delay)


def target_epoch(at: float, *, stop_epoch: int, reached: int, left: int) -> int | None:
    """The checkpoint epoch a fault waits for, or None when the run has no room left.

    The room is what lies between the newest checkpoint when the previous fault
    landed (``reached``) and two epochs before the early stop (so that the
    trainer is still training when the fault lands). It is shared among the
    ``left`` faults this job still meets, this one first: the fault waits for
    the point ``at`` of its own share, and at least one epoch past ``reached``.
    Sharing what is left (not the whole run) keeps room for the later faults
    when an earlier one landed late (an operator restart under load).
    """
    last = stop_epoch - MARGIN_EPOCHS
    share = (last - reached) / max(left, 1)
    target = reached + max(1, math.floor(at * share))
    return target if target <= last else None


def expected_restarts(kinds: Iterable[FaultKind]) -> dict[str, int]:
    """``status.restarts.byCause`` a job must end with after these faults landed."""
    counted = collections.Counter(
        cause for kind in kinds if (cause := EXPECTED_CAUSE[kind]) is not None
    )
    return dict(sorted(counted.items()))
