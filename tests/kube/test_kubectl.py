"""The real ``kubectl`` (1.32) against the emulated cluster: what a user types must work.

Each test runs kubectl as a subprocess with a kubeconfig for the emulator and
checks what it prints, as a user would read it; each failed against kmock's
own discovery, streams and answers (issue 18). Without kubectl these tests
skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path
from typing import Any

from tests.kube.cluster import Cluster
from tests.kube.kubelet import ProcessKubelet
from tests.kube.test_kubelet import NS, phase_is, python_pod
from tests.support.deps import REPO_ROOT
from tests.support.kubectl import Kubectl

DIGITS = REPO_ROOT / "examples" / "digits.yaml"


def job_status(cluster: Cluster, name: str, status: dict[str, Any]) -> None:
    """Write a TrainingJob's status as the operator would."""
    cluster.patch("tj", NS, name, {"status": status}, subresource="status")


def no_warnings(stderr: str) -> None:
    assert stderr.strip() == "", f"kubectl warned or failed: {stderr}"


# --- the core group (kmock's /api/v1 said groupVersion "/v1") -------------------------------


def test_get_pods_and_pvc_list_the_core_group(kube_api: Cluster, kubectl: Kubectl) -> None:
    kube_api.create(python_pod("worker", "pass"))
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": NS},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    pods = kubectl.run("get", "pods")
    no_warnings(pods.stderr)
    [pod] = kubectl.table("pods")
    assert (pod["NAME"], pod["READY"], pod["STATUS"], pod["RESTARTS"]) == (
        "worker",
        "0/1",
        "Pending",
        "0",
    )
    [claim] = kubectl.table("pvc")
    assert (claim["NAME"], claim["STATUS"], claim["CAPACITY"], claim["ACCESS MODES"]) == (
        "data",
        "Bound",
        "1Gi",
        "RWO",
    )
    assert kubectl.run("get", "pods", "-o", "name").lines() == ["pod/worker"]


def test_delete_pod_and_logs(kube_api: Cluster, kubelet: ProcessKubelet, kubectl: Kubectl) -> None:
    kube_api.create(python_pod("talker", "print('hello from the container', flush=True)"))
    kube_api.wait_for("pods", NS, "talker", phase_is("Succeeded"))
    assert kubectl.run("logs", "talker").stdout == "hello from the container\n"
    [row] = kubectl.table("pods")
    assert (row["READY"], row["STATUS"]) == ("0/1", "Completed")
    deleted = kubectl.run("delete", "pod", "talker")
    assert deleted.stdout.strip() == 'pod "talker" deleted'
    assert kube_api.find("pods", NS, "talker") is None


def test_logs_follow_streams_until_the_container_ends(
    kube_api: Cluster, kubelet: ProcessKubelet, kubectl: Kubectl
) -> None:
    script = (
        "import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.4)\n"
    )
    kube_api.create(python_pod("slow", script))
    kube_api.wait_for("pods", NS, "slow", phase_is("Running"))
    started = time.monotonic()
    followed = kubectl.run("logs", "-f", "slow", timeout=30)
    assert followed.stdout == "line 0\nline 1\nline 2\nline 3\n"
    assert time.monotonic() - started < 10  # it ended with the container, not at a timeout
    assert kube_api.get("pods", NS, "slow")["status"]["phase"] == "Succeeded"


def test_get_all_leaves_jobs_out_and_the_rekindle_category_lists_them(
    kube_api: Cluster, kubectl: Kubectl
) -> None:
    kube_api.create_from_file(DIGITS, NS)
    kube_api.create(python_pod("worker", "pass"))
    everything = kubectl.run("get", "all")
    no_warnings(everything.stderr)
    assert "pod/worker" in everything.stdout
    # Not in `all`: `kubectl delete all --all` must not delete training jobs (docs/resource.md).
    assert "trainingjob" not in everything.stdout
    rekindle = kubectl.run("get", "rekindle", "-o", "name")
    no_warnings(rekindle.stderr)
    assert rekindle.lines() == ["trainingjob.rekindle.dev/digits"]


