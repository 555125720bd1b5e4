"""The soak's plan, by table: the draw is reproducible, fair and fits the run."""

from __future__ import annotations

import pytest

from tests.soak.plan import FaultKind, draw, expected_restarts, target_epoch

ALL = list(FaultKind)


def test_the_same_seed_draws_the_same_plan() -> None:
    one = draw(7, jobs=4, faults=12, kinds=ALL, max_per_job=4)
    assert one == draw(7, jobs=4, faults=12, kinds=ALL, max_per_job=4)
    assert one != draw(8, jobs=4, faults=12, kinds=ALL, max_per_job=4)


@pytest.mark.parametrize("seed", range(20))
def test_every_kind_appears_and_no_job_is_overloaded(seed: int) -> None:
    plan = draw(seed, jobs=20, faults=100, kinds=ALL, max_per_job=6)
    assert len(plan.faults) == 100
    assert {f.kind for f in plan.faults} == set(ALL)
    for job in range(20):
        mine = plan.of_job(job)
        assert len(mine) <= 6
        assert all(0 < f.at < 1 for f in mine)
        assert all(0 <= f.delay <= 0.5 for f in mine)


def test_too_many_faults_for_the_jobs_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="add jobs or lower the fault count"):
        draw(1, jobs=2, faults=13, kinds=ALL, max_per_job=6)


@pytest.mark.parametrize(
    ("at", "stop", "reached", "left", "expected"),
    [
        (0.5, 20, 0, 1, 8),  # half of the 17 epochs before the last three
        (0.5, 20, 0, 3, 2),  # half of its third of them
        (0.01, 20, 0, 1, 1),  # never epoch 0: a checkpoint of the attempt is needed
        (0.2, 20, 7, 1, 9),  # past the previous fault's checkpoint
        (0.9, 20, 12, 3, 13),  # a late previous fault leaves less room: shared anew
        (0.9, 20, 16, 2, 17),  # at least one epoch on
        (0.5, 20, 17, 1, None),  # no room left before the early stop
        (0.5, 4, 0, 1, 1),
        (0.5, 3, 0, 1, None),
    ],
)
def test_target_epoch(at: float, stop: int, reached: int, left: int, expected: int | None) -> None:
    assert target_epoch(at, stop_epoch=stop, reached=reached, left=left) == expected


def test_expected_restarts_count_every_pod_fault_and_not_the_operator() -> None:
    kinds = [FaultKind.SIGKILL, FaultKind.SIGKILL, FaultKind.OPERATOR_KILLED, FaultKind.EVICT]
    assert expected_restarts(kinds) == {"Crashed": 2, "Evicted": 1}
    assert expected_restarts([FaultKind.OPERATOR_KILLED]) == {}
