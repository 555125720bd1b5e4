"""The work folder of a local run: the job's record, checkpoints, attempts.

``rekindle run`` keeps what a cluster would keep in etcd and on the volume in
one folder, so that a second run of the same manifest resumes::

    <workdir>/job.json        the TrainingJob as applied, with its status
    <workdir>/checkpoints/    REKINDLE_CHECKPOINT_DIR (the trainer's volume)
    <workdir>/attempts/0001/  termination-log, progress.jsonl, trainer.log
    <workdir>/events.log      one line per event, as ``kubectl get events``
    <workdir>/trainer.pid     the running attempt's process id

``job.json`` is replaced atomically (write, fsync, rename), so an interrupted
``rekindle run`` never leaves a half-written record. Checkpoints are only ever
removed by :meth:`Workdir.wipe` (``--fresh``), never because an attempt failed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"
CHECKPOINTS = "checkpoints"
ATTEMPTS = "attempts"
EVENTS_LOG = "events.log"
#: The running attempt's process id (see :func:`rekindle_operator.local.runner.left_trainer`).
PID_FILE = "trainer.pid"


class WorkdirError(Exception):
    """The work folder cannot be used for this manifest; the message says why and what to do."""


@dataclass(frozen=True)
class Workdir:
    """The paths of one job's work folder."""

    root: Path

    @property
    def job_file(self) -> Path:
        """The job's record: manifest, generation, uid and status."""
        return self.root / JOB_FILE

    @property
    def checkpoint_dir(self) -> Path:
        """The trainer's checkpoint folder."""
        return self.root / CHECKPOINTS

    @property
    def attempts_dir(self) -> Path:
        """One folder per attempt."""
        return self.root / ATTEMPTS

    @property
    def events_log(self) -> Path:
        """The event lines, appended across runs."""
        return self.root / EVENTS_LOG

    def wipe(self) -> None:
        """Remove what earlier runs left (``--fresh``); other files stay."""
        for name in (JOB_FILE, EVENTS_LOG, PID_FILE):
            (self.root / name).unlink(missing_ok=True)
        for folder in (self.checkpoint_dir, self.attempts_dir):
            if folder.exists():
                shutil.rmtree(folder)

    def prepare(self) -> None:
        """Create the folders an attempt needs."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.attempts_dir.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, Any] | None:
        """The stored job record, or ``None`` on a first run."""
        try:
            text = self.job_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkdirError(
                f"{self.job_file} is not valid JSON ({exc}); run with --fresh to start over"
            ) from exc
        if not isinstance(record, dict):
            raise WorkdirError(f"{self.job_file} is not a job record; run with --fresh")
        return record

    def save(self, record: dict[str, Any]) -> None:
        """Replace the job record atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.job_file.with_name(f".{JOB_FILE}.tmp")
        with temporary.open("w", encoding="utf-8") as stream:
            json.dump(record, stream, indent=2, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(self.job_file)

    def append_event(self, line: str) -> None:
        """Append one event line to ``events.log``."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.events_log.open("a", encoding="utf-8") as stream:
            stream.write(line + "\n")


def new_uid() -> str:
    """A job uid, as the API server would assign one."""
    return str(uuid.uuid4())
