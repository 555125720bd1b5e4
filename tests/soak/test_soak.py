"""The short chaos soak in ``make test``: three jobs, ten faults, every promise checked.

``make soak`` runs the long one (20 jobs, 100 faults; docs/benchmarks.md).
Here the seed is fixed and every fault kind appears, so a regression in any
of them fails this test with the job, the faults and the broken promise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.emulated import EmulatedCluster
from tests.soak.driver import Soak, totals
from tests.soak.plan import FaultKind, draw

SEED = 2026
KINDS = [
    FaultKind.SIGKILL,
    FaultKind.PREEMPT,
    FaultKind.EVICT,
    FaultKind.DELETE,
    FaultKind.NODE_LOST,
    FaultKind.STALL,
    FaultKind.OPERATOR_KILLED,
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedCluster]:
    emulated = EmulatedCluster(Path(tmp_path_factory.mktemp("soak"))).start()
    try:
        yield emulated
    finally:
        emulated.stop()
        print(f"--- operator log (tail) ---\n{emulated.operator_log_text()[-20000:]}")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a loaded 2-core machine; about 3 minutes on a quiet one
def test_short_soak_every_job_ends_as_the_uninterrupted_run(cluster: EmulatedCluster) -> None:
    plan = draw(SEED, jobs=3, faults=10, kinds=KINDS, max_per_job=4)
    soak = Soak(cluster, plan, parallel=3, spec={})
    reference = soak.reference()
    results = soak.run(reference)
    figures = totals(results)
    report = {r.name: (r.landed, r.no_room, r.problems) for r in results}
    assert all(not r.problems for r in results), report
    assert figures["faults_without_room"] == 0, report
    assert sum(figures["faults_landed"].values()) == 10
    assert set(figures["faults_landed"]) == {k.value for k in KINDS}
    assert soak.operator_kills == figures["faults_landed"].get("operator-killed", 0)
