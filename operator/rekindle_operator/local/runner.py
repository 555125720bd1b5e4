"""``rekindle run``'s body: the decision engine applied to local processes.

One brain, two bodies: :func:`rekindle_operator.engine.decide` says what
happens next, exactly as it does for the operator's pods; this module only
carries its decisions out on this machine. Each attempt is a local trainer
process (:mod:`~rekindle_operator.local.attempt`), its end is classified by
:func:`rekindle_operator.classify.classify_process`, and the job's status is
written to ``job.json`` after every decision, so that a second ``rekindle run``
of the same manifest picks up where this one stopped.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from rekindle_operator import classify, engine, trainer_config
from rekindle_operator import status as status_mod
from rekindle_operator.engine import Action, Decision
from rekindle_operator.local.attempt import (
    BUILTIN_TRAINER,
    Attempt,
    AttemptEnd,
    AttemptFiles,
    JobIdentity,
)
from rekindle_operator.local.attempt import trainer_env as build_env
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import FaultSchedule
from rekindle_operator.local.progress import ProgressView
from rekindle_operator.local.summary import RunStats, summary_lines
from rekindle_operator.local.supervise import Interrupts, Supervised, supervise
from rekindle_operator.local.workdir import PID_FILE, Workdir
from rekindle_operator.reasons import Cause, Phase
from rekindle_operator.spec import TrainingJobSpec
from rekindle_operator.status import Status
from rekindle_trainer import contract
from rekindle_trainer.contract import (
    EXIT_CODE_FOR_OUTCOME,
    ProgressEvent,
    ProgressKind,
    TerminationMessage,
)

#: Exit codes of ``rekindle run``.
EXIT_SUCCEEDED: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it); the status is saved.
EXIT_INTERRUPTED: Final = 130
#: The exit code recorded for a trainer command that could not be started (as a shell's 127).
EXIT_CANNOT_START: Final = 127


@dataclass
class LocalJob:
    """What the runner knows of the job: its identity, spec and stored record."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: TrainingJobSpec
    #: The manifest as applied (defaults filled in), stored in ``job.json``.
    document: dict[str, Any]
    status: Status = field(default_factory=Status)

    def record(self) -> dict[str, Any]:
        """The ``job.json`` document: the TrainingJob as a cluster would hold it."""
        doc = dict(self.document)
        meta = dict(doc.get("metadata") or {})
        meta.update(
            {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "generation": self.generation,
            }
        )
        doc["metadata"] = meta
        doc["status"] = status_mod.to_document(self.status)
        return doc


@dataclass
class RunSettings:
    """How to run: the ``rekindle run`` options that are not the manifest."""

    workdir: Workdir
    faults: FaultSchedule
    metrics_port: int
    show_progress: bool
    #: The trainer's working folder (where relative paths in ``spec.command`` resolve).
    cwd: Path
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], datetime.datetime] = field(
        default=lambda: datetime.datetime.now(datetime.UTC)
    )


