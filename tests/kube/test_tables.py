"""Server-side Table printing: what ``kubectl get`` shows for custom and built-in kinds."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube import core_printers, tables
from tests.kube.store import ApiError

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
CRD = yaml.safe_load(
    (Path(__file__).parents[2] / "charts/rekindle/crds/trainingjobs.rekindle.dev.yaml").read_text()
)
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


def ago(seconds: int) -> str:
    then = NOW - datetime.timedelta(seconds=seconds)
    return then.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, "v1"),
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "v1beta1"),
        ("application/json", None),
        ("application/json, */*", None),
        ("", None),
    ],
)
def test_table_version_from_accept(accept: str, expected: str | None) -> None:
    assert tables.table_version(accept) == expected


def test_only_unserved_tables_are_not_acceptable() -> None:
    with pytest.raises(ApiError) as caught:
        tables.table_version("application/json;as=Table;v=v9;g=meta.k8s.io")
    assert caught.value.status == 406


def test_include_object_is_checked() -> None:
    assert tables.include_object({}) == "Metadata"
    with pytest.raises(ApiError, match="includeObject"):
        tables.include_object({"includeObject": "Everything"})


def test_crd_columns_are_typed_and_evaluated_on_the_server() -> None:
    job = {
        "metadata": {"name": "digits", "namespace": "ns", "creationTimestamp": ago(150)},
        "status": {
            "phase": "Running",
            "currentEpoch": 7.0,
            "currentStep": 380,
            "bestMetric": {"value": 0.25, "epoch": 6},
            "latestCheckpoint": "ckpt-e0000007-s00000380",
            "latestCheckpointTime": ago(60),
        },
    }
    table = tables.table([job], tables.crd_printer(CRD, "v1alpha1"), NOW)
    names = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert names == [
        ("Name", "string", 0),
        ("Phase", "string", 0),
        ("Epoch", "integer", 0),
        ("Step", "integer", 1),
        ("Best", "number", 0),
        ("Best-Epoch", "integer", 1),
        ("Checkpoint", "string", 1),
        ("Saved", "date", 0),
        ("Restarts", "integer", 0),
        ("Workers", "string", 0),
        ("Failures-Left", "integer", 1),
        ("Reason", "string", 1),
        ("Age", "date", 0),
    ]
    [row] = table["rows"]
    assert row["cells"] == [
        "digits",
        "Running",
        7,
        380,
        0.25,
        6,
        "ckpt-e0000007-s00000380",
        "60s",
        None,
        None,
        None,
        None,
        "2m30s",
    ]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": job["metadata"],
    }
    bare = tables.table([job], tables.DEFAULT_PRINTER, NOW, include="None")
    assert bare["rows"] == [{"cells": ["digits", ago(150)]}]


def container(state: dict[str, Any], *, ready: bool = False, restarts: int = 0) -> dict[str, Any]:
    return {"name": "main", "ready": ready, "restartCount": restarts, "state": state}


def pod(phase: str, *statuses: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "creationTimestamp": ago(60)}
    if deleting:
        meta["deletionTimestamp"] = ago(0)
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "main"}], "nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": list(statuses)},
    }


@pytest.mark.parametrize(
    ("obj", "status", "ready"),
    [
        (pod("Pending"), "Pending", "0/1"),
        (
            pod("Pending", container({"waiting": {"reason": "ImagePullBackOff"}})),
            "ImagePullBackOff",
            "0/1",
        ),
        (pod("Running", container({"running": {}}, ready=True)), "Running", "1/1"),
        (
            pod("Running", container({"running": {}}, ready=True), deleting=True),
            "Terminating",
            "1/1",
        ),
        (
            pod("Failed", container({"terminated": {"reason": "OOMKilled", "exitCode": 137}})),
            "OOMKilled",
            "0/1",
        ),
        (pod("Failed", container({"terminated": {"exitCode": 3}})), "ExitCode:3", "0/1"),
        (
            pod("Succeeded", container({"terminated": {"reason": "Completed", "exitCode": 0}})),
            "Completed",
            "0/1",
        ),
    ],
)
def test_pod_status_column(obj: dict[str, Any], status: str, ready: str) -> None:
    cells = core_printers.POD.cells(obj, NOW)
    assert (cells[1], cells[2]) == (ready, status)
    assert cells[6] == "node-1"


def test_pod_restarts_show_the_age_of_the_last_one() -> None:
    restarted = container({"running": {}}, ready=True, restarts=2)
    restarted["lastState"] = {"terminated": {"exitCode": 137, "finishedAt": ago(90)}}
    assert core_printers.POD.cells(pod("Running", restarted), NOW)[3] == "2 (90s ago)"
    assert core_printers.POD.conditions(pod("Succeeded"))[0]["type"] == "Completed"


def test_events_print_alike_in_both_groups() -> None:
    core = {
        "metadata": {"name": "e.1"},
        "involvedObject": {"kind": "TrainingJob", "name": "digits"},
        "reason": "AttemptStarted",
        "message": "starting attempt 1 ",
        "type": "Normal",
        "source": {"component": "rekindle-operator"},
        "firstTimestamp": ago(300),
        "lastTimestamp": ago(30),
        "count": 3,
    }
    cells = core_printers.EVENT.cells(core, NOW)
    assert cells == [
        "30s",
        "Normal",
        "AttemptStarted",
        "trainingjob/digits",
        "",
        "rekindle-operator",
        "starting attempt 1",
        "5m",
        3,
        "e.1",
    ]
    from tests.kube import event_versions

    assert core_printers.EVENT_V1.cells(event_versions.to_events_v1(core), NOW) == cells
