"""The real ``kubectl``, run as a user runs it, against a kubeconfig.

Tests of the emulated cluster and the end-to-end scenarios drive it through
this: ``kubectl`` from PATH (1.32 here and on CI; :func:`need_kubectl` skips
without it locally and fails under ``CI=true``), ``KUBECONFIG`` pointing at
the cluster and a discovery cache of the test's own (``KUBECACHEDIR``), so
that the command lines are exactly what a user types.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.deps import need

#: The kubectl these tests are written against (its minor version; others may differ in output).
KUBECTL_MINOR = 32


def need_kubectl() -> str:
    """The path of ``kubectl``, or skip (fail under ``CI=true``) saying how to get it."""
    path = shutil.which("kubectl")
    need(
        path is not None,
        "kubectl not found on PATH; install kubectl 1.32 "
        "(https://kubernetes.io/docs/tasks/tools/#kubectl)",
    )
    assert path is not None
    return path


class KubectlError(AssertionError):
    """kubectl exited non-zero where the test expected success; carries its output."""


@dataclass(frozen=True)
class Result:
    """One finished kubectl command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        """Non-empty lines of stdout."""
        return [line for line in self.stdout.splitlines() if line.strip()]


class Kubectl:
    """``kubectl`` bound to one kubeconfig (and optionally a namespace)."""

    def __init__(self, kubeconfig: Path, cache_dir: Path, namespace: str | None = None) -> None:
        self.binary = need_kubectl()
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.namespace = namespace

    def env(self) -> dict[str, str]:
        """The environment of each command: this cluster, this cache."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache_dir),
        }

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> Result:
        """Run ``kubectl ARGS`` (``-n NAMESPACE`` added when bound to one); KubectlError on failure
        when ``check``."""
        argv = self.argv(args)
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        result = Result(tuple(argv[1:]), done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(result.args)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return result

    def argv(self, args: Sequence[str]) -> list[str]:
        """The command line of ``kubectl ARGS`` (``-n NAMESPACE`` added when bound to one)."""
        argv: list[str] = [self.binary, *args]
        if self.namespace is not None and not _names_namespace(args):
            argv += ["-n", self.namespace]
        return argv

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``kubectl ARGS`` in the background (``wait``, ``get -w``); text pipes."""
        return subprocess.Popen(
            self.argv(args),
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def json(self, *args: str) -> Any:
        """``kubectl ARGS -o json``, parsed."""
        return json.loads(self.run(*args, "-o", "json").stdout)

    def table(self, *args: str) -> list[dict[str, str]]:
        """``kubectl get ARGS`` as printed, one dict per row keyed by the column headers."""
        return parse_table(self.run("get", *args).stdout)


def _names_namespace(args: Sequence[str]) -> bool:
    return any(a in ("-n", "-A", "--all-namespaces") or a.startswith("--namespace") for a in args)


def parse_table(text: str) -> list[dict[str, str]]:
    """kubectl's printed table as rows: columns are cut where the header's words start."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    # A header of two words ("ACCESS MODES") is one column: a single space does not split.
    starts = [s for s in starts if s == 0 or header[s - 2 : s] == "  "]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return [
        {
            name: line[a:b].strip() if b is not None else line[a:].strip()
            for name, a, b in zip(names, starts, [*starts[1:], None], strict=True)
        }
        for line in lines[1:]
    ]
