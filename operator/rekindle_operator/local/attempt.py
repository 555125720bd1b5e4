"""One attempt of the trainer as a local process, and how it ended.

:func:`process_env` is the contract's environment (``docs/contract.md``) for
an attempt, from the same :mod:`~rekindle_operator.resources.trainer_env` as a
pod's. :class:`Attempt` starts the process in its own process group (so a
Ctrl-C at the terminal reaches only ``rekindle run``, which turns it into a
preemption), sends signals, and collects the end as a container runtime would
report it: the exit code
(128 + N for a process killed by signal N) and the termination message file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rekindle_operator.resources import classify, trainer_env
from rekindle_trainer import contract

#: How ``rekindle run`` starts the built-in trainer: the same interpreter, so
#: that the trainer is the one installed beside this ``rekindle``.
BUILTIN_TRAINER: Final = (sys.executable, "-m", "rekindle_trainer.cli")
#: Lines of the trainer's own output shown when an attempt fails.
LOG_TAIL_LINES: Final = 15


@dataclass(frozen=True)
class AttemptFiles:
    """The files of one attempt under the work folder."""

    folder: Path
    termination_log: Path
    progress_file: Path
    output_log: Path

    @classmethod
    def under(
        cls, attempts_dir: Path, attempt: int, worker: int = 0, workers: int = 1
    ) -> AttemptFiles:
        """The files of ``attempt``: ``attempts/0003/…`` (a gang's worker 1: ``0003/w1/…``)."""
        folder = attempts_dir / f"{attempt:04d}"
        if workers > 1:
            folder /= f"w{worker}"
        return cls(
            folder=folder,
            termination_log=folder / "termination-log",
            progress_file=folder / "progress.jsonl",
            output_log=folder / "trainer.log",
        )


def process_env(
    base: Mapping[str, str],
    *,
    config: Mapping[str, Any],
    checkpoint_dir: Path,
    attempt: int,
    job: trainer_env.JobIdentity,
    metrics_port: int,
    files: AttemptFiles,
    extra: Mapping[str, str] | None = None,
    tf_config: str | None = None,
) -> dict[str, str]:
    """The environment of one attempt: ``base`` plus the contract's variables.

    ``extra`` (the spec's ``template.env`` values) comes before the contract's
    variables, so that a manifest cannot point the trainer at another
    checkpoint folder by accident. ``tf_config``: a gang worker's ``TF_CONFIG``.
    """
    env = dict(base)
    env.pop(contract.ENV_CONFIG_FILE, None)
    env.pop(contract.ENV_TF_CONFIG, None)  # a gang's is given below; one worker has none
    env.update(extra or {})
    env.update(
        trainer_env.variables(
            config=config,
            checkpoint_dir=str(checkpoint_dir),
            attempt=attempt,
            job=job,
            metrics_port=metrics_port,
            termination_log=str(files.termination_log),
            progress_file=str(files.progress_file),
            tf_config=tf_config,
        )
    )
    # The trainer's output goes to a file; Python must not hold it back.
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True)
class ProcessExit:
    """How an attempt's process ended, as a container runtime would report it."""

    #: The exit code, 128 + N for a process killed by signal N.
    exit_code: int
    #: The termination message file's text; ``None`` when the trainer wrote none.
    termination_message: str | None
    #: The last lines of the trainer's own output (shown on failures).
    output_tail: str
    #: Wall-clock seconds the process ran.
    seconds: float


class Attempt:
    """A running trainer process."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        files: AttemptFiles,
        cwd: Path | None = None,
    ) -> None:
        """Start ``command`` in its own process group, output to ``files.output_log``."""
        files.folder.mkdir(parents=True, exist_ok=True)
        for stale in (files.termination_log, files.progress_file):
            stale.unlink(missing_ok=True)
        self.files = files
        self._started = time.monotonic()
        self._log = files.output_log.open("wb")
        try:
            self._process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        """The trainer's process id."""
        return self._process.pid

    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self._process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the trainer (not to its children: it handles its own)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):  # exited in between
                self._process.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL the trainer's whole process group (it and anything it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> ProcessExit | None:
        """Wait up to ``timeout`` s; how it ended, or ``None`` if it still runs."""
        try:
            returncode = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # Anything the trainer left behind in its process group goes with it, as in a pod.
        self.kill_group()
        self._log.close()
        return ProcessExit(
            exit_code=classify.exit_code_of(returncode),
            termination_message=_read_text(self.files.termination_log),
            output_tail=_tail(self.files.output_log, LOG_TAIL_LINES),
            seconds=time.monotonic() - self._started,
        )


def _read_text(path: Path) -> str | None:
    """The file's text, or ``None`` when it is absent or empty."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return text if text.strip() else None


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a file (empty when absent)."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 16_384))
            data = stream.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
