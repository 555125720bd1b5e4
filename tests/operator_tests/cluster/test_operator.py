"""The real ``rekindle operator`` process against the emulated cluster (``tests/kube``).

:class:`tests.support.operator_process.OperatorProcess` runs ``rekindle
operator`` with ``KUBECONFIG`` pointing at a :class:`tests.kube.cluster.Cluster`,
waits for kopf's liveness endpoint, and stops it with SIGTERM or kills it with
SIGKILL (an operator lost with its node). The helpers below make pods end the
way a kubelet would report it, by writing the pod's status, so each way an
attempt can end is reproduced exactly; the process kubelet's own end-to-end
runs are the e2e suite's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rekindle_operator.core import job_spec
from rekindle_operator.resources import pods
from rekindle_trainer import contract
from tests.kube.cluster import Cluster
from tests.support.operator_process import OperatorProcess, running_operator

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "charts" / "rekindle" / "crds" / "trainingjobs.rekindle.dev.yaml"
PEERING_CRDS = REPO / "charts" / "rekindle" / "crds" / "kopf-peering.yaml"


def install_crds(cluster: Cluster, *, peering: bool = False) -> None:
    """Declare the TrainingJob CRD (and kopf's peering CRDs) in the emulated cluster."""
    cluster.create(yaml.safe_load(CRD.read_text()))
    if peering:
        for doc in yaml.safe_load_all(PEERING_CRDS.read_text()):
            if doc:
                cluster.create(doc)


@contextlib.contextmanager
def emulated_cluster(folder: Path, namespace: str) -> Iterator[Cluster]:
    """A started emulated cluster with ``namespace`` and the TrainingJob CRD; stopped after."""
    cluster = Cluster(folder).start()
    try:
        cluster.ensure_namespace(namespace)
        install_crds(cluster)
        yield cluster
    finally:
        cluster.stop()


def training_job(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A TrainingJob manifest with a small valid spec, ``spec`` merged over it."""
    body: dict[str, Any] = {
        "image": "ghcr.io/rekindle-dev/trainer:0.1.0",
        "entrypoint": "rekindle_trainer.examples.digits:build",
        "training": {"epochs": 10},
        "restartPolicy": {"backoff": {"initialSeconds": 1, "maxSeconds": 1}},
    }
    body.update(spec)
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def terminated(
    exit_code: int,
    *,
    message: contract.TerminationMessage | None = None,
    reason: str = "Error",
    pod_reason: str | None = None,
    conditions: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A pod status whose trainer container terminated with ``exit_code``."""
    state: dict[str, Any] = {"exitCode": exit_code, "reason": reason}
    if message is not None:
        state["message"] = message.to_json()
    status: dict[str, Any] = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [{"name": "trainer", "state": {"terminated": state}}],
        "conditions": [dict(c) for c in conditions],
    }
    if pod_reason is not None:
        status["reason"] = pod_reason
    return status


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    """A pod status whose trainer container waits (image pull and config errors)."""
    return {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "trainer", "state": {"waiting": {"reason": reason, "message": message}}}
        ],
    }


