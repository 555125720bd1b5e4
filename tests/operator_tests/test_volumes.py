"""The checkpoint claim (``volumes.build_claim``), field by field."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from rekindle_operator import volumes
from rekindle_operator.spec import TrainingJobSpec, parse_spec

UID = "5e1d2c3b-aaaa-bbbb-cccc-000000000001"
JOB = {
    "apiVersion": "rekindle.dev/v1alpha1",
    "kind": "TrainingJob",
    "metadata": {"name": "digits", "namespace": "ml", "uid": UID},
}


def spec(**checkpoint: Any) -> TrainingJobSpec:
    return parse_spec(
        {"image": "t:1", "entrypoint": "m:f", "training": {"epochs": 1}, "checkpoint": checkpoint}
    )


def test_a_named_claim_is_used_and_never_created() -> None:
    s = spec(volumeClaimName="team-ckpt", size="50Gi")
    assert volumes.build_claim(JOB, s) is None
    assert volumes.claim_name("digits", s) == "team-ckpt"
    assert volumes.build_volume("digits", s) == {
        "name": "checkpoints",
        "persistentVolumeClaim": {"claimName": "team-ckpt"},
    }


def test_created_claim_has_the_specs_size_and_class_and_is_owned_by_the_job() -> None:
    claim = volumes.build_claim(JOB, spec(size="50Gi", storageClassName="fast-ssd"))
    assert claim == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "digits-checkpoints",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/managed-by": "rekindle-operator",
                "rekindle.dev/job": "digits",
            },
            "ownerReferences": [
                {
                    "apiVersion": "rekindle.dev/v1alpha1",
                    "kind": "TrainingJob",
                    "name": "digits",
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "50Gi"}},
            "storageClassName": "fast-ssd",
        },
    }


def test_default_size_and_the_clusters_default_class() -> None:
    claim = volumes.build_claim(JOB, spec())
    assert claim is not None
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "storageClassName" not in claim["spec"]


def test_retained_claim_has_no_owner_so_it_outlives_the_job() -> None:
    claim = volumes.build_claim(JOB, spec(retainVolume=True))
    assert claim is not None
    assert "ownerReferences" not in claim["metadata"]
    assert claim["metadata"]["name"] == "digits-checkpoints"


def test_created_claim_is_what_the_pod_mounts() -> None:
    s = spec()
    claim = volumes.build_claim(JOB, s)
    assert claim is not None
    assert (
        volumes.build_volume("digits", s)["persistentVolumeClaim"]["claimName"]
        == (claim["metadata"]["name"])
    )


def test_claim_passes_the_kubernetes_schema() -> None:
    claim = volumes.build_claim(JOB, spec(size="1Gi", storageClassName="standard"))
    kubernetes_validate.validate(claim, "1.31.0", strict=True)
