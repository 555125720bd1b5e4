"""One attempt of the trainer as a local process, and how it ended.

:func:`trainer_env` is the contract's environment (``docs/contract.md``) for
an attempt, built the way the operator builds it for a pod. :class:`Attempt`
starts the process in its own session (so a Ctrl-C at the terminal reaches
only ``rekindle run``, which turns it into a preemption), sends signals, and
collects the end as a container runtime would report it: the exit code
(128 + N for a process killed by signal N) and the termination message file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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
    def under(cls, attempts_dir: Path, attempt: int) -> AttemptFiles:
        """The files of attempt ``attempt`` (``attempts/0003/…``)."""
        folder = attempts_dir / f"{attempt:04d}"
        return cls(
            folder=folder,
            termination_log=folder / "termination-log",
            progress_file=folder / "progress.jsonl",
            output_log=folder / "trainer.log",
        )


@dataclass(frozen=True)
class JobIdentity:
    """Who the trainer works for (names its logs and metrics)."""

    name: str
    namespace: str
    uid: str


def trainer_env(
    base: Mapping[str, str],
    *,
    config: Mapping[str, Any],
    checkpoint_dir: Path,
    attempt: int,
    job: JobIdentity,
    metrics_port: int,
    files: AttemptFiles,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one attempt: ``base`` plus the contract's variables.

    ``extra`` (the spec's ``template.env`` values) comes before the contract's
    variables, so that a manifest cannot point the trainer at another
    checkpoint folder by accident.
    """
    env = dict(base)
    env.pop(contract.ENV_CONFIG_FILE, None)
    env.update(extra or {})
    env.update(
        {
            contract.ENV_CONFIG: json.dumps(dict(config), separators=(",", ":"), sort_keys=True),
            contract.ENV_CHECKPOINT_DIR: str(checkpoint_dir),
            contract.ENV_ATTEMPT: str(attempt),
            contract.ENV_JOB_NAME: job.name,
            contract.ENV_JOB_NAMESPACE: job.namespace,
            contract.ENV_JOB_UID: job.uid,
            contract.ENV_METRICS_PORT: str(metrics_port),
            contract.ENV_TERMINATION_LOG: str(files.termination_log),
            contract.ENV_PROGRESS_FILE: str(files.progress_file),
            # The trainer's output goes to a file; Python must not hold it back.
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def exit_code_of(returncode: int) -> int:
    """A ``Popen.returncode`` as a container runtime reports it (signal N → 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt's process ended, as observed from outside."""

    exit_code: int
    #: The termination message file's text; ``None`` when the trainer wrote none.
    termination_message: str | None
    #: The last lines of the trainer's own output (shown on failures).
    output_tail: str
    #: Wall-clock seconds the process ran.
    seconds: float

    @property
    def signal_name(self) -> str | None:
        """``SIGKILL`` etc. when the exit code says the process died of a signal."""
        if self.exit_code <= 128:
            return None
        try:
            return signal.Signals(self.exit_code - 128).name
        except ValueError:
            return None


class Attempt:
    """A running trainer process."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        files: AttemptFiles,
        cwd: Path | None = None,
    ) -> None:
        """Start ``command`` in its own session, output to ``files.output_log``."""
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
        """SIGKILL the trainer's whole session (it and anything it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> AttemptEnd | None:
        """Wait up to ``timeout`` s; how it ended, or ``None`` if it still runs."""
        try:
            returncode = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # Anything the trainer left behind in its session goes with it, as in a pod.
        self.kill_group()
        self._log.close()
        return AttemptEnd(
            exit_code=exit_code_of(returncode),
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
