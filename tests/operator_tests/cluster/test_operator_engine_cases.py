"""The real operator obeys the shared engine table (``tests/support/engine_cases.py``).

Every row in which an attempt's pod ended is played against the emulated API:
while no operator runs, each row gets its own namespace with the job, the
row's status before and the row's pod (owned by the job, as the operator
would have created it); then one operator starts, and for rows whose pod was
deleted the pod is deleted while it watches. Each row's job must end up with
the status, conditions and event the row says, as the engine's own test and
the local runner's agree.

Times are the real clock's here, not the row's: the fields that are
timestamps are checked for presence, every other field for its value.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rekindle_operator.core.engine import Action
from rekindle_operator.resources import ownership
from tests.kube.cluster import Cluster
from tests.kube.store import ApiError
from tests.operator_tests.cluster.test_operator import install_crds
from tests.support import engine_cases
from tests.support.engine_cases import CASES, EngineCase, Expected
from tests.support.operator_process import OperatorProcess

#: What an attempt's end leads to (rows that only wait or start are the engine's and runner's).
ENDING_ACTIONS = {Action.SUCCEED, Action.FAIL, Action.RESTART, Action.RESTART_AFTER}
#: Rows the emulated API cannot express, and why.
NOT_EXPRESSIBLE: dict[str, str] = {}
#: The node every row's pod is bound to; a row whose pod's node is gone sees it deleted.
NODE = "gpu-node-1"
ROWS = [
    c
    for c in CASES
    if c.ending is not None
    and c.ending.pod is not None
    and c.expect.action in ENDING_ACTIONS
    and c.name not in NOT_EXPRESSIBLE
]
#: Status fields whose value is a time: the real clock's here, so only their presence is checked.
TIME_FIELDS = {"completionTime", "nextAttemptTime", "lastAttemptStartTime", "startTime"}


def namespace_of(case: EngineCase) -> str:
    return f"row-{CASES.index(case)}"


def _pod_for(case: EngineCase, job: dict[str, Any]) -> dict[str, Any]:
    """The row's pod, in the row's namespace, owned by the job as the operator makes it."""
    assert case.ending is not None
    assert case.ending.pod is not None
    pod = copy.deepcopy(case.ending.pod.pod)
    meta = pod["metadata"]
    meta["namespace"] = job["metadata"]["namespace"]
    meta["labels"][ownership.LABEL_APP] = ownership.TRAINER_APP
    meta["ownerReferences"] = [ownership.owner_reference(job)]
    for server_set in ("uid", "creationTimestamp", "deletionTimestamp"):
        meta.pop(server_set, None)
    return pod


def _running(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as it was before its end: running, its other conditions kept."""
    before = copy.deepcopy(pod)
    before["status"]["phase"] = "Running"
    for container in before["status"]["containerStatuses"]:
        container["state"] = {"running": {"startedAt": engine_cases.ts(engine_cases.T0)}}
    return before


