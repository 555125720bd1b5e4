"""``rekindle run MANIFEST``: run a TrainingJob on this machine, no cluster needed.

The manifest is validated against the CRD first (nothing is written when it is
invalid); the job's status and checkpoints live in a work folder, so that a
second run of the same manifest resumes. See ``docs/local-run.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

HELP: Final = "run a TrainingJob on this machine (no cluster) with the operator's restart logic"

EPILOG: Final = """\
faults (--inject, repeatable; each fires once, in the attempt that reaches its point):
  sigkill@epoch=E    SIGKILL once epoch E has ended: no save, the attempt is lost (NodeLost)
  sigterm@step=N     SIGTERM at step N: the trainer saves and exits 143 (Preempted)
  crash@seconds=T    SIGABRT T seconds after the first attempt started (Crashed, backoff)
  sigkill@step=N,worker=1   with spec.workers above 1: hit worker 1 (default: 0, the chief)
  Points are approximate (the runner learns them from the progress file); the
  resume is exact regardless.

Ctrl-C is a preemption: the trainer saves, the status is kept, and running the
same command again resumes. Exit status: 0 Succeeded (or suspended), 1 Failed,
2 invalid input, 130 interrupted.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rekindle run``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("manifest", type=Path, metavar="MANIFEST", help="TrainingJob YAML file")
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="where the job's status, checkpoints and attempt logs live "
        "(default: .rekindle/<metadata.name>)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="forget the status and checkpoints of earlier runs in the work folder and start over",
    )
    parser.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="FAULT",
        help="inject a fault: ACTION@TRIGGER=VALUE[,worker=N] with ACTION sigkill|sigterm|crash "
        "and TRIGGER step|epoch|seconds (e.g. sigkill@epoch=3); repeatable",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="port of the trainer's Prometheus metrics on localhost "
        "(default: 9102, or a free port when it is taken; 0 disables)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="show only the runner's events and the summary, not the trainer's epochs and bars",
    )


def run(args: argparse.Namespace) -> int:
    """Validate, then run the job to its end; the exit status."""
    from rekindle_operator.local import launch  # noqa: PLC0415  (keeps --help fast)

    return launch.run_from_args(
        manifest=args.manifest,
        workdir=args.workdir,
        fresh=args.fresh,
        inject=list(args.inject),
        metrics_port=args.metrics_port,
        progress=not args.no_progress,
        out=sys.stdout,
        err=sys.stderr,
    )
