"""The e2e suite's own parts, fast: manifests, backoff arithmetic, the volume report, the recorder.

The scenarios lean on these to decide pass or fail, so each is checked
against known input here (a wrong digest or a recorder that never sees a
duplicate would let a broken run pass).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rekindle_operator.resources import validation
from rekindle_trainer.checkpoint import store
from tests.e2e import manifests, volume_report
from tests.e2e.backend import E2ECluster, PodRecorder
from tests.e2e.conftest import KUBECONFIG_ENV, SKIP_REASON
from tests.e2e.real import Settings


@pytest.mark.parametrize(
    "manifest",
    [
        manifests.digits("digits", "img:1"),
        manifests.digits("noimport", "img:1", entrypoint="missing.module:build"),
        manifests.digits(
            "owned", "img:1", checkpoint={"size": None, "volumeClaimName": "my-checkpoints"}
        ),
        manifests.gang("gang", "img:1"),
        manifests.gang("gang-rwx", "img:1", checkpoint={"storageClassName": "nfs-client"}),
        manifests.crash_loop(
            "crashloop",
            "img:1",
            max_restarts=2,
            backoff={"initialSeconds": 2, "maxSeconds": 3, "factor": 2.0},
        ),
    ],
    ids=lambda m: m["metadata"]["name"],
)
def test_scenario_manifests_pass_the_crds_validation(manifest: dict[str, Any]) -> None:
    assert validation.validate(manifest) == []


def test_gang_is_the_two_worker_example_sized_for_the_suite() -> None:
    spec = manifests.gang("g", "img:1")["spec"]
    assert (spec["workers"], spec["image"]) == (2, "img:1")
    assert "storageClassName" not in spec["checkpoint"], "the cluster's default class"
    assert spec["checkpoint"]["everySteps"] == 5
    assert spec["training"]["batchSize"] == 64


def test_digits_keeps_the_example_and_changes_only_the_fast_settings() -> None:
    manifest = manifests.digits("x", "img:1", suspend=True)
    spec = manifest["spec"]
    assert spec["image"] == "img:1"
    assert spec["entrypoint"] == "rekindle_trainer.examples.digits:build"
    assert spec["training"]["epochs"] == 40
    assert spec["training"]["hyperparameters"] == {
        "learningRate": 0.006,
        "units": 64,
        "dropout": 0.2,
    }
    assert spec["earlyStopping"]["patience"] == 3  # the example's
    assert spec["suspend"] is True


def test_merge_replaces_lists_recurses_into_dicts_and_none_removes() -> None:
    base = {"a": {"b": 1, "c": 2}, "l": [1, 2], "gone": 1}
    assert manifests.merge(base, {"a": {"c": 3}, "l": [3], "gone": None}) == {
        "a": {"b": 1, "c": 3},
        "l": [3],
    }
    assert base["a"] == {"b": 1, "c": 2}, "the base is not changed"


@pytest.mark.parametrize(
    ("restarts", "backoff", "delays"),
    [
        (3, {"initialSeconds": 1, "maxSeconds": 30, "factor": 2.0}, [1, 2, 4]),
        (4, {"initialSeconds": 2, "maxSeconds": 5, "factor": 2.0}, [2, 4, 5, 5]),
        (2, {"initialSeconds": 3, "maxSeconds": 3}, [3, 3]),
    ],
)
def test_backoff_delays(restarts: int, backoff: dict[str, Any], delays: list[float]) -> None:
    assert manifests.backoff_delays(restarts, backoff) == delays


def _save(folder: Path, epoch: int, weights: np.ndarray, trigger: str) -> None:
    snapshot = store.Snapshot(
        groups={"model": [("dense/kernel", weights)]},
        meta={"epoch": epoch, "step": epoch * 10, "step_in_epoch": 0, "trigger": trigger},
    )
    store.CheckpointStore(folder).write(snapshot)


def test_volume_report_lists_checkpoints_and_tells_weights_apart(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    _save(folder, 1, np.zeros((2, 2), "float32"), "epoch")
    _save(folder, 2, np.ones((2, 2), "float32"), "sigterm")
    report = volume_report.describe(folder)
    first, second = report["checkpoints"]
    assert (first["epoch"], first["trigger"]) == (1, "epoch")
    assert (second["name"], second["trigger"]) == ("ckpt-000002-0000000020", "sigterm")
    assert first["model_sha256"] != second["model_sha256"]

    same = tmp_path / "same"
    _save(same, 2, np.ones((2, 2), "float32"), "final")
    assert volume_report.describe(same)["checkpoints"][0]["model_sha256"] == second["model_sha256"]


def test_volume_report_marks_a_corrupt_checkpoint_and_runs_as_a_script(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    _save(folder, 1, np.zeros(3, "float32"), "epoch")
    (folder / "ckpt-000001-0000000010" / "state.bin").write_bytes(b"garbage")
    # As the real backend runs it: python -c SOURCE FOLDER.
    source = Path(volume_report.__file__).read_text()
    result = subprocess.run(
        [sys.executable, "-c", source, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert "corrupt" in report["checkpoints"][0]
    assert volume_report.describe(tmp_path / "absent")["checkpoints"] == []


class _FakePods(E2ECluster):
    """Only ``pods`` is used by the recorder; the rest is not called."""

    def __init__(self) -> None:
        self.current: list[dict[str, Any]] = []
        self.recorders = []

    def pods(self, job: str) -> list[dict[str, Any]]:
        return list(self.current)

    def pod_history(self, pod: str) -> list[dict[str, Any]]:
        return [p for p in self.current if p["metadata"]["name"] == pod]

    apply = get = patch_job = delete_job = events = volume_report = None  # type: ignore[assignment]
    preempt = crash = lose_node = kill_operator = start_operator = None  # type: ignore[assignment]


def _pod(name: str, phase: str, exit_code: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if exit_code is not None:
        status["containerStatuses"] = [
            {"state": {"terminated": {"exitCode": exit_code, "message": '{"outcome":"failed"}'}}}
        ]
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "status": status}


def test_recorder_sees_ends_gaps_and_two_live_pods() -> None:
    cluster = _FakePods()
    recorder = PodRecorder(cluster, "job")
    cluster.current = [_pod("job-1", "Running")]
    recorder.poll()
    cluster.current = [_pod("job-1", "Failed", 1)]
    recorder.poll()
    cluster.current = [_pod("job-2", "Running"), _pod("job-3", "Pending")]
    recorder.poll()
    first, second, third = recorder.pods()
    assert recorder.names() == ["job-1", "job-2", "job-3"]
    assert first.ended is not None
    assert first.exit_code == 1
    assert first.gone is not None
    assert first.gone >= first.ended
    assert second.ended is None
    assert third.ended is None
    assert recorder.max_live == 2, "two pods at once is what the scenarios assert never happens"


class _BrokenPods(_FakePods):
    def pods(self, job: str) -> list[dict[str, Any]]:
        raise RuntimeError("the API went away")


def test_recorder_errors_fail_the_block_and_each_tests_teardown() -> None:
    cluster = _BrokenPods()
    with pytest.raises(AssertionError, match="failed to poll"), PodRecorder(cluster, "job", 0.01):
        time.sleep(0.1)
    errors = cluster.harness_errors()  # what tests/e2e/conftest.py asserts empty after each test
    assert errors
    assert "RuntimeError: the API went away" in errors[0]
    assert cluster.harness_errors() == [], "reported once"


def test_cluster_settings_reject_an_unknown_operator_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REKINDLE_E2E_OPERATOR", "helm")
    with pytest.raises(ValueError, match="REKINDLE_E2E_OPERATOR must be 'deployed' or 'local'"):
        Settings.from_environment("/k")
    monkeypatch.setenv("REKINDLE_E2E_OPERATOR", "local")
    monkeypatch.setenv("REKINDLE_E2E_IMAGE", "trainer:dev")
    settings = Settings.from_environment("/k")
    assert (settings.operator, settings.image, settings.namespace) == ("local", "trainer:dev", "")


def test_the_skip_reason_says_what_to_set() -> None:
    assert SKIP_REASON.startswith(f"set {KUBECONFIG_ENV} ")
    assert "docs/e2e-on-kind.md" in SKIP_REASON


def test_volume_report_waits_for_an_epoch_or_gives_up(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    _save(folder, 2, np.zeros(3, "float32"), "epoch")
    assert volume_report.wait_for_epoch(folder, 2, timeout=0.0)
    started = time.monotonic()
    assert not volume_report.wait_for_epoch(folder, 3, timeout=0.3, interval=0.05)
    assert time.monotonic() - started >= 0.3
    assert volume_report.main([str(folder), "3", "0.1"]) == 1
    assert volume_report.main([str(folder), "2", "0.1"]) == 0


def test_termination_is_the_last_terminated_state_seen() -> None:
    cluster = _FakePods()
    cluster.current = [_pod("job-1", "Running"), _pod("job-1", "Failed", 143)]
    assert cluster.termination("job-1")["exitCode"] == 143
    cluster.current = [_pod("job-2", "Running")]
    with pytest.raises(AssertionError, match="never seen terminated"):
        cluster.termination("job-2")