# --- OpenAPI: apply with validation, explain ------------------------------------------------


def test_apply_validates_on_the_server(kube_api: Cluster, kubectl: Kubectl, tmp_path: Path) -> None:
    applied = kubectl.run("apply", "-f", str(DIGITS))
    no_warnings(applied.stderr)
    assert applied.stdout.strip() == "trainingjob.rekindle.dev/digits created"
    assert kubectl.run("apply", "-f", str(DIGITS)).stdout.strip().endswith("unchanged")
    typo = tmp_path / "typo.yaml"
    misspelt = DIGITS.read_text().replace("    patience: 3", "    patience: 3\n    patiense: 4")
    typo.write_text(misspelt)
    refused = kubectl.run("apply", "-f", str(typo), check=False)
    assert refused.returncode == 1
    assert 'strict decoding error: unknown field "spec.earlyStopping.patiense"' in refused.stderr
    warned = kubectl.run("apply", "--validate=warn", "-f", str(typo))
    assert 'Warning: unknown field "spec.earlyStopping.patiense"' in warned.stderr
    assert "patiense" not in str(kube_api.get("tj", NS, "digits")["spec"])


def test_explain_reads_the_crd_schema(kubectl: Kubectl) -> None:
    explained = kubectl.run("explain", "tj.spec.earlyStopping")
    no_warnings(explained.stderr)
    assert "KIND:       TrainingJob" in explained.stdout
    assert "FIELD: earlyStopping <Object>" in explained.stdout
    assert "patience\t<integer>" in explained.stdout
    assert "restoreBestWeights\t<boolean>" in explained.stdout
    pod = kubectl.run("explain", "pods.spec.restartPolicy").stdout
    assert "FIELD: restartPolicy <string>" in pod


def test_create_of_a_pod_with_an_unknown_field_is_refused(kubectl: Kubectl) -> None:
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\n"
        "spec: {containers: [{name: c, image: busybox, imagePullPolicyy: Never}]}\n"
    )
    refused = kubectl.run("create", "-f", "-", input=manifest, check=False)
    assert refused.returncode == 1
    assert 'unknown field "spec.containers[0].imagePullPolicyy"' in refused.stderr


# --- server-side printing -----------------------------------------------------------------


def _ago(seconds: float) -> str:
    """An RFC 3339 time ``seconds`` ago (a status timestamp)."""
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_get_tj_prints_the_printer_columns(kube_api: Cluster, kubectl: Kubectl) -> None:
    kube_api.create_from_file(DIGITS, NS)
    job_status(
        kube_api,
        "digits",
        {
            "phase": "Running",
            "reason": "AttemptRunning",
            "currentEpoch": 7,
            "bestMetric": {"name": "val_loss", "value": 0.25, "epoch": 6},
            "restarts": {"total": 2, "failures": 1, "disruptions": 1},
            "restartBudget": {"failuresUsed": 1, "failuresLeft": 2},
            "currentStep": 380,
            "latestCheckpoint": "ckpt-e0000007-s00000380",
            "latestCheckpointTime": _ago(150),
        },
    )
    printed = kubectl.run("get", "tj")
    no_warnings(printed.stderr)
    [row] = kubectl.table("tj")
    assert list(row) == ["NAME", "PHASE", "EPOCH", "BEST", "SAVED", "RESTARTS", "WORKERS", "AGE"]
    assert row["SAVED"] in ("2m30s", "2m31s", "2m32s"), "the checkpoint's age, as kubectl prints it"
    assert (row["NAME"], row["PHASE"], row["EPOCH"], row["BEST"], row["RESTARTS"]) == (
        "digits",
        "Running",
        "7",
        "0.25",
        "2",
    )
    assert row["AGE"].endswith("s")
    [wide] = kubectl.table("tj", "-o", "wide")
    assert (wide["FAILURES-LEFT"], wide["REASON"]) == ("2", "AttemptRunning")
    assert (wide["STEP"], wide["BEST-EPOCH"], wide["CHECKPOINT"]) == (
        "380",
        "6",
        "ckpt-e0000007-s00000380",
    )
    [single] = kubectl.table("tj", "digits")
    ages = ("AGE", "SAVED")  # both tick between the two kubectl calls
    assert {k: v for k, v in single.items() if k not in ages} == {
        k: v for k, v in row.items() if k not in ages
    }
    assert single["SAVED"] in ("2m30s", "2m31s", "2m32s", "2m33s")


