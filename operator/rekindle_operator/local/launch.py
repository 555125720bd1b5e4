"""From ``rekindle run``'s arguments to a running :class:`~.runner.LocalRunner`.

Everything that can be wrong with the input (the faults, the manifest, the
work folder) is checked here before anything is written: an invalid manifest
exits 2 naming each bad field and leaves the disk as it was.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Final, TextIO

from rekindle_operator.core import wording
from rekindle_operator.core.job_status import parse_status
from rekindle_operator.local import runner
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import FaultSchedule
from rekindle_operator.local.runner import EXIT_USAGE, LocalJob, LocalRunner, RunSettings
from rekindle_operator.local.workdir import Workdir, WorkdirError, new_uid
from rekindle_operator.resources import validation
from rekindle_trainer import contract
from rekindle_trainer.contract import documents

#: Where work folders go by default: ``.rekindle/<job name>`` under the current folder.
DEFAULT_WORKDIR_ROOT: Final = Path(".rekindle")
#: The namespace a local job reports to the trainer when its manifest names none.
LOCAL_NAMESPACE: Final = "local"


class UsageError(Exception):
    """The input cannot be run; the message says what to change."""


def run_from_args(
    *,
    manifest: Path,
    workdir: Path | None,
    fresh: bool,
    inject: list[str],
    metrics_port: int | None,
    progress: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """Check the input, then run the job; the exit status (see ``rekindle run --help``)."""
    try:
        faults = FaultSchedule.parse(inject)
        loaded = validation.load(manifest)
        faults.check_workers(loaded.spec.workers)
        folder = Workdir(workdir if workdir is not None else DEFAULT_WORKDIR_ROOT / loaded.name)
        port = pick_metrics_port(metrics_port)
        if fresh:
            _stop_left_trainer(folder, float(loaded.spec.termination_grace_period_seconds), err)
            folder.wipe()
        job = local_job(loaded, folder)
    except validation.ManifestError as exc:
        err.write(f"rekindle run: {exc}\n")
        err.write("rekindle run: nothing was run or written; fix the fields above\n")
        return EXIT_USAGE
    except (ValueError, UsageError, WorkdirError, OSError) as exc:
        err.write(f"rekindle run: {exc}\n")
        return EXIT_USAGE

    console = Console.for_stream(out, progress=progress)
    settings = RunSettings(
        workdir=folder,
        faults=faults,
        metrics_port=port,
        show_progress=progress,
        cwd=Path.cwd(),
    )
    local_runner = LocalRunner(job, settings, console)
    for line in header_lines(job, folder, port, faults):
        console.line(line)
    return local_runner.run()


def local_job(loaded: validation.Manifest, folder: Workdir) -> LocalJob:
    """The job from its manifest and what earlier runs stored in ``folder``.

    A record of another job is refused (one folder, one job). A changed spec
    bumps the generation, as the API server does on an update.
    """
    record = folder.load()
    namespace = loaded.namespace or LOCAL_NAMESPACE
    if record is None:
        return LocalJob(
            name=loaded.name,
            namespace=namespace,
            uid=new_uid(),
            generation=1,
            spec=loaded.spec,
            document=loaded.document,
        )
    meta = record.get("metadata") or {}
    if meta.get("name") != loaded.name:
        raise UsageError(
            f"{folder.root} holds job {meta.get('name')!r}, not {loaded.name!r}; "
            "pass another --workdir, or --fresh to reuse this one"
        )
    generation = int(meta.get("generation") or 1)
    if _canonical(record.get("spec")) != _canonical(loaded.document.get("spec")):
        generation += 1
    try:
        status = parse_status(record.get("status"))
    except documents.DocumentError as exc:
        raise UsageError(
            f"{folder.job_file}: the stored status is unreadable ({exc}); run with --fresh"
        ) from exc
    return LocalJob(
        name=loaded.name,
        namespace=namespace,
        uid=str(meta.get("uid") or new_uid()),
        generation=generation,
        spec=loaded.spec,
        document=loaded.document,
        status=status,
    )


def pick_metrics_port(requested: int | None) -> int:
    """The trainer's metrics port: as asked, or 9102, or a free one when 9102 is taken."""
    if requested is not None:
        if not 0 <= requested <= 65_535:
            raise UsageError(f"--metrics-port {requested}: use 0 (off) or a port up to 65535")
        return requested
    for candidate in (contract.DEFAULT_METRICS_PORT, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise UsageError("no free TCP port for the trainer's metrics; pass --metrics-port 0")


def header_lines(job: LocalJob, folder: Workdir, port: int, faults: FaultSchedule) -> list[str]:
    """What ``rekindle run`` tells the user before the first attempt."""
    metrics = (
        f"http://127.0.0.1:{port}{contract.METRICS_PATH} "
        "(served by the trainer while an attempt runs)"
        if port
        else "off (--metrics-port 0)"
    )
    lines = [
        f"rekindle run: TrainingJob {job.name} "
        f"({wording.counted(job.spec.training.epochs, 'epoch')} budget)",
        f"  work folder  {folder.root}  (status in {folder.job_file.name}, "
        f"checkpoints in {folder.checkpoint_dir.name}/)",
        f"  metrics      {metrics}",
    ]
    if faults.pending:
        lines.append(f"  faults       {', '.join(str(f) for f in faults.pending)}")
    if job.status.finished:
        lines.append(
            f"  the job already {job.status.phase}; pass --fresh to run it again from scratch"
        )
    return lines


def _stop_left_trainer(folder: Workdir, grace_seconds: float, err: TextIO) -> None:
    """Before ``--fresh`` wipes the folder: stop a trainer a killed run left writing to it."""
    try:
        record = folder.load()
    except WorkdirError:
        return  # an unreadable record: no uid to recognise the trainer by
    uid = ((record or {}).get("metadata") or {}).get("uid")
    for pid in runner.left_trainers(folder, str(uid)) if uid else []:
        err.write(f"rekindle run: stopping the trainer (pid {pid}) a previous run left running\n")
        runner.stop_process_group(pid, grace_seconds)


def _canonical(value: object) -> str:
    """A stable text of a document, to compare specs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