def end_pod(cluster: Cluster, namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """Report a pod's state as its kubelet would: a write to its status."""
    cluster.patch("pods", namespace, name, {"status": dict(status)}, subresource="status")


def wait_status(
    cluster: Cluster, namespace: str, name: str, want: Mapping[str, Any], timeout: float = 30
) -> dict[str, Any]:
    """Wait until the job's status holds every key of ``want`` with that value."""

    def holds(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return all(status.get(k) == v for k, v in want.items())

    return cluster.wait_for(
        "trainingjobs", namespace, name, holds, timeout=timeout, what=f"status {dict(want)}"
    )


def condition(job: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    """The job's condition of ``type_``."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def succeeds_without_restarts(cluster: Cluster, namespace: str, name: str, pod: str) -> None:
    """End ``pod`` with exit 0; the job must be Succeeded, with no restart counted."""
    end_pod(cluster, namespace, pod, terminated(0))
    job = wait_status(cluster, namespace, name, {"phase": "Succeeded"})
    assert job["status"]["restarts"]["total"] == 0


def event_reasons(cluster: Cluster, job: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(type, reason) of every event about ``job``, oldest first."""
    return [(e["type"], e["reason"]) for e in cluster.events_for(job)]


def wait_event(
    cluster: Cluster, job: Mapping[str, Any], wanted: tuple[str, str], timeout: float = 10
) -> list[tuple[str, str]]:
    """Wait until an event (type, reason) about ``job`` exists (it follows the status write)."""
    deadline = time.monotonic() + timeout
    while True:
        reasons = event_reasons(cluster, job)
        if wanted in reasons:
            return reasons
        if time.monotonic() > deadline:
            raise TimeoutError(f"no event {wanted} within {timeout}s; events: {reasons}")
        time.sleep(0.05)


def trainer_pods(cluster: Cluster, namespace: str, job: str) -> list[str]:
    """Names of the pods that carry the job's label, sorted."""
    pods = cluster.list("pods", namespace, f"rekindle.dev/job={job}")
    return sorted(p["metadata"]["name"] for p in pods)


# ---------------------------------------------------------------------------
# One emulated cluster and one operator for the module; each test its own job.
# ---------------------------------------------------------------------------

NS = "ml"
Outcome = contract.Outcome


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with emulated_cluster(tmp_path_factory.mktemp("cluster"), NS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster.kubeconfig, log) as process:
        yield process


def start_job(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    """Create a job and wait for its first pod."""
    cluster.create(training_job(name, NS, **spec))
    cluster.wait_for("pods", NS, f"{name}-1", lambda _: True, what="the first pod")
    return cluster.get("trainingjobs", NS, name)


@dataclass(frozen=True)
class EndCase:
    """One way an attempt can end, and what the operator must write for it."""

    name: str
    pod_status: dict[str, Any] | None  # None: the pod is deleted by someone else
    phase: str
    reason: str
    event: tuple[str, str]
    restarts: dict[str, Any] | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    #: The ended pod still held its node, so the operator deleted it.
    pod_removed: bool = False
    status: dict[str, Any] = field(default_factory=dict)


END_CASES = [
    EndCase(
        "completed",
        terminated(0, message=contract.TerminationMessage(Outcome.COMPLETED, epoch=10, step=400)),
        phase="Succeeded",
        reason="Completed",
        event=("Normal", "Completed"),
        status={"currentEpoch": 10, "currentStep": 400},
    ),
    EndCase(
        "early-stopped",
        terminated(
            0,
            message=contract.TerminationMessage(
                Outcome.EARLY_STOPPED,
                epoch=6,
                step=240,
                best_metric=0.08,
                monitor="val_loss",
                best_epoch=4,
                early_stop_epoch=6,
                checkpoint="ckpt-000006-0000000240",
            ),
        ),
        phase="Succeeded",
        reason="EarlyStopped",
        event=("Normal", "EarlyStopped"),
        status={
            "earlyStopEpoch": 6,
            "bestMetric": {"name": "val_loss", "value": 0.08, "epoch": 4},
            "latestCheckpoint": "ckpt-000006-0000000240",
        },
    ),
    EndCase(
        "invalid",
        terminated(
            2,
            message=contract.TerminationMessage(
                Outcome.INVALID, error="training.epochs: expected an integer"
            ),
        ),
        phase="Failed",
        reason="InvalidConfig",
        event=("Warning", "Failed"),
    ),
    EndCase(
        "preempted",
        terminated(143, message=contract.TerminationMessage(Outcome.PREEMPTED, epoch=3, step=120)),
        phase="Pending",
        reason="AttemptStarted",
        event=("Normal", "Restarting"),
        restarts={"total": 1, "failures": 0, "disruptions": 1, "byCause": {"Preempted": 1}},
        status={"attempt": 2, "currentEpoch": 3},
    ),
    EndCase(
        "evicted",
        terminated(
            137,
            conditions=[
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "EvictionByEvictionAPI",
                    "message": "Eviction API: evicting",
                }
            ],
        ),
        phase="Pending",
        reason="AttemptStarted",
        event=("Normal", "Restarting"),
        restarts={"total": 1, "failures": 0, "disruptions": 1, "byCause": {"Evicted": 1}},
    ),
    EndCase(
        "node-lost",
        terminated(137, pod_reason="NodeLost"),
        phase="Pending",
        reason="AttemptStarted",
        event=("Normal", "Restarting"),
        restarts={"total": 1, "failures": 0, "disruptions": 1, "byCause": {"NodeLost": 1}},
    ),
    EndCase(
        "deleted",
        None,
        phase="Pending",
        reason="AttemptStarted",
        event=("Normal", "Restarting"),
        restarts={"total": 1, "failures": 0, "disruptions": 1, "byCause": {"Deleted": 1}},
    ),
    EndCase(
        "crashed",
        terminated(1, message=contract.TerminationMessage(Outcome.FAILED, error="boom")),
        phase="Pending",
        reason="AttemptStarted",
        event=("Warning", "Restarting"),
        restarts={"total": 1, "failures": 1, "disruptions": 0, "byCause": {"Crashed": 1}},
    ),
    EndCase(
        "oom-killed",
        terminated(137, reason="OOMKilled"),
        phase="Pending",
        reason="AttemptStarted",
        event=("Warning", "Restarting"),
        restarts={"total": 1, "failures": 1, "disruptions": 0, "byCause": {"OOMKilled": 1}},
    ),
    EndCase(
        "image-pull",
        waiting("ImagePullBackOff", "Back-off pulling image"),
        phase="Pending",
        reason="AttemptStarted",
        event=("Warning", "Restarting"),
        restarts={"total": 1, "failures": 1, "disruptions": 0, "byCause": {"ImagePullError": 1}},
        pod_removed=True,
    ),
    EndCase(
        "config-error",
        waiting("CreateContainerConfigError", 'secret "wandb" not found'),
        phase="Pending",
        reason="AttemptStarted",
        event=("Warning", "Restarting"),
        restarts={"total": 1, "failures": 1, "disruptions": 0, "byCause": {"ConfigError": 1}},
        pod_removed=True,
    ),
    EndCase(
        "max-restarts",
        terminated(1),
        phase="Failed",
        reason="MaxRestartsExceeded",
        event=("Warning", "Failed"),
        spec={"restartPolicy": {"maxRestarts": 0}},
    ),
    EndCase(
        "max-disruptions",
        terminated(143),
        phase="Failed",
        reason="MaxDisruptionsExceeded",
        event=("Warning", "Failed"),
        spec={"restartPolicy": {"maxDisruptions": 0}},
    ),
]

#: The condition that is True in each phase (Pending: none; Running is False).
PHASE_CONDITION = {"Succeeded": "Succeeded", "Failed": "Failed", "Pending": None}


@pytest.mark.slow
@pytest.mark.parametrize("case", END_CASES, ids=[c.name for c in END_CASES])
def test_each_way_an_attempt_ends_is_written_to_status_conditions_and_events(
    cluster: Cluster, operator: OperatorProcess, case: EndCase
) -> None:
    name = f"end-{case.name}"
    start_job(cluster, name, **case.spec)
    if case.pod_status is None:
        cluster.delete("pods", NS, f"{name}-1")
    else:
        end_pod(cluster, NS, f"{name}-1", case.pod_status)
    restarted = case.restarts is not None
    want = {"phase": case.phase, "reason": case.reason, **case.status}
    if restarted:
        want["attempt"] = 2
    job = wait_status(cluster, NS, name, want)
    status = job["status"]
    if restarted:
        assert status["restarts"] == case.restarts
        kept = case.pod_status is not None and not case.pod_removed
        expected = [f"{name}-1", f"{name}-2"] if kept else [f"{name}-2"]
        assert trainer_pods(cluster, NS, name) == expected
        assert status["lastAttemptEnd"]["attempt"] == 1
    else:
        assert cluster.find("pods", NS, f"{name}-2") is None
        assert status["completionTime"]
        assert status["restarts"]["total"] == 0
    wanted_condition = PHASE_CONDITION[case.phase]
    if wanted_condition is not None:
        cond = condition(job, wanted_condition)
        assert cond is not None
        assert (cond["status"], cond["reason"]) == ("True", case.reason)
    running = condition(job, "Running")
    assert running is not None
    assert running["status"] == "False"
    reasons = wait_event(cluster, job, case.event)
    assert reasons[0] == ("Normal", "AttemptStarted")
    if case.event[1] in ("Completed", "EarlyStopped", "Failed"):
        assert reasons[-1] == case.event


# ---------------------------------------------------------------------------
# What the operator creates, as stored by the API server.
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_created_pod_carries_every_field_the_builder_sets(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    overlay = {
        "resources": {"gpus": 2, "requests": {"cpu": "4"}, "limits": {"memory": "16Gi"}},
        "template": {
            "metadata": {"labels": {"team": "vision"}, "annotations": {"note": "x"}},
            "nodeSelector": {"gpu": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "priorityClassName": "training",
            "env": [{"name": "A", "value": "1"}],
        },
        "terminationGracePeriodSeconds": 300,
    }
    job = start_job(cluster, "fields", **overlay)
    stored = cluster.get("pods", NS, "fields-1")
    spec = job_spec.parse_spec(job["spec"])
    built = pods.build_pod(job, spec, 1, job_spec.trainer_document(spec))
    for key, value in built["metadata"].items():
        assert stored["metadata"][key] == value, key
    for key, value in built["spec"].items():
        if key != "containers":
            assert stored["spec"][key] == value, key
    [container] = stored["spec"]["containers"]
    for key, value in built["spec"]["containers"][0].items():
        assert container[key] == value, key
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert stored["spec"]["automountServiceAccountToken"] is False


@pytest.mark.slow
def test_checkpoint_claim_is_created_and_owned_unless_named_or_retained(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    owned = start_job(cluster, "claim-owned", checkpoint={"size": "2Gi"})
    claim = cluster.get("persistentvolumeclaims", NS, "claim-owned-checkpoints")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    [ref] = claim["metadata"]["ownerReferences"]
    assert ref["uid"] == owned["metadata"]["uid"]

    start_job(cluster, "claim-kept", checkpoint={"retainVolume": True})
    kept = cluster.get("persistentvolumeclaims", NS, "claim-kept-checkpoints")
    assert "ownerReferences" not in kept["metadata"]

    start_job(cluster, "claim-named", checkpoint={"volumeClaimName": "team-ckpt"})
    assert cluster.find("persistentvolumeclaims", NS, "claim-named-checkpoints") is None
    assert cluster.find("persistentvolumeclaims", NS, "team-ckpt") is None
    pod = cluster.get("pods", NS, "claim-named-1")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "team-ckpt"}


# ---------------------------------------------------------------------------
# Suspension, deadline, TTL, bad specs, foreign pods.
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_suspend_stops_the_pod_and_resume_starts_the_next_attempt(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    start_job(cluster, "pause")
    cluster.patch("trainingjobs", NS, "pause", {"spec": {"suspend": True}})
    cluster.wait_gone("pods", NS, "pause-1")
    job = wait_status(cluster, NS, "pause", {"phase": "Suspended", "reason": "Suspended"})
    cond = condition(job, "Suspended")
    assert cond is not None
    assert cond["status"] == "True"
    assert job["status"]["restarts"]["total"] == 0  # a stop on purpose is no disruption
    wait_event(cluster, job, ("Normal", "Suspended"))

    cluster.patch("trainingjobs", NS, "pause", {"spec": {"suspend": False}})
    cluster.wait_for("pods", NS, "pause-2", lambda _: True, what="the resumed attempt")
    job = wait_status(cluster, NS, "pause", {"phase": "Pending", "attempt": 2})
    assert job["status"]["restarts"]["total"] == 0
    wait_event(cluster, job, ("Normal", "Resumed"))


@pytest.mark.slow
def test_deadline_fails_the_job_and_stops_its_pod(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    start_job(cluster, "late", activeDeadlineSeconds=2)
    job = wait_status(cluster, NS, "late", {"phase": "Failed", "reason": "DeadlineExceeded"})
    cluster.wait_gone("pods", NS, "late-1")
    wait_event(cluster, job, ("Warning", "Failed"))


@pytest.mark.slow
def test_ttl_after_finished_deletes_the_job(cluster: Cluster, operator: OperatorProcess) -> None:
    start_job(cluster, "short-lived", ttlSecondsAfterFinished=1)
    end_pod(cluster, NS, "short-lived-1", terminated(0))
    cluster.wait_gone("trainingjobs", NS, "short-lived", timeout=30)


@pytest.mark.slow
def test_a_job_whose_pod_the_api_server_rejects_fails_with_its_reason(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    # The CRD rejects every template clash it can see; an admission webhook or a policy
    # engine can still refuse the pod: that is final, no retry makes it acceptable.
    cluster.ensure_namespace("guarded")
    cluster.emulator["post", "/api/v1/namespaces/guarded/pods"] << 422
    name = "refused"
    cluster.create(training_job(name, "guarded"))
    job = wait_status(cluster, "guarded", name, {"phase": "Failed", "reason": "CreateRefused"})
    assert "refused to create the pod of attempt 1 (Invalid)" in job["status"]["message"]
    refused = condition(job, "CreateRefused")
    assert refused is not None
    assert (refused["status"], refused["reason"]) == ("True", "Invalid")
    assert cluster.find("pods", "guarded", f"{name}-1") is None


@pytest.mark.slow
def test_pods_it_does_not_own_are_ignored(cluster: Cluster, operator: OperatorProcess) -> None:
    stranger = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "mine-1",
            "namespace": NS,
            "labels": {"app.kubernetes.io/name": "rekindle-trainer", "rekindle.dev/job": "mine"},
        },
        "spec": {"containers": [{"name": "trainer", "image": "busybox"}]},
    }
    cluster.create(stranger)
    cluster.create(training_job("mine", NS))
    job = wait_status(cluster, NS, "mine", {"phase": "Failed", "reason": "InvalidConfig"})
    assert "not owned by this TrainingJob" in job["status"]["message"]
    end_pod(cluster, NS, "mine-1", terminated(1))
    time.sleep(1)
    assert cluster.get("trainingjobs", NS, "mine")["status"]["restarts"]["total"] == 0
    assert cluster.find("pods", NS, "mine-2") is None
    assert cluster.find("pods", NS, "mine-1") is not None  # never deleted by the operator


# ---------------------------------------------------------------------------
# Metrics and liveness.
# ---------------------------------------------------------------------------


@pytest.mark.slow
def _preempted_restarts(text: str) -> float:
    """The operator's Preempted restarts counter in namespace NS (0 before the first)."""
    from rekindle_operator.core import metric_names

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric_names.RESTARTS and sample.labels == {
                "cause": "Preempted",
                "namespace": NS,
            }:
                return sample.value
    return 0.0


def test_metrics_and_liveness_are_served(cluster: Cluster, operator: OperatorProcess) -> None:
    from rekindle_operator.core import metric_names

    before = _preempted_restarts(operator.get("metrics", "/metrics")[1])  # other tests' jobs
    start_job(cluster, "counted")
    end_pod(cluster, NS, "counted-1", terminated(143))
    wait_status(cluster, NS, "counted", {"attempt": 2})
    deadline = time.monotonic() + 10
    while True:  # the counter moves just after the status is written
        code, text = operator.get("metrics", "/metrics")
        if _preempted_restarts(text) > before or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert code == 200
    assert _preempted_restarts(text) == before + 1
    for name in metric_names.OPERATOR_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert f'{metric_names.JOBS}{{namespace="{NS}",phase="Pending"}}' in text
    assert operator.get("liveness", "/healthz")[0] == 200


# ---------------------------------------------------------------------------
# Two replicas with kopf peering: one acts, the other takes over when it goes.
# ---------------------------------------------------------------------------


def peers(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    """The replicas a ClusterKopfPeering lists, by kopf identity (their keep-alives)."""
    found = cluster.find("clusterkopfpeerings", None, name)
    return dict((found or {}).get("status") or {})


def wait_peer(cluster: Cluster, name: str, priority: int, *, present: bool = True) -> None:
    """Wait until the peering lists (or no longer lists) a replica of ``priority``."""
    cluster.wait_for(
        "clusterkopfpeerings",
        None,
        name,
        lambda obj: (
            present
            == any(p.get("priority") == priority for p in (obj.get("status") or {}).values())
        ),
        timeout=20,
        what=f"the replica of priority {priority} {'in' if present else 'gone from'} the peering",
    )


@pytest.mark.slow
def test_with_peering_only_one_replica_acts_and_the_other_takes_over(tmp_path: Path) -> None:
    # kopf starts a replica with a mandatory peering already paused: the lower one never
    # logs "Pausing operations" (only a running replica that pauses does), it just stays
    # paused until the higher one's entry goes or expires.
    lifetime = 60  # cluster/lifecycle.py: settings.peering.lifetime
    cluster = Cluster(tmp_path / "cluster").start()
    replicas: list[OperatorProcess] = []
    try:
        cluster.ensure_namespace("peered")
        install_crds(cluster, peering=True)
        cluster.create(
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "rk"}}
        )
        for priority in (100, 50):
            args = ("-A", "--peering", "rk", "--priority", str(priority))
            log = tmp_path / f"operator-{priority}.log"
            replicas.append(OperatorProcess(cluster.kubeconfig, log, args).start())
            wait_peer(cluster, "rk", priority)  # the standby starts with the active listed
        active, standby = replicas
        assert "(blockers: rk@None)" in standby.log_text()

        cluster.create(training_job("shared", "peered"))
        cluster.wait_for("pods", "peered", "shared-1", lambda _: True)
        time.sleep(1)
        assert "Created pod shared-1" in active.log_text()
        assert "Resuming operations" in active.log_text()
        assert "Created pod" not in standby.log_text()
        assert "Resuming operations" not in standby.log_text()

        active.kill()  # SIGKILL: no goodbye; its entry stays until its lifetime runs out
        killed = time.monotonic()
        assert any(p["priority"] == 100 for p in peers(cluster, "rk").values())
        deadline = killed + lifetime + 15
        while "Resuming operations" not in standby.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Resuming operations" in standby.log_text()
        assert time.monotonic() - killed < lifetime + 5
        wait_peer(cluster, "rk", 100, present=False)  # the standby cleans the dead entry

        end_pod(cluster, "peered", "shared-1", terminated(143))
        job = wait_status(cluster, "peered", "shared", {"attempt": 2})
        assert job["status"]["restarts"]["total"] == 1
        assert "Created pod shared-2" in standby.log_text()
        assert cluster.find("pods", "peered", "shared-3") is None  # one replacement, not two
    finally:
        for replica in replicas:
            replica.stop()
            print(f"--- {replica.log} ---\n{replica.log_text()[-10000:]}")
        cluster.stop()
