"""``rekindle run``'s body: the decision engine applied to local processes.

One brain, two bodies: :func:`rekindle_operator.core.engine.decide` says what
happens next, exactly as it does for the operator's pods; this module only
carries its decisions out on this machine. Each attempt is a local trainer
process (:mod:`~rekindle_operator.local.attempt`), its end is classified by
:func:`rekindle_operator.resources.classify.classify_process`, and the job's status is
written to ``job.json`` after every decision, so that a second ``rekindle run``
of the same manifest picks up where this one stopped.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from rekindle_operator.core import (
    engine,
    grace,
    job_spec,
    job_status,
    live_progress,
    observation,
)
from rekindle_operator.core.engine import Action, Decision
from rekindle_operator.core.job_spec import TrainingJobSpec
from rekindle_operator.core.job_status import Status
from rekindle_operator.core.reasons import Cause, Phase, WorkerState
from rekindle_operator.local.attempt import (
    BUILTIN_TRAINER,
    Attempt,
    AttemptFiles,
    ProcessExit,
    process_env,
)
from rekindle_operator.local.console import Console
from rekindle_operator.local.faults import FaultSchedule
from rekindle_operator.local.progress import ProgressView
from rekindle_operator.local.summary import RunStats, summary_lines
from rekindle_operator.local.supervise import Interrupts, Supervised, WorkerExit, supervise
from rekindle_operator.local.workdir import PID_FILE, Workdir
from rekindle_operator.resources import classify, gang, ownership, trainer_env
from rekindle_trainer import contract
from rekindle_trainer.contract import (
    EXIT_CODE_FOR_OUTCOME,
    ProgressEvent,
    ProgressKind,
    TerminationMessage,
)
from rekindle_trainer.contract import gang as gang_contract
from rekindle_trainer.contract.live import SAVE_WINDOW, p99

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
        doc["status"] = job_status.to_document(self.status)
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
                    observation.AttemptEnd(
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
        """Attempt ``number`` ended: read each worker's end and judge them as the operator does.

        Each process is classified as the operator classifies a pod, the gang
        is judged by :func:`gang.judge`, and the engine decides on its verdict.
        """
        count = len(supervised.workers)
        readings = [
            worker_reading(self.job.name, number, index, count, exit_)
            for index, exit_ in enumerate(supervised.workers)
        ]
        verdict = gang.judge(number, readings, self.job.status.workers)
        end = verdict.observed
        if not isinstance(end, observation.AttemptEnd):  # every worker has exited
            raise AssertionError(f"attempt {number} over without an end: {verdict}")
        self._store(self.job.status.but(workers=verdict.workers, workers_ready=verdict.ready))
        self._report_end(supervised, end)
        return self.decide(end)

    def decide(self, observed: observation.Observation) -> Decision:
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
        """Start attempt ``number`` (one process per worker) and watch it to its end."""
        self.settings.workdir.prepare()
        spec = self.job.spec
        command = [*(spec.command or BUILTIN_TRAINER), *(spec.args or ())]
        self.stats.attempts += 1
        if self._first_attempt_started is None:
            self._first_attempt_started = time.monotonic()
        try:
            attempts = self._start_workers(number, command)
        except OSError as exc:
            return _cannot_start(command[0], exc, spec.workers)
        self._record_pids([a.pid for a in attempts])
        self._show_workers(number, WorkerState.RUNNING)
        self.decide(observation.AttemptRunning(attempt=number))
        pids = ", ".join(str(a.pid) for a in attempts)
        where = (
            attempts[0].files.output_log if len(attempts) == 1 else attempts[0].files.folder.parent
        )
        self.say(f"attempt {number} running (pid {pids}; output in {where})")
        view = ProgressView(
            epochs=spec.training.epochs,
            attempt=number,
            restarts=self.job.status.restarts.total,
            saves=self.stats.saves,
        )
        supervised = supervise(
            attempts,
            view=view,
            faults=self.settings.faults,
            console=self.console,
            show_progress=self.settings.show_progress,
            stats=self.stats,
            interrupts=self.interrupts,
            grace_seconds=float(spec.termination_grace_period_seconds),
            run_started=self._first_attempt_started,
            on_progress=self._progress_reporter(number, view),
            say=self.say,
            stall=live_progress.stall_rule(
                spec.restart_policy.stall_timeout_seconds,
                spec.restart_policy.first_step_timeout_seconds,
            ),
        )
        self.stats.saves = view.saves
        return supervised

    def _start_workers(self, number: int, command: list[str]) -> list[Attempt]:
        """One trainer process per worker, the chief first; all or none (a failed start: none)."""
        count = self.job.spec.workers
        hosts = [f"127.0.0.1:{port}" for port in free_ports(count)] if count > 1 else []
        started: list[Attempt] = []
        try:
            for index in range(count):
                files = AttemptFiles.under(self.settings.workdir.attempts_dir, number, index, count)
                tf_config = gang_contract.tf_config_text(hosts, index) if hosts else None
                env = self._attempt_env(number, files, index, tf_config)
                started.append(Attempt(command, env, files, cwd=self.settings.cwd))
        except OSError:
            for attempt in started:
                attempt.kill_group()
                attempt.wait(5)
            raise
        return started

    def _attempt_env(
        self, number: int, files: AttemptFiles, index: int, tf_config: str | None
    ) -> dict[str, str]:
        # Only the chief serves metrics on the chosen port: two trainers cannot share it.
        port = self.settings.metrics_port if index == 0 else 0
        return process_env(
            self.settings.base_env,
            config=job_spec.trainer_document(self.job.spec),
            checkpoint_dir=self.settings.workdir.checkpoint_dir,
            attempt=number,
            job=trainer_env.JobIdentity(self.job.name, self.job.namespace, self.job.uid),
            metrics_port=port,
            files=files,
            extra=self._template_env(),
            tf_config=tf_config,
        )

    def _progress_reporter(
        self, number: int, view: ProgressView
    ) -> Callable[[ProgressEvent | None], str | None]:
        """What :func:`supervise` calls with each event, and once a second without one.

        The job's status follows the run; the answer is a reason to stop the
        attempt when the engine says so (its deadline passed), else None.
        """
        position = _Position()
        saves = SaveTimes(self.job.spec.termination_grace_period_seconds)

        def on_progress(event: ProgressEvent | None) -> str | None:
            position.follow(event, view)
            warning = saves.follow(event)
            if warning is not None:
                self.say(f"warning: {warning}")
            running = observation.AttemptRunning(attempt=number, progress=position.progress())
            decision = self.decide(running)
            if decision.action in (Action.FAIL, Action.STOP):
                return self.job.status.message or decision.action.value
            return None

        return on_progress

    def _report_end(self, supervised: Supervised, end: observation.AttemptEnd) -> None:
        first = supervised.workers[end.worker or 0].end
        what = end.message
        if not what.lower().startswith(end.cause.value.lower()):
            what = f"{end.cause.value}: {what}" if what else end.cause.value
        if "exit code" not in what:
            what += f" (exit code {first.exit_code})"
        seconds = max(w.end.seconds for w in supervised.workers)
        self.say(f"attempt {end.attempt} ended after {seconds:.1f} s: {what}")
        if end.cause in (Cause.CRASHED, Cause.INVALID) and first.output_tail:
            self.console.line("  last lines of the trainer's output:")
            for line in first.output_tail.splitlines():
                self.console.line(f"  | {line}")

    def _show_workers(self, number: int, state: WorkerState) -> None:
        """``status.workers``: every worker of attempt ``number`` in ``state``."""
        count = self.job.spec.workers
        workers = tuple(
            dataclasses.replace(w, state=state) for w in gang.starting(self.job.name, number, count)
        )
        ready = count if state is WorkerState.RUNNING else 0
        self._store(self.job.status.but(workers=workers, workers_ready=f"{ready}/{count}"))

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

    def _orphan_end(self, number: int) -> observation.AttemptEnd:
        """The end of attempt ``number``, started by a previous ``rekindle run`` that died.

        Its trainer may still run (in its own process group): it is stopped
        first. The end is classified from the termination message when the
        trainer wrote one; otherwise the attempt was lost with its "node".
        """
        grace = float(self.job.spec.termination_grace_period_seconds)
        for pid in left_trainers(self.settings.workdir, self.job.uid):
            self.say(f"attempt {number} (pid {pid}) from a previous run still runs: stopping it")
            stop_process_group(pid, grace)
        count = self.job.spec.workers
        files = AttemptFiles.under(self.settings.workdir.attempts_dir, number, 0, count)
        text = files.termination_log.read_text() if files.termination_log.exists() else None
        end: observation.AttemptEnd
        try:
            message = TerminationMessage.from_json(text) if text else None
        except ValueError:
            message = None
        if message is not None and text is not None:
            code = EXIT_CODE_FOR_OUTCOME[message.outcome]
            end = classify.classify_process(number, code, text)
        else:
            end = observation.AttemptEnd(
                attempt=number,
                cause=Cause.NODE_LOST,
                message="the rekindle run that started this attempt stopped while it ran",
            )
        self.say(f"attempt {number} from a previous run: {end.cause.value}: {end.message}")
        return end

    def _record_pids(self, pids: list[int]) -> None:
        (self.settings.workdir.root / PID_FILE).write_text("".join(f"{pid}\n" for pid in pids))

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
        doc = job_status.to_document(self.job.status)
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


@dataclass
class _Position:
    """Where a running attempt is, as its progress events say: epoch, step, newest checkpoint."""

    epoch: int | None = None
    step: int | None = None
    checkpoint: str | None = None
    #: When the checkpoint was published, or restored by this attempt (as the cluster shows it).
    checkpoint_time: datetime.datetime | None = None

    def follow(self, event: ProgressEvent | None, view: ProgressView) -> None:
        """Move with ``event`` (``view`` has already read it)."""
        if event is None or event.kind not in _POSITION_EVENTS:
            return
        self.epoch, self.step = view.epochs_done, view.step
        if event.kind is not ProgressKind.EPOCH_END and event.data.get("checkpoint"):
            self.checkpoint = str(event.data["checkpoint"])
            self.checkpoint_time = datetime.datetime.fromtimestamp(event.time, datetime.UTC)

    def progress(self) -> observation.Progress:
        """The position as the engine reads it."""
        return observation.Progress(
            epoch=self.epoch,
            step=self.step,
            checkpoint=self.checkpoint,
            checkpoint_time=self.checkpoint_time,
        )


class SaveTimes:
    """An attempt's save durations from its checkpoint events, judged like the operator does.

    :mod:`rekindle_operator.core.grace` on the same window and p99 as the
    trainer's ``saveSecondsP99``; a warning once per attempt, when the grace
    first turns out too short.
    """

    def __init__(self, grace_seconds: int) -> None:
        self.grace_seconds = grace_seconds
        self.seconds: collections.deque[float] = collections.deque(maxlen=SAVE_WINDOW)
        self.saves = 0
        self.warned = False

    def follow(self, event: ProgressEvent | None) -> str | None:
        """The warning to print after ``event``, if it is the first that calls for one."""
        if event is None or event.kind is not ProgressKind.CHECKPOINT or self.warned:
            return None
        seconds = event.data.get("seconds")
        if not isinstance(seconds, int | float):
            return None
        self.seconds.append(float(seconds))
        self.saves += 1
        verdict = grace.judge(self.grace_seconds, p99(self.seconds), self.saves)
        if verdict is None or not verdict.too_short:
            return None
        self.warned = True
        return verdict.message


#: The progress events that move the position the status shows.
_POSITION_EVENTS: Final = (ProgressKind.EPOCH_END, ProgressKind.CHECKPOINT, ProgressKind.RESTORED)


def _cannot_start(program: str, error: OSError, workers: int) -> Supervised:
    """The end of an attempt whose command could not start (as CreateContainerError): a failure."""
    cannot = WorkerExit(
        end=ProcessExit(
            exit_code=EXIT_CANNOT_START, termination_message=None, output_tail="", seconds=0
        ),
        known_cause=Cause.CONFIG_ERROR,
        detail=f"cannot start {program!r}: {error.strerror or error}; check spec.command",
    )
    return Supervised(workers=(cannot,) * workers, interrupted=False)


def worker_reading(
    job_name: str, attempt: int, index: int, count: int, ended: WorkerExit
) -> gang.Worker:
    """Worker ``index`` of a local attempt as :func:`gang.judge` reads it (a pod's name and all)."""
    end = classify.classify_process(
        attempt,
        ended.end.exit_code,
        ended.end.termination_message,
        known_cause=ended.known_cause,
        detail=ended.detail,
    )
    return gang.Worker(
        index=index,
        pod=ownership.worker_pod_name(job_name, attempt, index, count),
        observed=end,
        ended_at=datetime.datetime.fromtimestamp(ended.ended_at, datetime.UTC),
        consequence=ended.consequence or gang.peer_lost(ended.end.termination_message),
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (for a gang's workers on this machine)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def left_trainers(workdir: Workdir, uid: str) -> list[int]:
    """The pids of trainers of job ``uid`` that a previous run left running (one per worker).

    The pid file alone is not trusted (pids are reused): each process must
    carry the job's uid in its environment.
    """
    try:
        lines = (workdir.root / PID_FILE).read_text().split()
    except FileNotFoundError:
        return []
    marker = f"{contract.ENV_JOB_UID}={uid}".encode()
    pids = []
    for text in lines:
        if not text.isdigit():
            continue
        try:
            environ = Path(f"/proc/{text}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(text))
    return pids


def stop_process_group(pid: int, grace_seconds: float) -> None:
    """SIGTERM ``pid``'s process group, wait up to ``grace_seconds``, then SIGKILL it."""
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
