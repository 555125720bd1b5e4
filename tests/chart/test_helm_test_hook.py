"""The `helm test` hooks (templates/tests/): the metrics Service answers; a job is handled.

The second hook's script (files/hooks/rekindle_hooks.py test-trainingjob) runs
here against the emulated cluster of tests/e2e with the real operator process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chart import rendering as r
from tests.e2e.emulated import EmulatedCluster
from tests.kube.cluster import Cluster

HOOKS_SCRIPT = r.CHART_DIR / "files" / "hooks" / "rekindle_hooks.py"


def _test_objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects of the `helm test` hooks."""
    return [o for o in r.objects(values) if "/templates/tests/" in o["_template"]]


def _metrics_pod(values: dict[str, Any] | None = None) -> dict[str, Any]:
    (pod,) = [o for o in _test_objects(values) if o["metadata"]["name"] == "rk-rekindle-test"]
    return pod


def _job_test(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The TrainingJob check's objects, by kind."""
    return {
        o["kind"]: o
        for o in _test_objects(values)
        if o["metadata"]["name"] == "rk-rekindle-test-trainingjob"
    }


def test_is_a_test_hook_that_cleans_up_after_itself() -> None:
    pod = _metrics_pod()
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "test"
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    assert pod["spec"]["restartPolicy"] == "Never"
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert f"http://rk-rekindle-metrics.{r.NAMESPACE}.svc:8000/metrics" in container["command"][2]


def test_can_be_switched_off() -> None:
    assert not _test_objects({"tests": {"enabled": False}})
    assert not r.of_kind(r.objects({"tests": {"enabled": False}}), "Pod")


class _Metrics(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: object) -> None:
        pass


def _run_script_against(body: bytes) -> subprocess.CompletedProcess[str]:
    """Run the hook's Python script with its URL pointed at a local server."""
    _Metrics.body = body
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        script = _metrics_pod()["spec"]["containers"][0]["command"][2]
        url = f"http://rk-rekindle-metrics.{r.NAMESPACE}.svc:8000/metrics"
        script = script.replace(url, f"http://127.0.0.1:{server.server_address[1]}/metrics")
        return subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        server.shutdown()


def test_script_passes_on_operator_metrics_and_fails_otherwise() -> None:
    good = _run_script_against(b"# TYPE rekindle_operator_jobs gauge\nrekindle_operator_jobs 0\n")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _run_script_against(b"something_else 1\n")
    assert bad.returncode != 0
    assert "without rekindle_operator_ metrics" in bad.stderr


# --------------------------------------------------------------------------
# A suspended TrainingJob, marked Suspended by the operator, deleted.
# --------------------------------------------------------------------------


def test_trainingjob_check_is_a_test_hook_after_its_rbac() -> None:
    objs = _job_test()
    assert sorted(objs) == ["Pod", "Role", "RoleBinding", "ServiceAccount"]
    for obj in objs.values():
        annotations = obj["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test", obj["kind"]
        assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    weight = {
        kind: int(o["metadata"]["annotations"]["helm.sh/hook-weight"]) for kind, o in objs.items()
    }
    assert max(weight["ServiceAccount"], weight["Role"], weight["RoleBinding"]) < weight["Pod"]


@pytest.mark.parametrize(
    ("values", "namespace"),
    [({}, r.NAMESPACE), (r.nested({"watch.scope": "namespaced"}), r.WATCHED[0])],
)
def test_trainingjob_check_runs_where_the_operator_watches_with_least_rights(
    values: dict[str, Any], namespace: str
) -> None:
    objs = _job_test(values)
    assert objs["Role"]["metadata"]["namespace"] == namespace
    assert objs["Role"]["rules"] == [
        {
            "apiGroups": ["rekindle.dev"],
            "resources": ["trainingjobs"],
            "verbs": ["create", "get", "delete"],
        }
    ]
    binding = objs["RoleBinding"]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"]["name"] == objs["Role"]["metadata"]["name"]
    account = objs["ServiceAccount"]["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": r.NAMESPACE}
    ]
    pod = objs["Pod"]
    assert pod["spec"]["serviceAccountName"] == account["name"]
    (container,) = pod["spec"]["containers"]
    assert container["command"][:2] == ["python3", "-c"]
    assert container["command"][2].rstrip("\n") == HOOKS_SCRIPT.read_text().rstrip("\n")
    assert container["command"][3:5] == ["test-trainingjob", f"--namespace={namespace}"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_trainingjob_check_needs_the_charts_rbac() -> None:
    assert not _job_test({"rbac": {"create": False}})
    assert _metrics_pod({"rbac": {"create": False}})


def _run_check(url: str, namespace: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """The test pod's command, against an emulated API server."""
    return subprocess.run(
        [
            sys.executable,
            str(HOOKS_SCRIPT),
            "test-trainingjob",
            f"--namespace={namespace}",
            "--image=ghcr.io/rekindle-dev/trainer:0.1.0",
            f"--timeout={timeout}",
            "--operator=rekindle-system deployment/rk-rekindle",
        ],
        capture_output=True,
        text=True,
        timeout=timeout * 3 + 30,
        env={**os.environ, "REKINDLE_API_URL": url},
        check=False,
    )


def test_trainingjob_check_passes_against_the_real_operator(tmp_path: Path) -> None:
    cluster = EmulatedCluster(tmp_path, namespace="ml").start()
    try:
        result = _run_check(cluster.cluster.url, "ml", timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "the operator marked it Suspended: Suspended:" in result.stdout
        assert not cluster.cluster.list("trainingjobs", "ml"), "the test job was left behind"
    finally:
        cluster.stop()


def test_trainingjob_check_fails_naming_the_operator_when_none_runs(tmp_path: Path) -> None:
    with Cluster(tmp_path / "cluster") as cluster:
        cluster.install_crds(r.CHART_DIR / "crds")
        cluster.ensure_namespace("ml")
        result = _run_check(cluster.url, "ml", timeout=2)
        assert result.returncode == 1
        assert "did not mark the job Suspended within 2 s" in result.stderr
        assert "kubectl logs -n rekindle-system deployment/rk-rekindle" in result.stderr
        assert not cluster.list("trainingjobs", "ml"), "the test job was left behind"


def test_trainingjob_check_says_when_it_may_not_create_the_job(tmp_path: Path) -> None:
    with Cluster(tmp_path / "cluster") as cluster:  # no CRD: the API answers 404
        result = _run_check(cluster.url, "ml", timeout=2)
    assert result.returncode == 1
    assert "creating a TrainingJob in ml failed: HTTP 404" in result.stderr