@dataclasses.dataclass
class Played:
    """The cluster after every row was played, and the first status the operator wrote for each."""

    cluster: Cluster
    first_status: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    """Every row set up while no operator runs; then one operator reacts to all of them."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster")).start()
    operator: OperatorProcess | None = None
    try:
        install_crds(cluster)
        cluster.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
        gone: list[tuple[EngineCase, dict[str, Any]]] = []
        vanished: list[tuple[EngineCase, dict[str, Any]]] = []
        for case in ROWS:
            assert case.ending is not None
            assert case.ending.pod is not None
            namespace = namespace_of(case)
            cluster.ensure_namespace(namespace)
            manifest = {
                "apiVersion": "rekindle.dev/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": engine_cases.JOB, "namespace": namespace},
                "spec": case.spec_document,
            }
            job = cluster.create(manifest)
            cluster.patch(
                "trainingjobs",
                namespace,
                engine_cases.JOB,
                {"status": case.before},
                subresource="status",
            )
            pod = _pod_for(case, job)
            if case.ending.pod.gone:
                gone.append((case, pod))
                pod = _running(pod)
            if case.ending.pod.node_exists is False:
                vanished.append((case, pod))
            cluster.create(pod)
            cluster.patch(
                "pods",
                namespace,
                pod["metadata"]["name"],
                {"status": pod["status"]},
                subresource="status",
            )
        log = tmp_path_factory.mktemp("operator") / "operator.log"
        operator = OperatorProcess(cluster.kubeconfig, log).start()
        _wait_reconciled(operator, [namespace_of(case) for case, _ in gone + vanished])
        for case, pod in gone:  # deleted under the operator's eyes, ending as the row says
            namespace, name = namespace_of(case), pod["metadata"]["name"]
            cluster.delete("pods", namespace, name)
            with contextlib.suppress(ApiError):
                cluster.patch(
                    "pods", namespace, name, {"status": pod["status"]}, subresource="status"
                )
                cluster.delete("pods", namespace, name, grace_period_seconds=0)
        if vanished:  # the node goes once every other row has ended with it there
            gone_nodes = {case.name for case, _ in vanished}
            _first_statuses(cluster, [c for c in ROWS if c.name not in gone_nodes])
            cluster.delete("nodes", None, NODE)
            for case, pod in vanished:  # a change to the pod wakes the operator
                patch = {"metadata": {"annotations": {"test/node": "deleted"}}}
                cluster.patch("pods", namespace_of(case), pod["metadata"]["name"], patch)
        yield Played(cluster, _first_statuses(cluster, ROWS))
    finally:
        if operator is not None:
            operator.stop()
            print(f"--- operator log ---\n{operator.log_text()[-30000:]}")
        cluster.stop()


def _wait_reconciled(operator: OperatorProcess, namespaces: list[str], timeout: float = 30) -> None:
    """Wait until the operator has reconciled the jobs in ``namespaces`` (its phase gauge says)."""
    deadline = time.monotonic() + timeout
    while True:
        text = operator.get("metrics", "/metrics")[1]
        if all(f'namespace="{ns}"' in text for ns in namespaces):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator did not reconcile {namespaces} within {timeout}s")
        time.sleep(0.1)


def _first_statuses(
    cluster: Cluster, rows: list[EngineCase], timeout: float = 60
) -> dict[str, dict[str, Any]]:
    """For each row, the first status the operator wrote (its job's history: no race)."""
    first: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(first) < len(rows) and time.monotonic() < deadline:
        for case in rows:
            if case.name in first:
                continue
            seen_before = False  # the states before the row's status was written do not count
            for state in cluster.history("trainingjobs", namespace_of(case), engine_cases.JOB):
                status = state.get("status") or {}
                same = all(status.get(k) == case.before.get(k) for k in ("phase", "lastAttemptEnd"))
                if seen_before and not same:
                    first[case.name] = status
                    break
                seen_before = seen_before or (same and bool(status))
        time.sleep(0.05)
    time.sleep(1.0)  # the events follow the status writes
    return first


def _without_times(expect: Expected) -> tuple[Expected, list[str]]:
    """The expectation with time-valued fields dropped, and the names of those fields."""
    fields: dict[str, Any] = {}
    timed: list[str] = []
    for key, value in expect.fields.items():
        if key in TIME_FIELDS:
            timed.append(key)
        elif isinstance(value, dict) and "time" in value:
            fields[key] = {k: v for k, v in value.items() if k != "time"}
        else:
            fields[key] = value
    return dataclasses.replace(expect, fields=fields), timed


def _mismatches(case: EngineCase, played: Played) -> list[str]:
    expect, timed = _without_times(case.expect)
    if case.name not in played.first_status:
        return ["the operator wrote no status for this row"]
    doc = dict(played.first_status[case.name])
    job = played.cluster.get("trainingjobs", namespace_of(case), engine_cases.JOB)
    for key, value in expect.fields.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {k: v for k, v in doc[key].items() if k in value}
    problems = expect.status_mismatches(doc)
    problems += [f"{key} is not set" for key in timed if not doc.get(key)]
    events = [(e["type"], e["reason"], e["message"]) for e in played.cluster.events_for(job)]
    return problems + expect.event_mismatches(events)


@pytest.mark.slow
@pytest.mark.parametrize("case", ROWS, ids=[c.name for c in ROWS])
def test_the_operator_writes_what_the_engine_table_says(played: Played, case: EngineCase) -> None:
    problems = _mismatches(case, played)
    assert not problems, f"{case.name} ({case.why}): " + "; ".join(problems)
    attempt = case.expect.attempt
    names = {p["metadata"]["name"] for p in played.cluster.list("pods", namespace_of(case))}
    if case.expect.action is Action.RESTART:
        assert f"{engine_cases.JOB}-{attempt}" in names  # the replacement exists
    elif case.expect.action in (Action.SUCCEED, Action.FAIL):
        assert f"{engine_cases.JOB}-{attempt + 1}" not in names


def test_every_row_with_a_pod_end_is_played_or_says_why_not() -> None:
    with_pods = {c.name for c in CASES if c.ending is not None and c.ending.pod is not None}
    played = {c.name for c in ROWS}
    waits = {c.name for c in CASES if c.expect.action not in ENDING_ACTIONS}
    assert with_pods - played - waits == set(NOT_EXPRESSIBLE)
