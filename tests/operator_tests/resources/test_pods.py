"""The trainer pod, field by field (``pods.build_pod``)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from rekindle_operator.core.job_spec import TrainingJobSpec, parse_spec
from rekindle_operator.resources import pods
from rekindle_trainer import contract

UID = "0b6f3c2e-5d1a-4c1e-9f3e-2f7a1c9d8e01"
CONFIG = {"entrypoint": "rekindle_trainer.examples.digits:build", "epochs": 5}


def job(name: str = "digits", namespace: str = "ml", uid: str | None = UID) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid is not None:
        meta["uid"] = uid
    return {"apiVersion": "rekindle.dev/v1alpha1", "kind": "TrainingJob", "metadata": meta}


def spec(**overrides: Any) -> TrainingJobSpec:
    doc: dict[str, Any] = {
        "image": "ghcr.io/rekindle-dev/trainer:0.1.0",
        "entrypoint": "rekindle_trainer.examples.digits:build",
        "training": {"epochs": 5},
    }
    doc.update(overrides)
    return parse_spec(doc)


def build(attempt: int = 3, **overrides: Any) -> dict[str, Any]:
    return pods.build_pod(job(), spec(**overrides), attempt, CONFIG)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    [only] = pod["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def env(pod: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container(pod)["env"]}


def test_pod_is_named_after_job_and_attempt_in_the_jobs_namespace() -> None:
    pod = build(attempt=3)
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == "digits-3"
    assert pod["metadata"]["namespace"] == "ml"


def test_pod_is_controlled_by_the_job() -> None:
    assert build()["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "rekindle.dev/v1alpha1",
            "kind": "TrainingJob",
            "name": "digits",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_a_job_without_uid_cannot_own_a_pod() -> None:
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        pods.build_pod(job(uid=None), spec(), 1, CONFIG)


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="attempt must be 1 or more"):
        build(attempt=0)


def test_labels_select_the_trainer_its_job_and_attempt_and_keep_the_users() -> None:
    pod = build(
        attempt=2,
        template={"metadata": {"labels": {"team": "vision", "rekindle.dev/job": "spoof"}}},
    )
    assert pod["metadata"]["labels"] == {
        "team": "vision",
        "app.kubernetes.io/name": "rekindle-trainer",
        "app.kubernetes.io/managed-by": "rekindle-operator",
        "rekindle.dev/job": "digits",
        "rekindle.dev/attempt": "2",
    }


def test_template_annotations_are_copied() -> None:
    pod = build(template={"metadata": {"annotations": {"a.example/b": "c"}}})
    assert pod["metadata"]["annotations"] == {"a.example/b": "c"}
    assert "annotations" not in build()["metadata"]


def test_gpus_become_an_nvidia_limit_beside_the_specs_resources() -> None:
    pod = build(
        resources={
            "gpus": 2,
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"memory": "16Gi"},
        }
    )
    assert container(pod)["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": 2},
    }


def test_no_gpus_means_no_gpu_limit() -> None:
    assert container(build(resources={"gpus": 0}))["resources"] == {}


def test_gpus_set_in_limits_directly_are_refused_with_the_fix() -> None:
    with pytest.raises(pods.PodSpecError, match=r"spec\.resources\.gpus"):
        build(resources={"limits": {"nvidia.com/gpu": 1}})


def test_scheduling_fields_come_from_the_template() -> None:
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}
                ]
            }
        }
    }
    pod = build(
        template={
            "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            "tolerations": tolerations,
            "affinity": affinity,
            "priorityClassName": "training-high",
        }
    )
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["spec"]["tolerations"] == tolerations
    assert pod["spec"]["affinity"] == affinity
    assert pod["spec"]["priorityClassName"] == "training-high"


def test_absent_scheduling_fields_are_left_out() -> None:
    pod_spec = build()["spec"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert key not in pod_spec


def test_trainer_env_follows_the_contract() -> None:
    values = env(build(attempt=4))
    assert json.loads(values[contract.ENV_CONFIG]) == CONFIG
    assert values[contract.ENV_CHECKPOINT_DIR] == f"{contract.DEFAULT_CHECKPOINT_MOUNT}/digits"
    assert values[contract.ENV_ATTEMPT] == "4"
    assert values[contract.ENV_JOB_NAME] == "digits"
    assert values[contract.ENV_JOB_NAMESPACE] == "ml"
    assert values[contract.ENV_JOB_UID] == UID
    assert values[contract.ENV_METRICS_PORT] == str(contract.DEFAULT_METRICS_PORT)
    assert values[contract.ENV_TERMINATION_LOG] == contract.DEFAULT_TERMINATION_LOG
    assert values[contract.ENV_REPORT_TIMING] == "1"  # this operator reads timing (goodput)
    assert contract.ENV_PROGRESS_FILE not in values  # only `rekindle run` reads progress files


def test_template_env_comes_first_and_keeps_its_shape() -> None:
    secret = {"name": "WANDB_KEY", "valueFrom": {"secretKeyRef": {"name": "w", "key": "k"}}}
    pod = build(template={"env": [{"name": "A", "value": "1"}, secret]})
    items = container(pod)["env"]
    assert items[:2] == [{"name": "A", "value": "1"}, secret]
    assert items[2]["name"] == contract.ENV_CONFIG


def test_template_env_may_not_set_a_contract_variable() -> None:
    with pytest.raises(
        pods.PodSpecError, match=r"spec\.template\.env\[1\]\.name: REKINDLE_ATTEMPT"
    ):
        build(
            template={
                "env": [{"name": "A", "value": "1"}, {"name": "REKINDLE_ATTEMPT", "value": "9"}]
            }
        )


def test_entrypoint_runs_the_trainer_runner() -> None:
    c = container(build())
    assert c["name"] == "trainer"
    assert c["image"] == "ghcr.io/rekindle-dev/trainer:0.1.0"
    assert c["command"] == ["rekindle-train"]
    assert c["args"] == []


def test_users_own_command_and_args_run_as_given() -> None:
    c = container(build(entrypoint=None, command=["python", "/app/train.py"], args=["--fast"]))
    assert c["command"] == ["python", "/app/train.py"]
    assert c["args"] == ["--fast"]


def test_checkpoint_claim_is_mounted_where_the_contract_says() -> None:
    pod = build(checkpoint={"volumeClaimName": "shared-ckpt"})
    assert pod["spec"]["volumes"][0] == {
        "name": "checkpoints",
        "persistentVolumeClaim": {"claimName": "shared-ckpt"},
    }
    assert container(pod)["volumeMounts"][0] == {
        "name": "checkpoints",
        "mountPath": contract.DEFAULT_CHECKPOINT_MOUNT,
    }


def test_created_claim_is_mounted_when_none_is_named() -> None:
    pod = build()
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "digits-checkpoints"}


def test_template_volumes_and_mounts_follow_the_checkpoint_volume() -> None:
    extra = {"name": "data", "persistentVolumeClaim": {"claimName": "imagenet"}}
    mount = {"name": "data", "mountPath": "/data", "readOnly": True}
    pod = build(template={"volumes": [extra], "volumeMounts": [mount]})
    assert pod["spec"]["volumes"][1:] == [extra]
    assert container(pod)["volumeMounts"][1:] == [mount]


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (
            {"volumes": [{"name": "checkpoints", "emptyDir": {}}]},
            r"spec\.template\.volumes\[0\]\.name",
        ),
        (
            {"volumeMounts": [{"name": "x", "mountPath": contract.DEFAULT_CHECKPOINT_MOUNT}]},
            r"spec\.template\.volumeMounts\[0\]\.mountPath",
        ),
    ],
)
def test_template_may_not_take_the_checkpoint_volume(template: dict[str, Any], field: str) -> None:
    with pytest.raises(pods.PodSpecError, match=field):
        build(template=template)


def test_termination_message_is_read_from_the_file_or_the_logs() -> None:
    c = container(build())
    assert c["terminationMessagePath"] == contract.DEFAULT_TERMINATION_LOG
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_grace_period_is_the_specs() -> None:
    assert build(terminationGracePeriodSeconds=300)["spec"]["terminationGracePeriodSeconds"] == 300
    assert build()["spec"]["terminationGracePeriodSeconds"] == 120


def test_the_operator_restarts_attempts_not_the_kubelet() -> None:
    assert build()["spec"]["restartPolicy"] == "Never"


def test_pod_runs_restricted() -> None:
    pod = build()
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container(pod)["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_a_fresh_claim_is_writable_by_the_non_root_trainer() -> None:
    assert build()["spec"]["securityContext"]["fsGroup"] == pods.VOLUME_GROUP


def test_metrics_port_is_named_for_the_pod_monitor() -> None:
    assert container(build())["ports"] == [
        {
            "name": contract.METRICS_PORT_NAME,
            "containerPort": contract.DEFAULT_METRICS_PORT,
            "protocol": "TCP",
        }
    ]


def test_builder_is_pure() -> None:
    s = spec(template={"env": [{"name": "A", "value": "1"}], "nodeSelector": {"a": "b"}})
    first = pods.build_pod(job(), s, 1, CONFIG)
    first["spec"]["nodeSelector"]["a"] = "changed"
    first["spec"]["containers"][0]["env"][0]["value"] = "changed"
    assert pods.build_pod(job(), s, 1, CONFIG) != first
    assert s.template.node_selector == {"a": "b"}


def test_pod_passes_the_kubernetes_schema() -> None:
    pod = build(
        resources={"gpus": 1, "requests": {"cpu": "2"}},
        template={
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "env": [{"name": "A", "value": "1"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "priorityClassName": "p",
        },
    )
    kubernetes_validate.validate(pod, "1.31.0", strict=True)
