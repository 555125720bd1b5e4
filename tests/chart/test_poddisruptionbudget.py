"""The operator's PodDisruptionBudget (templates/poddisruptionbudget.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import rendering as r


def _pdbs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return r.of_kind(r.objects(values), "PodDisruptionBudget")


def test_none_with_one_replica_it_would_block_every_drain() -> None:
    assert not _pdbs({})
    assert not _pdbs({"replicaCount": 1})


def test_more_replicas_keep_one_running_through_a_drain() -> None:
    objs = r.objects({"replicaCount": 3})
    pdb = r.one(objs, "PodDisruptionBudget")
    deployment = r.one(objs, "Deployment")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["metadata"]["namespace"] == r.NAMESPACE
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_min_available_from_values_and_switch() -> None:
    (pdb,) = _pdbs({"replicaCount": 3, "podDisruptionBudget": {"minAvailable": 2}})
    assert pdb["spec"]["minAvailable"] == 2
    assert not _pdbs({"replicaCount": 3, "podDisruptionBudget": {"enabled": False}})


def test_min_available_that_would_block_drains_is_refused_naming_the_field() -> None:
    values = {"replicaCount": 2, "podDisruptionBudget": {"minAvailable": 2}}
    with pytest.raises(Exception, match=r"podDisruptionBudget\.minAvailable: 2 of 2 replicas"):
        r.render(values)