class LocalRunner:
    """Carries out the engine's decisions for one job on this machine."""

    def __init__(self, job: LocalJob, settings: RunSettings, console: Console) -> None:
        """Nothing runs until :meth:`run`."""
        self.job = job
        self.settings = settings
        self.console = console
        self.stats = RunStats()
        self.interrupts = Interrupts()
        self._started = time.monotonic()
        #: When this run started its first attempt (``seconds=`` faults count from here).
        self._first_attempt_started: float | None = None

    # -- output -------------------------------------------------------------

    def say(self, text: str) -> None:
        """One event line, with the seconds since ``rekindle run`` started."""
        line = f"[{time.monotonic() - self._started:7.1f}s] {text}"
        self.console.line(line)
        stamp = self.settings.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.settings.workdir.append_event(f"{stamp} {text}")

    # -- the loop -----------------------------------------------------------

    def run(self) -> int:
        """Run the job until it finishes, is suspended, or the user interrupts; the exit code."""
        with self._catch_interrupts():
            try:
                return self._loop()
            finally:
                self.console.close()

    def _loop(self) -> int:
        decision = self._pick_up()
        while True:
            action = decision.action
            if action in (Action.START, Action.RESTART):
                supervised = self._run_attempt(decision.attempt)
                decision = self.conclude(decision.attempt, supervised)
                if supervised.interrupted and not self.job.status.finished:
                    return self._interrupted()
                continue
            if action is Action.RESTART_AFTER or (
                action is Action.WAIT and self.job.status.phase is Phase.RESTARTING
            ):
                # requeue_after is the backoff, or less when the deadline comes first.
                wait = decision.requeue_after
                if wait is None:
                    wait = decision.delay_seconds
                if not self._sleep(wait):
                    return self._interrupted()
                decision = self.decide(None)
                continue
            if action is Action.STOP:
                # Attempts run only inside _run_attempt, so none of ours runs now:
                # the attempt to stop is not running, and the stop is done at once.
                decision = self.decide(
                    classify.AttemptEnd(
                        attempt=decision.attempt,
                        cause=Cause.STOPPED,
                        message=f"stopped: {self.job.status.reason}; attempt was not running",
                    )
                )
                continue
            if self.job.status.finished:
                return self._finish()
            if self.job.status.phase is Phase.SUSPENDED:
                self.say("the job is suspended (spec.suspend: true); set it to false to resume")
                return EXIT_SUCCEEDED
            phase = self.job.status.phase
            self.say(f"nothing to do: the engine answered {action.value} in phase {phase}")
            return EXIT_FAILED

    def _pick_up(self) -> Decision:
        """The first decision of this run, picking up what a previous run left.

        The stored status may say that attempt N runs. If this work folder
        never saw it start (the previous run was interrupted right after the
        engine decided to start it), it is started now, as the operator
        creates the missing pod of the current attempt. If it did start, the
        previous ``rekindle run`` died while it ran: its end is classified
        and given to the engine like any other.
        """
        status = self.job.status
        if status.attempt_live and not status.finished:
            number = status.attempt
            never_started = not AttemptFiles.under(
                self.settings.workdir.attempts_dir, number
            ).folder.exists()
            if never_started and not self.job.spec.suspend:
                self.say(f"picking up: attempt {number} was decided by the previous run")
                return Decision(action=Action.START, status=status, attempt=number)
            if never_started:
                return self.decide(None)  # suspended meanwhile: the engine says stop
            return self.decide(self._orphan_end(number))
        if status.phase is not None and not status.finished:
            self.say(f"picking up the job in phase {status.phase.value} ({status.message})")
        return self.decide(None)

    def conclude(self, number: int, supervised: Supervised) -> Decision:
        """Attempt ``number`` ended: classify its end as the operator would a pod's, and decide."""
        end = classify.classify_process(
            number,
            supervised.end.exit_code,
            supervised.end.termination_message,
            known_cause=supervised.known_cause,
            detail=supervised.detail,
        )
        self._report_end(supervised, end)
        return self.decide(end)

    def decide(self, observed: classify.Observation) -> Decision:
        """Ask the engine, store the new status, print its event."""
        decision = engine.decide(
            self.job.spec,
            self.job.status,
            observed,
            self.settings.clock(),
            generation=self.job.generation,
        )
        self._store(decision.status)
        if decision.event is not None:
            self.say(f"{decision.event.reason.value}: {decision.event.message}")
        return decision

    def _store(self, new: Status) -> None:
        if new != self.job.status:
            self.job.status = new
            self.settings.workdir.save(self.job.record())

    # -- one attempt ----------------------------------------------------------

    def _run_attempt(self, number: int) -> Supervised:
        spec = self.job.spec
        workdir = self.settings.workdir
        workdir.prepare()
        files = AttemptFiles.under(workdir.attempts_dir, number)
        env = build_env(
            self.settings.base_env,
            config=trainer_config.project(spec),
            checkpoint_dir=workdir.checkpoint_dir,
            attempt=number,
            job=JobIdentity(self.job.name, self.job.namespace, self.job.uid),
            metrics_port=self.settings.metrics_port,
            files=files,
            extra=self._template_env(),
        )
        program: tuple[str, ...] = spec.command or BUILTIN_TRAINER
        command = [*program, *(spec.args or ())]
        self.stats.attempts += 1
        if self._first_attempt_started is None:
            self._first_attempt_started = time.monotonic()
        try:
            attempt = Attempt(command, env, files, cwd=self.settings.cwd)
        except OSError as exc:
            # As a container that cannot be created (CreateContainerError): a failure.
            return Supervised(
                end=AttemptEnd(
                    exit_code=EXIT_CANNOT_START, termination_message=None, output_tail="", seconds=0
                ),
                known_cause=Cause.CONFIG_ERROR,
                fault=None,
                interrupted=False,
                detail=f"cannot start {command[0]!r}: {exc.strerror or exc}; check spec.command",
            )
        self._record_pid(attempt.pid)
        self.decide(classify.AttemptRunning(attempt=number, started_at=self.settings.clock()))
        self.say(f"attempt {number} running (pid {attempt.pid}; output in {files.output_log})")
        view = ProgressView(
            epochs=spec.training.epochs,
            attempt=number,
            restarts=self.job.status.restarts.total,
            saves=self.stats.saves,
        )
        position: dict[str, Any] = {}

        def on_progress(event: ProgressEvent | None) -> str | None:
            if event is not None and event.kind in (
                ProgressKind.EPOCH_END,
                ProgressKind.CHECKPOINT,
                ProgressKind.RESTORED,
            ):
                position["epoch"] = view.epochs_done
                position["step"] = view.step
                if event.kind is not ProgressKind.EPOCH_END and event.data.get("checkpoint"):
                    position["checkpoint"] = str(event.data["checkpoint"])
            progress = classify.Progress(
                epoch=position.get("epoch"),
                step=position.get("step"),
                checkpoint=position.get("checkpoint"),
            )
            decision = self.decide(classify.AttemptRunning(attempt=number, progress=progress))
            if decision.action in (Action.FAIL, Action.STOP):
                return self.job.status.message or decision.action.value
            return None

        supervised = supervise(
            attempt,
            view=view,
            faults=self.settings.faults,
            console=self.console,
            show_progress=self.settings.show_progress,
            stats=self.stats,
            interrupts=self.interrupts,
            grace_seconds=float(spec.termination_grace_period_seconds),
            run_started=self._first_attempt_started,
            on_progress=on_progress,
            say=self.say,
        )
        self.stats.saves = view.saves
        return supervised

    def _report_end(self, supervised: Supervised, end: classify.AttemptEnd) -> None:
        what = end.message
        if not what.lower().startswith(end.cause.value.lower()):
            what = f"{end.cause.value}: {what}" if what else end.cause.value
        if "exit code" not in what:
            what += f" (exit code {supervised.end.exit_code})"
        self.say(f"attempt {end.attempt} ended after {supervised.end.seconds:.1f} s: {what}")
        if end.cause in (Cause.CRASHED, Cause.INVALID) and supervised.end.output_tail:
            self.console.line("  last lines of the trainer's output:")
            for line in supervised.end.output_tail.splitlines():
                self.console.line(f"  | {line}")

    def _template_env(self) -> dict[str, str]:
        """``spec.template.env`` entries with a literal value (``valueFrom`` needs a cluster)."""
        values: dict[str, str] = {}
        for item in self.job.spec.template.env:
            if "value" in item and isinstance(item.get("name"), str):
                values[item["name"]] = str(item["value"])
            elif isinstance(item.get("name"), str):
                self.say(f"template.env {item['name']}: valueFrom needs a cluster; not set locally")
        return values

    # -- an attempt left running by a previous rekindle run ---------------------

    def _orphan_end(self, number: int) -> classify.AttemptEnd:
        """The end of attempt ``number``, started by a previous ``rekindle run`` that died.

        Its trainer may still run (it has its own session): it is stopped
        first. The end is classified from the termination message when the
        trainer wrote one; otherwise the attempt was lost with its "node".
        """
        grace = float(self.job.spec.termination_grace_period_seconds)
        pid = left_trainer(self.settings.workdir, self.job.uid)
        if pid is not None:
            self.say(f"attempt {number} (pid {pid}) from a previous run still runs: stopping it")
            stop_session(pid, grace)
        files = AttemptFiles.under(self.settings.workdir.attempts_dir, number)
        text = files.termination_log.read_text() if files.termination_log.exists() else None
        end: classify.AttemptEnd
        try:
            message = TerminationMessage.from_json(text) if text else None
        except ValueError:
            message = None
        if message is not None and text is not None:
            code = EXIT_CODE_FOR_OUTCOME[message.outcome]
            end = classify.classify_process(number, code, text)
        else:
            end = classify.AttemptEnd(
                attempt=number,
                cause=Cause.NODE_LOST,
                message="the rekindle run that started this attempt stopped while it ran",
            )
        self.say(f"attempt {number} from a previous run: {end.cause.value}: {end.message}")
        return end

    def _record_pid(self, pid: int) -> None:
        (self.settings.workdir.root / PID_FILE).write_text(f"{pid}\n")

    # -- waiting, interrupts, the end ------------------------------------------

    def _sleep(self, seconds: float) -> bool:
        """Sleep out a backoff; False when interrupted."""
        if seconds > 0:
            self.say(f"waiting {seconds:.1f} s before the next attempt")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.interrupts.count:
                return False
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
        return not self.interrupts.count

    def _interrupted(self) -> int:
        self.say(
            f"interrupted; the job's status is saved in {self.settings.workdir.job_file}: "
            "run the same command again to resume"
        )
        self._summary()
        return EXIT_INTERRUPTED

    def _finish(self) -> int:
        self._summary()
        return EXIT_SUCCEEDED if self.job.status.phase is Phase.SUCCEEDED else EXIT_FAILED

    def _summary(self) -> None:
        self.stats.seconds = time.monotonic() - self._started
        doc = status_mod.to_document(self.job.status)
        for line in summary_lines(self.job.spec.training.epochs, doc, self.stats):
            self.console.line(line)

    @contextmanager
    def _catch_interrupts(self) -> Iterator[None]:
        """Count Ctrl-C (SIGINT) and SIGTERM instead of dying: they become a preemption."""

        def handler(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            self.interrupts.count += 1

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


def left_trainer(workdir: Workdir, uid: str) -> int | None:
    """The pid of a trainer of job ``uid`` that a previous run left running, if any.

    The pid file alone is not trusted (pids are reused): the process must
    carry the job's uid in its environment.
    """
    try:
        text = (workdir.root / PID_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    ours = f"{contract.ENV_JOB_UID}={uid}".encode() in environ.split(b"\0")
    return pid if ours else None


def stop_session(pid: int, grace_seconds: float) -> None:
    """SIGTERM ``pid``'s session, wait up to ``grace_seconds``, then SIGKILL it."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped by its new parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
