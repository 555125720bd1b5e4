"""A gang's pods and Service (``workers``, ``pods.build_pod(worker=…)``): names, DNS, TF_CONFIG."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from rekindle_operator.core.job_spec import TrainingJobSpec, parse_spec
from rekindle_operator.resources import ownership, pods, workers
from rekindle_trainer import contract
from rekindle_trainer.contract import gang

UID = "0b6f3c2e-5d1a-4c1e-9f3e-2f7a1c9d8e01"
CONFIG = {"entrypoint": "rekindle_trainer.examples.digits:build", "epochs": 5}
JOB = {
    "apiVersion": "rekindle.dev/v1alpha1",
    "kind": "TrainingJob",
    "metadata": {"name": "digits", "namespace": "ml", "uid": UID},
}


def spec(count: int, **overrides: Any) -> TrainingJobSpec:
    doc: dict[str, Any] = {
        "image": "ghcr.io/rekindle-dev/trainer:0.1.0",
        "entrypoint": "rekindle_trainer.examples.digits:build",
        "training": {"epochs": 5},
        "workers": count,
    }
    doc.update(overrides)
    return parse_spec(doc)


def env(pod: dict[str, Any]) -> dict[str, str]:
    [container] = pod["spec"]["containers"]
    return {item["name"]: item.get("value") for item in container["env"]}


def gang_pods(count: int, attempt: int = 3, **overrides: Any) -> list[dict[str, Any]]:
    s = spec(count, **overrides)
    return [pods.build_pod(JOB, s, attempt, CONFIG, worker=i) for i in range(count)]


@pytest.mark.parametrize(
    ("count", "index", "attempt", "name"),
    [
        (1, 0, 3, "digits-3"),  # one worker: the pod name of a job before gangs
        (2, 0, 3, "digits-3-w0"),
        (2, 1, 3, "digits-3-w1"),
        (64, 63, 12, "digits-12-w63"),
    ],
)
def test_worker_pod_names(count: int, index: int, attempt: int, name: str) -> None:
    assert ownership.worker_pod_name("digits", attempt, index, count) == name
    assert workers.Place("digits", "ml", index, count).pod_name(attempt) == name


def test_a_single_worker_pod_is_the_pod_of_before() -> None:
    s = spec(1)
    assert pods.build_pod(JOB, s, 3, CONFIG, worker=0) == pods.build_pod(JOB, s, 3, CONFIG)
    pod = pods.build_pod(JOB, s, 3, CONFIG)
    assert contract.ENV_TF_CONFIG not in env(pod)
    assert "hostname" not in pod["spec"]
    assert "subdomain" not in pod["spec"]
    assert ownership.LABEL_WORKER not in pod["metadata"]["labels"]


@pytest.mark.parametrize(("count", "index"), [(2, 2), (2, -1), (1, 1), (65, 0), (0, 0)])
def test_a_place_outside_the_gang_is_refused(count: int, index: int) -> None:
    with pytest.raises(ValueError, match="gang"):
        workers.Place("digits", "ml", index, count)


def test_hosts_are_the_workers_dns_names_under_the_headless_service() -> None:
    assert workers.hosts("digits", "ml", 3) == [
        "w0.digits-workers.ml.svc:2222",
        "w1.digits-workers.ml.svc:2222",
        "w2.digits-workers.ml.svc:2222",
    ]


@pytest.mark.parametrize("count", [2, 3])
def test_each_worker_gets_tf_config_with_the_whole_cluster_and_its_own_index(count: int) -> None:
    built = gang_pods(count)
    for index, pod in enumerate(built):
        doc = json.loads(env(pod)[contract.ENV_TF_CONFIG])
        assert doc == {
            "cluster": {"worker": workers.hosts("digits", "ml", count)},
            "task": {"type": "worker", "index": index},
        }
        assert gang.worker_role({contract.ENV_TF_CONFIG: env(pod)[contract.ENV_TF_CONFIG]}) == (
            gang.WorkerRole(index=index, count=count)
        )


def test_each_worker_is_reachable_by_its_hostname_in_the_services_subdomain() -> None:
    for index, pod in enumerate(gang_pods(2)):
        assert pod["spec"]["hostname"] == f"w{index}"
        assert pod["spec"]["subdomain"] == "digits-workers"
        host = workers.hosts("digits", "ml", 2)[index]
        assert host.startswith(f"{pod['spec']['hostname']}.{pod['spec']['subdomain']}.ml.svc:")


def test_gang_pods_carry_their_worker_index_and_the_attempts_labels() -> None:
    for index, pod in enumerate(gang_pods(2, attempt=5)):
        labels = pod["metadata"]["labels"]
        assert labels[ownership.LABEL_WORKER] == str(index)
        assert labels[ownership.LABEL_ATTEMPT] == "5"
        assert labels[ownership.LABEL_JOB] == "digits"
        assert env(pod)[contract.ENV_ATTEMPT] == "5"


def test_gang_pods_expose_the_collective_port_beside_the_metrics_port() -> None:
    [container] = gang_pods(2)[1]["spec"]["containers"]
    assert [p["name"] for p in container["ports"]] == [
        contract.METRICS_PORT_NAME,
        contract.WORKER_PORT_NAME,
    ]
    assert container["ports"][1]["containerPort"] == contract.DEFAULT_WORKER_PORT


def test_gang_pods_share_the_jobs_checkpoint_claim() -> None:
    claims = {p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] for p in gang_pods(3)}
    assert claims == {"digits-checkpoints"}


def test_template_env_may_not_set_tf_config_of_a_gang() -> None:
    with pytest.raises(pods.PodSpecError, match=r"spec\.template\.env\[0\]\.name: TF_CONFIG"):
        gang_pods(2, template={"env": [{"name": "TF_CONFIG", "value": "{}"}]})


def test_gang_pods_pass_the_kubernetes_schema() -> None:
    for pod in gang_pods(2):
        kubernetes_validate.validate(pod, "1.31.0", strict=True)


def test_the_service_is_headless_selects_the_attempts_pods_and_is_owned_by_the_job() -> None:
    service = workers.build_service(JOB, 4)
    assert service["metadata"]["name"] == "digits-workers"
    assert service["metadata"]["namespace"] == "ml"
    assert service["metadata"]["ownerReferences"] == [ownership.owner_reference(JOB)]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {
        "rekindle.dev/job": "digits",
        "rekindle.dev/attempt": "4",
    }
    assert service["spec"]["ports"][0]["port"] == contract.DEFAULT_WORKER_PORT
    kubernetes_validate.validate(service, "1.31.0", strict=True)


def test_the_service_selects_every_worker_of_its_attempt_and_no_other() -> None:
    selector = workers.build_service(JOB, 3)["spec"]["selector"]
    for pod in gang_pods(2, attempt=3):
        assert selector.items() <= pod["metadata"]["labels"].items()
    for pod in gang_pods(2, attempt=2):
        assert not selector.items() <= pod["metadata"]["labels"].items()


def test_the_service_is_moved_to_a_new_attempt_once() -> None:
    old = workers.build_service(JOB, 2)
    assert workers.selector_patch(old, "digits", 3) == {
        "spec": {"selector": {"rekindle.dev/job": "digits", "rekindle.dev/attempt": "3"}}
    }
    assert workers.selector_patch(workers.build_service(JOB, 3), "digits", 3) is None
