"""The real ``rekindle operator`` as a local process, against any kubeconfig.

Used by the emulated backend (kubeconfig of the emulated API server) and by the
real-cluster backend when the operator runs on the test machine
(``REKINDLE_E2E_OPERATOR=local``). It starts the console entry point exactly
as ``rekindle operator`` does, waits for kopf's liveness endpoint, and stops it
with SIGTERM or kills it with SIGKILL (an operator lost with its node).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tests.kube.kopf_process import free_port


class OperatorProcess:
    """One ``rekindle operator`` subprocess; its output goes to ``log``."""

    def __init__(self, kubeconfig: Path, log: Path, scope: Sequence[str]) -> None:
        """Prepare the command.

        Args:
            kubeconfig: the cluster's kubeconfig (``KUBECONFIG`` of the process).
            log: file receiving stdout and stderr (appended to across restarts).
            scope: ``["-A"]`` or ``["-n", NS]``.
        """
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.argv = [
            sys.executable,
            "-c",
            "from rekindle_operator.cli import main; raise SystemExit(main())",
            "operator",
            *scope,
            "--standalone",
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--log-format",
            "plain",
            "--verbose",
        ]
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 90) -> OperatorProcess:
        """Start it and wait until its liveness endpoint answers 200."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + ready_timeout
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"the operator exited with {code}:\n{self.log_text()[-4000:]}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=2) as response,
            ):
                if response.status == 200:
                    return self
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"not ready in {ready_timeout}s:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)

    def log_text(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
