"""Pod creates the API server refuses: a condition, a FailedCreate event, then retry or fail.

The real operator against the emulated API, whose admission hooks answer as a
ResourceQuota, Pod Security admission, a validating webhook or the API
server's own validation would (``tests/kube/admission.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube import admission
from tests.kube.cluster import Cluster
from tests.operator_tests.cluster import test_operator as base
from tests.support.operator_process import OperatorProcess

#: One emulated cluster and one operator for the module (the same fixtures as test_operator's).
cluster = base.cluster
operator = base.operator
NS = base.NS
FAST_BACKOFF = {"backoff": {"initialSeconds": 1, "maxSeconds": 2}}


def of_job(job: str) -> Any:
    return lambda obj: obj.get("metadata", {}).get("labels", {}).get("rekindle.dev/job") == job


@pytest.mark.slow
def test_a_quota_refusal_waits_without_failing_then_the_job_runs(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    quota = admission.refusing(
        "pods",
        403,
        "Forbidden",
        'pods "{name}" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1',
        when=of_job("quota"),
    )
    with admission.installed(cluster, quota):
        cluster.create(base.training_job("quota", NS, restartPolicy=FAST_BACKOFF))
        job = base.wait_status(
            cluster, NS, "quota", {"phase": "Pending", "reason": "CreateRefused"}
        )
        refused = base.condition(job, "CreateRefused")
        assert refused is not None
        assert (refused["status"], refused["reason"]) == ("True", "ExceededQuota")
        assert refused["message"].startswith('pods "quota-1" is forbidden: exceeded quota: gpus')
        assert ("Warning", "FailedCreate") in base.wait_event(
            cluster, job, ("Warning", "FailedCreate")
        )
        assert base.trainer_pods(cluster, NS, "quota") == []
        # Still refused after several retries: never a failure of the training.
        wait_event_count(cluster, job, "FailedCreate", 3)
        job = cluster.get("trainingjobs", NS, "quota")
        assert job["status"]["phase"] == "Pending"
        assert job["status"]["restarts"]["total"] == 0
    cluster.wait_for("pods", NS, "quota-1", lambda _: True, timeout=15, what="the pod, quota back")
    job = base.wait_status(cluster, NS, "quota", {"reason": "AttemptStarted", "attempt": 1})
    assert (base.condition(job, "CreateRefused") or {}).get("status") == "False"
    base.succeeds_without_restarts(cluster, NS, "quota", "quota-1")


def wait_event_count(cluster: Cluster, job: dict[str, Any], reason: str, count: int) -> None:
    """Wait until ``count`` events of ``reason`` were posted about the job."""
    cluster.wait_for(
        "trainingjobs",
        NS,
        job["metadata"]["name"],
        lambda _: sum(e["reason"] == reason for e in cluster.events_for(job)) >= count,
        timeout=20,
        what=f"{count} {reason} events",
    )


PERMANENT = [
    (
        "pod-security",
        403,
        'pods "{name}" is forbidden: violates PodSecurity "restricted:latest": '
        'hostPath volumes (volume "data")',
        "PodSecurity",
    ),
    (
        "webhook",
        400,
        'admission webhook "validate.gatekeeper.sh" denied the request: [team-label] '
        "you must provide labels: {{team}}",
        "AdmissionWebhook",
    ),
    ("invalid", 422, 'Pod "{name}" is invalid: spec.runtimeClassName: Not found', "Invalid"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "code", "message", "reason"), PERMANENT, ids=[c[0] for c in PERMANENT]
)
def test_a_permanent_refusal_fails_the_job_with_the_api_servers_message(
    cluster: Cluster, operator: OperatorProcess, name: str, code: int, message: str, reason: str
) -> None:
    hook = admission.refusing("pods", code, "Forbidden", message, when=of_job(name))
    with admission.installed(cluster, hook):
        cluster.create(base.training_job(name, NS))
        job = base.wait_status(cluster, NS, name, {"phase": "Failed", "reason": "CreateRefused"})
    said = message.format(name=f"{name}-1")
    assert job["status"]["message"].endswith(f"({reason}): {said}")
    refused = base.condition(job, "CreateRefused")
    assert refused is not None
    assert (refused["status"], refused["reason"], refused["message"]) == ("True", reason, said)
    failed = base.condition(job, "Failed")
    assert failed is not None
    assert (failed["status"], failed["reason"]) == ("True", "CreateRefused")
    assert base.wait_event(cluster, job, ("Warning", "FailedCreate"))[-1] == (
        "Warning",
        "FailedCreate",
    )
    assert base.trainer_pods(cluster, NS, name) == []
    assert job["status"]["attempt"] == 0
