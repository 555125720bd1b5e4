"""The `helm test` hook (templates/tests/test-metrics.yaml)."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.chart import rendering as r


def _pod() -> dict[str, object]:
    return r.one(r.objects({}), "Pod")


def test_is_a_test_hook_that_cleans_up_after_itself() -> None:
    pod = r.one(r.objects({}), "Pod")
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "test"
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    assert pod["spec"]["restartPolicy"] == "Never"
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert f"http://rk-rekindle-metrics.{r.NAMESPACE}.svc:8000/metrics" in container["command"][2]


def test_can_be_switched_off() -> None:
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
        pod = r.one(r.objects({}), "Pod")
        script = pod["spec"]["containers"][0]["command"][2]
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
