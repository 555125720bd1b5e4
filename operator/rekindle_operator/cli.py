"""The ``rekindle`` command: one entry point, a subcommand per job.

The subcommands are listed once in :data:`SUBCOMMANDS`; each module keeps its
heavy imports (kopf, TensorFlow) inside its ``run`` function, so that
``rekindle --help`` stays fast. This module only parses arguments and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from rekindle_operator import __version__
from rekindle_operator.cluster import operator_command
from rekindle_operator.local import run_command


@dataclass(frozen=True)
class Subcommand:
    """One ``rekindle`` subcommand: its help, its options and what it runs (the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: Final[Mapping[str, Subcommand]] = {
    "operator": Subcommand(
        operator_command.HELP, operator_command.add_arguments, operator_command.run
    ),
    "run": Subcommand(run_command.HELP, run_command.add_arguments, run_command.run),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``rekindle`` and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="rekindle",
        description=(
            "Fault-tolerant Keras training: run TrainingJobs locally or operate them on Kubernetes."
        ),
    )
    parser.add_argument("--version", action="version", version=f"rekindle {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, subcommand in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(sub)
        sub.set_defaults(run=subcommand.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
