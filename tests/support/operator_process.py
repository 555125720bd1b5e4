"""The real ``rekindle operator`` as a local process, against any kubeconfig.

Started through ``cli.main`` exactly as the console script runs it; ready when
kopf's liveness endpoint answers. Used by the operator's process tests, the
end-to-end backends and the operator benchmark.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.kube.kopf_process import LiveProcess, free_port


class OperatorProcess(LiveProcess):
    """One ``rekindle operator`` subprocess; its output goes to ``log``."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        args: Sequence[str] = ("-A", "--standalone"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare the command.

        Args:
            kubeconfig: the cluster's kubeconfig (``KUBECONFIG`` of the process).
            log: file receiving stdout and stderr (appended to across restarts).
            args: scope and peering flags, e.g. ``["-n", NS, "--standalone"]``.
            env: more environment (e.g. ``REKINDLE_TRAINER_ADDRESS_DIR``).
        """
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        argv = [
            sys.executable,
            "-c",
            "from rekindle_operator.cli import main; raise SystemExit(main())",
            "operator",
            *args,
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--log-format",
            "plain",
            "--verbose",
        ]
        super().__init__(
            argv,
            env={**os.environ, **(env or {}), "KUBECONFIG": str(kubeconfig)},
            log=log,
            health_url=f"http://127.0.0.1:{self.liveness_port}/healthz",
        )

    def get(self, which: str, path: str) -> tuple[int, str]:
        """GET ``path`` on the ``metrics`` or ``liveness`` port: (status, body)."""
        port = self.metrics_port if which == "metrics" else self.liveness_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path, log: Path, args: Sequence[str] = ("-A", "--standalone")
) -> Iterator[OperatorProcess]:
    """A started operator, stopped afterwards with the tail of its log printed (kept on failure)."""
    process = OperatorProcess(kubeconfig, log, args).start()
    try:
        yield process
    finally:
        process.stop()
        print(f"--- operator log ---\n{process.log_text()[-30000:]}")
