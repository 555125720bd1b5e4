"""``rekindle operator``: run the kopf operator in this process.

Watches one namespace (``--namespace``, repeatable) or all of them
(``--all-namespaces``); serves the operator metrics on ``--metrics-port`` and
kopf's liveness probe on ``--liveness-port`` at ``/healthz``. With
``--peering NAME`` several replicas share one KopfPeering object and only the
one with the highest priority acts; ``--standalone`` turns peering off.
kopf is imported only when the subcommand runs, so ``rekindle --help`` stays fast.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass

HELP = "run the Kubernetes operator (kopf) that turns TrainingJobs into trainer pods"
DEFAULT_METRICS_PORT = 8000
DEFAULT_LIVENESS_PORT = 8080
LIVENESS_PATH = "/healthz"


@dataclass(frozen=True)
class OperatorOptions:
    """What the command line decides about one operator process (kept in kopf's memo)."""

    namespaces: tuple[str, ...]
    all_namespaces: bool
    metrics_port: int
    liveness_port: int
    peering: str | None
    standalone: bool
    priority: int
    log_format: str
    verbose: bool

    @property
    def liveness_endpoint(self) -> str:
        """The URL kopf serves its liveness probe on (all interfaces, as a pod needs)."""
        return f"http://0.0.0.0:{self.liveness_port}{LIVENESS_PATH}"


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 meaning "do not serve"."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 disables), got {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``rekindle operator``."""
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch TrainingJobs in this namespace (repeat for several)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch TrainingJobs cluster-wide"
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=DEFAULT_METRICS_PORT,
        help=f"serve operator metrics on /metrics here; 0 disables "
        f"(default {DEFAULT_METRICS_PORT})",
    )
    parser.add_argument(
        "--liveness-port",
        type=_port,
        default=DEFAULT_LIVENESS_PORT,
        help=f"serve kopf's liveness probe on {LIVENESS_PATH} here; 0 disables "
        f"(default {DEFAULT_LIVENESS_PORT})",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        metavar="NAME",
        help="KopfPeering object shared by the replicas: only the highest-priority one acts",
    )
    peering.add_argument(
        "--standalone", action="store_true", help="act alone, without peering (one replica only)"
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority of this replica: the highest acts, the others wait; replicas "
        "of equal priority would all pause, so the default is a random one",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "plain", "full"),
        default="json",
        help="structured JSON logs (default), or kopf's plain/full text format",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")


def random_priority() -> int:
    """A peering priority unlikely to equal another replica's (kopf pauses all tied replicas)."""
    return secrets.randbelow(1_000_000) + 1


def options_from(args: argparse.Namespace) -> OperatorOptions:
    """The :class:`OperatorOptions` that parsed arguments describe."""
    return OperatorOptions(
        namespaces=tuple(args.namespaces or ()),
        all_namespaces=bool(args.all_namespaces),
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        peering=args.peering,
        standalone=bool(args.standalone),
        priority=args.priority if args.priority is not None else random_priority(),
        log_format=args.log_format,
        verbose=bool(args.verbose),
    )


def run(args: argparse.Namespace) -> int:
    """Run the operator until it is stopped (SIGINT/SIGTERM); the exit code."""
    # Imported here, not at the top: `rekindle --help` and `rekindle run` need no kopf.
    import kopf  # noqa: PLC0415

    from rekindle_operator.cluster import registration  # noqa: PLC0415

    options = options_from(args)
    kopf.configure(
        verbose=options.verbose,
        log_format={
            "json": kopf.LogFormat.JSON,
            "plain": kopf.LogFormat.PLAIN,
            "full": kopf.LogFormat.FULL,
        }[options.log_format],
    )
    kopf.run(
        registry=registration.registry,
        clusterwide=options.all_namespaces,
        namespaces=options.namespaces,
        standalone=options.standalone,
        peering_name=options.peering,
        priority=options.priority,
        liveness_endpoint=options.liveness_endpoint if options.liveness_port else None,
        memo=kopf.Memo(options=options),
    )
    return 0