# --- watches ------------------------------------------------------------------------------


def test_get_watch_streams_changes(kube_api: Cluster, kubectl: Kubectl) -> None:
    kube_api.create_from_file(DIGITS, NS)
    watcher = kubectl.start("get", "tj", "-w", "--output-watch-events")
    try:
        time.sleep(1.5)  # the list, then the watch from its version
        job_status(kube_api, "digits", {"phase": "Running", "currentEpoch": 3})
        time.sleep(1.5)
    finally:
        watcher.terminate()
        out, err = watcher.communicate(timeout=10)
    assert "no stream serializers" not in err
    no_warnings(err)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["EVENT", "NAME", "PHASE"]
    assert rows[-1][:4] == ["MODIFIED", "digits", "Running", "3"]


def test_wait_for_a_condition_returns_promptly(kube_api: Cluster, kubectl: Kubectl) -> None:
    kube_api.create_from_file(DIGITS, NS)
    condition = {"type": "Succeeded", "status": "True", "reason": "EarlyStopped"}
    condition |= {"message": "done", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    timer = threading.Timer(
        1.0, job_status, (kube_api, "digits", {"phase": "Succeeded", "conditions": [condition]})
    )
    started = time.monotonic()
    timer.start()
    try:
        waited = kubectl.run("wait", "--for=condition=Succeeded", "tj/digits", "--timeout=30s")
    finally:
        timer.cancel()
    no_warnings(waited.stderr)
    assert waited.stdout.strip() == "trainingjob.rekindle.dev/digits condition met"
    assert time.monotonic() - started < 5


# --- discovery, events, server-side apply ----------------------------------------------------


def test_short_names_do_not_warn(kube_api: Cluster, kubectl: Kubectl) -> None:
    kube_api.create_from_file(DIGITS, NS)
    got = kubectl.run("get", "tj", "-o", "name")
    no_warnings(got.stderr)
    assert got.lines() == ["trainingjob.rekindle.dev/digits"]


def test_events_of_both_groups_are_one_store(kube_api: Cluster, kubectl: Kubectl) -> None:
    job = kube_api.create_from_file(DIGITS, NS)[0]
    kube_api.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "digits.1", "namespace": NS},
            "involvedObject": {
                "apiVersion": "rekindle.dev/v1alpha1",
                "kind": "TrainingJob",
                "name": "digits",
                "namespace": NS,
                "uid": job["metadata"]["uid"],
            },
            "reason": "AttemptStarted",
            "message": "starting attempt 1",
            "type": "Normal",
            "source": {"component": "rekindle-operator"},
            "firstTimestamp": job["metadata"]["creationTimestamp"],
            "lastTimestamp": job["metadata"]["creationTimestamp"],
            "count": 1,
        }
    )

    def shown(resource: str) -> list[tuple[str, ...]]:
        return [
            (r["TYPE"], r["REASON"], r["OBJECT"], r["MESSAGE"]) for r in kubectl.table(resource)
        ]

    assert shown("events") == [
        ("Normal", "AttemptStarted", "trainingjob/digits", "starting attempt 1")
    ]
    assert shown("events.v1.events.k8s.io") == shown("events")
    viewed = kubectl.json("get", "events.v1.events.k8s.io", "digits.1")
    assert (viewed["note"], viewed["regarding"]["name"]) == ("starting attempt 1", "digits")
    described = kubectl.run("describe", "tj", "digits").stdout
    assert "AttemptStarted" in described


