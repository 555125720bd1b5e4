"""``python -m tests.kube serve``: the emulated cluster started by hand, driven by kubectl."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.deps import REPO_ROOT
from tests.support.kubectl import Kubectl


def read_until(process: subprocess.Popen[str], prefix: str, timeout: float = 60) -> str:
    """The first line of the process's stdout that starts with ``prefix``."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no {prefix!r} line; exit {process.poll()}")


def test_serve_prints_a_kubeconfig_kubectl_uses_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    workdir = tmp_path / "served"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.kube",
            "serve",
            "--workdir",
            str(workdir),
            "--namespace",
            "team",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        kubeconfig = Path(read_until(process, "kubeconfig: "))
        assert kubeconfig == workdir.resolve() / "cluster" / "kubeconfig"
        kubectl = Kubectl(kubeconfig, tmp_path / "cache")
        assert (
            kubectl.run("config", "view", "--minify", "-o", "jsonpath={..namespace}").stdout
            == "team"
        )
        applied = kubectl.run("apply", "-f", str(REPO_ROOT / "examples" / "digits.yaml"))
        assert applied.stdout.strip() == "trainingjob.rekindle.dev/digits created"
        assert kubectl.run("get", "tj", "-o", "name").lines() == ["trainingjob.rekindle.dev/digits"]
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert out.strip().endswith("stopped")
