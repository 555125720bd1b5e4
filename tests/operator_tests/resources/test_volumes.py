"""The checkpoint claim (``volumes.build_claim``), field by field."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from rekindle_operator.core.job_spec import TrainingJobSpec, parse_spec
from rekindle_operator.resources import volumes

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


def gang_spec(workers: int, **checkpoint: Any) -> TrainingJobSpec:
    return parse_spec(
        {
            "image": "t:1",
            "entrypoint": "m:f",
            "training": {"epochs": 1},
            "workers": workers,
            "checkpoint": checkpoint,
        }
    )


def test_a_gangs_created_claim_asks_for_read_write_many() -> None:
    claim = volumes.build_claim(JOB, gang_spec(2, storageClassName="nfs"))
    assert claim is not None
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    single = volumes.build_claim(JOB, gang_spec(1))
    assert single is not None
    assert single["spec"]["accessModes"] == ["ReadWriteOnce"]


def claim(
    *, status_modes: list[str] | None = None, spec_modes: list[str] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {"metadata": {"name": "team-ckpt"}, "spec": {}, "status": {}}
    if spec_modes is not None:
        doc["spec"]["accessModes"] = spec_modes
    if status_modes is not None:
        doc["status"]["accessModes"] = status_modes
    return doc


def test_a_gang_refuses_a_named_read_write_once_claim_naming_the_field_and_the_fix() -> None:
    problem = volumes.claim_problem(
        gang_spec(2, volumeClaimName="team-ckpt"), claim(spec_modes=["ReadWriteOnce"])
    )
    assert problem is not None
    assert problem.startswith("spec.checkpoint.volumeClaimName: claim team-ckpt is ReadWriteOnce")
    assert "ReadWriteMany" in problem
    assert "spec.workers: 1" in problem


def test_the_bound_volumes_modes_win_over_the_requested_ones() -> None:
    bound_once = claim(spec_modes=["ReadWriteMany"], status_modes=["ReadWriteOncePod"])
    assert volumes.claim_problem(gang_spec(2, volumeClaimName="team-ckpt"), bound_once)


@pytest.mark.parametrize(
    ("workers", "named", "found"),
    [
        (2, True, claim(spec_modes=["ReadWriteMany"])),
        (2, True, claim(spec_modes=["ReadWriteOnce"], status_modes=["ReadWriteMany"])),
        (2, True, None),  # not there (yet): its pods wait for it, as for one worker
        (2, True, claim()),  # no modes known
        (1, True, claim(spec_modes=["ReadWriteOnce"])),  # one worker: any claim
        (2, False, claim(spec_modes=["ReadWriteOnce"])),  # Rekindle's own claim
    ],
)
def test_claims_a_gang_can_use_or_that_cannot_be_judged_pass(
    workers: int, named: bool, found: dict[str, Any] | None
) -> None:
    s = gang_spec(workers, volumeClaimName="team-ckpt") if named else gang_spec(workers)
    assert volumes.claim_problem(s, found) is None