def test_server_side_apply_creates_then_updates(
    kube_api: Cluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    created = kubectl.run("apply", "--server-side", "-f", str(DIGITS))
    no_warnings(created.stderr)
    assert created.stdout.strip() == "trainingjob.rekindle.dev/digits serverside-applied"
    job = kube_api.get("tj", NS, "digits")
    assert job["spec"]["training"]["epochs"] == 60
    [entry] = job["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    changed = tmp_path / "digits.yaml"
    text = DIGITS.read_text().replace("epochs: 60", "epochs: 20")
    changed.write_text(text.replace("    restoreBestWeights: true\n", ""))
    kubectl.run("apply", "--server-side", "-f", str(changed))
    job = kube_api.get("tj", NS, "digits")
    assert job["spec"]["training"]["epochs"] == 20
    assert job["metadata"]["generation"] == 2
    # The field the manager stopped applying is gone (the CRD's default comes back).
    assert job["spec"]["earlyStopping"]["restoreBestWeights"] is False


# --- garbage collection is the collector's, after the delete ----------------------------------


def owned_pod(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    pod = python_pod(name, "pass")
    pod["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return pod


def test_pods_outlive_a_deleted_job_until_the_collector_runs(
    kube_api: Cluster, kubectl: Kubectl
) -> None:
    kube_api.emulator.gc_interval = 1.5
    job = kube_api.create_from_file(DIGITS, NS)[0]
    kube_api.create(owned_pod("digits-1", job))
    kubectl.run("delete", "tj", "digits")  # background: the job goes at once
    assert kube_api.find("tj", NS, "digits") is None
    assert kube_api.find("pods", NS, "digits-1") is not None, "the collector has not run yet"
    kube_api.wait_gone("pods", NS, "digits-1", timeout=10)


def test_foreground_deletion_waits_for_the_dependents(kube_api: Cluster, kubectl: Kubectl) -> None:
    kube_api.emulator.gc_interval = 0.2
    job = kube_api.create_from_file(DIGITS, NS)[0]
    pod = owned_pod("digits-1", job)
    pod["metadata"]["finalizers"] = ["example.com/hold"]
    kube_api.create(pod)
    kubectl.run("delete", "tj", "digits", "--cascade=foreground", "--wait=false")
    held = kube_api.wait_for(
        "pods", NS, "digits-1", lambda p: bool(p["metadata"].get("deletionTimestamp"))
    )
    assert held["metadata"]["finalizers"] == ["example.com/hold"]
    waiting = kube_api.get("tj", NS, "digits")
    assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"]
    kube_api.patch("pods", NS, "digits-1", {"metadata": {"finalizers": None}})
    kube_api.wait_gone("tj", NS, "digits", timeout=10)


# --- dry runs, diff, version ---------------------------------------------------------------


def test_diff_and_server_dry_runs_change_nothing(
    kube_api: Cluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl.run("apply", "-f", str(DIGITS))
    before = kube_api.get("tj", NS, "digits")
    changed = tmp_path / "digits.yaml"
    changed.write_text(DIGITS.read_text().replace("epochs: 60", "epochs: 61"))
    diff = kubectl.run("diff", "-f", str(changed), check=False)
    assert diff.returncode == 1, diff.stderr  # 1: there are differences
    assert "-    epochs: 60" in diff.stdout
    assert "+    epochs: 61" in diff.stdout
    dry = kubectl.run("apply", "--dry-run=server", "-f", str(changed))
    assert dry.stdout.strip() == "trainingjob.rekindle.dev/digits configured (server dry run)"
    kubectl.run("delete", "tj", "digits", "--dry-run=server")
    after = kube_api.get("tj", NS, "digits")
    assert after == before, "a dry run stores nothing"
    created = kubectl.run("create", "--dry-run=server", "-f", "-", input=_pod_manifest("dry"))
    assert created.stdout.strip() == "pod/dry created (server dry run)"
    assert kube_api.find("pods", NS, "dry") is None


def _pod_manifest(name: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"
        "spec: {containers: [{name: c, image: busybox}]}\n"
    )


def test_version_is_the_emulated_release(kubectl: Kubectl) -> None:
    version = kubectl.json("version")
    assert (version["serverVersion"]["major"], version["serverVersion"]["minor"]) == ("1", "32")
    assert "WARNING" not in kubectl.run("version").stderr
