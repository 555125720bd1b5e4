"""``rekindle-train``: the trainer image's program.

Reads its configuration from the environment the operator sets (see
``docs/contract.md``); the options below override those variables for local
use. It imports the configuration's ``entrypoint`` (``module:function``),
calls it for a compiled model and data, trains with checkpoints, resume and
early stopping, writes the termination message and exits with the contract's
code: 0 finished, 143 preempted after a save, 2 invalid configuration or user
code that cannot load, 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rekindle_trainer import contract


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rekindle-train",
        description="Train a Keras model that resumes exactly and stops early "
        "(configuration: REKINDLE_* environment, see docs/contract.md).",
    )
    parser.add_argument(
        "--config", metavar="FILE", help=f"JSON/YAML config (sets {contract.ENV_CONFIG_FILE})"
    )
    parser.add_argument(
        "--checkpoint-dir", metavar="DIR", help=f"sets {contract.ENV_CHECKPOINT_DIR}"
    )
    parser.add_argument("--attempt", metavar="N", help=f"sets {contract.ENV_ATTEMPT}")
    parser.add_argument(
        "--metrics-port", metavar="PORT", help=f"sets {contract.ENV_METRICS_PORT} (0: off)"
    )
    parser.add_argument(
        "--termination-log", metavar="FILE", help=f"sets {contract.ENV_TERMINATION_LOG}"
    )
    parser.add_argument(
        "--progress-file", metavar="FILE", help=f"sets {contract.ENV_PROGRESS_FILE}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one attempt; return the contract's exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    env = dict(os.environ)
    overrides = {
        contract.ENV_CHECKPOINT_DIR: args.checkpoint_dir,
        contract.ENV_ATTEMPT: args.attempt,
        contract.ENV_METRICS_PORT: args.metrics_port,
        contract.ENV_TERMINATION_LOG: args.termination_log,
        contract.ENV_PROGRESS_FILE: args.progress_file,
    }
    if args.config is not None:
        env.pop(contract.ENV_CONFIG, None)
        env[contract.ENV_CONFIG_FILE] = args.config
    env.update({k: v for k, v in overrides.items() if v is not None})

    # Imported after argument parsing so that --help answers without TensorFlow.
    from rekindle_trainer.training.session import session  # noqa: PLC0415
    from rekindle_trainer.training.setup import check_setup, load_entrypoint  # noqa: PLC0415

    with session(env, require_entrypoint=True) as run:
        if run.message is None:
            assert run.config.entrypoint is not None
            build = load_entrypoint(run.config.entrypoint)
            with run.strategy.scope():
                setup = check_setup(build(run.config), run.config.entrypoint)
            run.run(setup)
    return run.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
