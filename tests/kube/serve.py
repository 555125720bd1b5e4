"""``python -m tests.kube serve``: the emulated cluster by hand, for kubectl and a person.

Starts the emulated API server on 127.0.0.1 with the chart's CRDs, a
namespace, one node (the process kubelet: pods run as local processes of
this virtualenv) and, with ``--operator``, the real ``rekindle operator``
watching it as the chart's service account (the chart's RBAC installed);
writes a kubeconfig and prints how to point kubectl at it; runs until Ctrl-C
(or SIGTERM), then stops everything it started. Rekindle's
operator can be tried so with no cluster at all (docs/emulated-cluster.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tests.kube import chart_rbac
from tests.kube.cluster import Cluster, kubeconfig_text
from tests.kube.fixtures import CHART_CRDS, PASSED_THROUGH_ENV
from tests.support.operator_process import OperatorProcess

DEFAULT_WORKDIR = Path(".rekindle") / "emulated-cluster"


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m tests.kube``."""
    top = argparse.ArgumentParser(
        prog="python -m tests.kube",
        description="The emulated Kubernetes API of Rekindle's tests, for kubectl and you.",
    )
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve an emulated cluster until Ctrl-C; prints its kubeconfig",
        description="Serve the emulated cluster (API, CRDs, one process node) until Ctrl-C.",
    )
    serve.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"where the kubeconfig, pods' files and logs go (default {DEFAULT_WORKDIR})",
    )
    serve.add_argument("--port", type=int, default=None, help="API port (default: a free one)")
    serve.add_argument(
        "--namespace", default="default", help="the kubeconfig's namespace (created if absent)"
    )
    serve.add_argument(
        "--operator",
        action="store_true",
        help="also run the Rekindle operator against it (its log: WORKDIR/operator.log)",
    )
    return top


class Served:
    """What ``serve`` started; :meth:`stop` stops it in reverse order."""

    def __init__(self, workdir: Path, port: int | None, namespace: str) -> None:
        self.workdir = workdir.resolve()
        self.cluster = Cluster(self.workdir / "cluster", port=port)
        self.namespace = namespace
        self.operator: OperatorProcess | None = None

    def start(self, *, with_operator: bool) -> Served:
        """API server, CRDs, namespace, node; then the operator when asked."""
        self.cluster.start()
        try:
            self.cluster.install_crds(CHART_CRDS)
            self.cluster.ensure_namespace(self.namespace)
            self.cluster.kubeconfig.write_text(kubeconfig_text(self.cluster.url, self.namespace))
            env = {name: os.environ[name] for name in PASSED_THROUGH_ENV if name in os.environ}
            self.cluster.start_kubelet(self.workdir / "node", env=env)
            if with_operator:  # as the chart's service account, under the chart's RBAC
                identity = chart_rbac.install(self.cluster)
                kubeconfig = self.cluster.kubeconfig_for(identity, self.namespace)
                log = self.workdir / "operator.log"
                self.operator = OperatorProcess(kubeconfig, log).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the operator, then the node and the API server."""
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        self.cluster.stop()

    def banner(self) -> str:
        """What to tell the person who started it."""
        lines = [
            f"Emulated cluster serving at {self.cluster.url} (namespace {self.namespace})",
            f"kubeconfig: {self.cluster.kubeconfig}",
            "",
            f"  export KUBECONFIG={self.cluster.kubeconfig}",
            "  kubectl apply -f examples/digits.yaml",
            "  kubectl get tj -w",
            "",
        ]
        if self.operator is not None:
            lines.insert(2, f"operator log: {self.operator.log}")
        else:
            lines.insert(2, "no operator: start one with --operator, or run `rekindle operator`")
        lines.append("Ctrl-C stops it.")
        return "\n".join(lines)


def serve(args: argparse.Namespace, stop: threading.Event) -> int:
    """Start, print the banner, wait for ``stop``, stop."""
    served = Served(args.workdir, args.port, args.namespace).start(with_operator=args.operator)
    try:
        print(served.banner(), flush=True)
        stop.wait()
    finally:
        served.stop()
    print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.kube serve [--operator] [--workdir DIR] [--port N]``."""
    args = parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return serve(args, stop)
