"""A real ``kopf run`` process against a cluster, for tests that need the operator as users run it.

:class:`KopfProcess` starts ``python -m kopf run …`` with ``KUBECONFIG`` set,
waits for kopf's own liveness endpoint to answer (all watch-streams started),
and stops it with SIGTERM (or kills it with SIGKILL, as a node failure would).
Its output goes to a log file that failing tests print.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveProcess:
    """A subprocess that is ready once an HTTP health URL answers 200.

    Its stdout and stderr go to ``log`` (appended to across restarts), which
    failing tests print; it stops with SIGTERM or dies with SIGKILL.
    """

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], log: Path, health_url: str
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.health_url = health_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 60) -> Self:
        """Start it and wait until the health URL answers 200."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the process exited with {self.process.returncode} before it was "
                    f"ready:\n{self.log_text()[-4000:]}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(self.health_url, timeout=1) as response,
            ):
                if response.status == 200:
                    return self
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"not ready within {ready_timeout}s:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)

    def log_text(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """SIGKILL: the process dies without cleaning up, as on a lost node."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()


class KopfProcess(LiveProcess):
    """One ``kopf run`` subprocess."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        kubeconfig: Path,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare ``kopf run ARGS`` (e.g. ``["--standalone", "-n", "ns", "op.py"]``).

        Args:
            args: arguments after ``kopf run`` (no ``--liveness``: it is added).
            kubeconfig: the cluster's kubeconfig (``KUBECONFIG`` of the process).
            log: file that receives the process's stdout and stderr.
            env: extra environment variables.
        """
        self.port = free_port()
        health_url = f"http://127.0.0.1:{self.port}/healthz"
        argv = [sys.executable, "-m", "kopf", "run", "--verbose", "--liveness", health_url, *args]
        super().__init__(
            argv,
            env={**os.environ, "KUBECONFIG": str(kubeconfig), **(env or {})},
            log=log,
            health_url=health_url,
        )
