"""A real ``kopf run`` process against the emulated API, cluster-wide and namespaced."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kube.cluster import Cluster
from tests.kube.fixtures import KopfRunner

NS = "team"

OPERATOR = """
import json, os
import kopf

LOG = os.environ["HANDLER_LOG"]

def record(handler, name):
    with open(LOG, "a") as log:
        log.write(json.dumps({"handler": handler, "name": name}) + "\\n")

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    # Short server-side watch timeouts: the watches reconnect from their resourceVersion
    # during the test, which must not replay what kopf has already seen.
    settings.watching.server_timeout = 1

@kopf.on.create("rekindle.dev", "v1alpha1", "trainingjobs")
def created(name, body, patch, **_):
    record("create", name)
    kopf.info(body, reason="Seen", message=f"created {name}")
    patch.status["phase"] = "Pending"  # a phase the chart's CRD allows

@kopf.on.update("rekindle.dev", "v1alpha1", "trainingjobs", field="spec")
def updated(name, patch, **_):
    record("update", name)
    patch.status["phase"] = "Running"

@kopf.on.delete("rekindle.dev", "v1alpha1", "trainingjobs")
def deleted(name, **_):
    record("delete", name)
"""


def tj(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"image": "trainer:dev", "entrypoint": "m:f", "training": {"epochs": 1}},
    }


def handler_calls(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [(entry["handler"], entry["name"]) for entry in lines]


def phase(value: str) -> Any:
    return lambda obj: obj.get("status", {}).get("phase") == value


@pytest.mark.slow
@pytest.mark.parametrize(
    "scope", [["--all-namespaces"], ["--namespace", NS]], ids=["cluster", "namespaced"]
)
def test_kopf_operator_against_the_emulator(
    kube_api: Cluster, kopf_runner: KopfRunner, tmp_path: Path, scope: list[str]
) -> None:
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    calls = tmp_path / "calls.jsonl"
    kube_api.ensure_namespace(NS)
    kube_api.create(tj("early"))  # exists before the operator starts

    operator = kopf_runner(["--standalone", *scope, str(script)], env={"HANDLER_LOG": str(calls)})
    kube_api.wait_for("tj", NS, "early", phase("Pending"), what="status.phase Pending")
    kube_api.create(tj("late"))
    late = kube_api.wait_for("tj", NS, "late", phase("Pending"), what="status.phase Pending")
    assert late["metadata"]["generation"] == 1, "a status write does not bump generation"

    time.sleep(2.5)  # the watches end (timeoutSeconds=1) and resume from their versions
    assert handler_calls(calls) == [("create", "early"), ("create", "late")]

    kube_api.patch("tj", NS, "late", {"spec": {"training": {"epochs": 2}}})
    updated = kube_api.wait_for("tj", NS, "late", phase("Running"), what="status.phase Running")
    assert updated["metadata"]["generation"] == 2

    kube_api.delete("tj", NS, "late")
    kube_api.wait_gone("tj", NS, "late")
    assert handler_calls(calls) == [
        ("create", "early"),
        ("create", "late"),
        ("update", "late"),
        ("delete", "late"),
    ]

    status_patches = [
        r
        for r in list(kube_api.emulator)
        if r.method == "PATCH" and r.resource is not None and r.resource.plural == "trainingjobs"
    ]
    assert any(r.subresource == "status" for r in status_patches)
    for request in status_patches:
        body = request.data if isinstance(request.data, dict) else {}
        if request.subresource is None:
            assert "status" not in body, "kopf patches the status only through /status"

    reasons = [e["reason"] for e in kube_api.events_for(kube_api.get("tj", NS, "early"))]
    assert "Seen" in reasons
    operator.stop()
    log = operator.log_text()
    assert "Traceback" not in log
    assert "[ERROR" not in log
