"""The ``rekindle`` command: one entry point, a subcommand per job.

Each subcommand lives in its own module and registers itself in
:data:`SUBCOMMANDS`; this module only parses arguments and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from rekindle_operator import __version__

#: name -> (help, add_arguments, run). ``run`` returns the process exit code.
Subcommand = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]
]
SUBCOMMANDS: dict[str, Subcommand] = {}


#: Modules that register a subcommand in :data:`SUBCOMMANDS` when imported.
#: Their heavy imports (kopf, TensorFlow) stay inside their ``run`` functions.
_SUBCOMMAND_MODULES: tuple[str, ...] = (
    "rekindle_operator.operator_command",
    "rekindle_operator.run_command",
)


def _load_subcommands() -> None:
    """Import the subcommand modules so that they register themselves."""
    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``rekindle`` and all its subcommands."""
    _load_subcommands()
    parser = argparse.ArgumentParser(
        prog="rekindle",
        description=(
            "Fault-tolerant Keras training: run TrainingJobs locally or operate them on Kubernetes."
        ),
    )
    parser.add_argument("--version", action="version", version=f"rekindle {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in sorted(SUBCOMMANDS.items()):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
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
    # Under ``python -m`` this file runs as ``__main__``, a second copy of the module;
    # subcommands register into ``rekindle_operator.cli``, so dispatch through that one.
    from rekindle_operator.cli import main as registered_main

    raise SystemExit(registered_main())
