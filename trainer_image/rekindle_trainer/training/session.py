"""An attempt's surroundings: configuration, signals, metrics, termination message.

:func:`session` is the library API for people who keep their own script, and
what ``rekindle-train`` itself runs inside::

    import rekindle_trainer

    with rekindle_trainer.session() as run:           # reads REKINDLE_* like the runner
        with run.strategy.scope():
            model = make_model(run.config.hyperparameters)
        run.fit(model, (x, y), validation=(x_val, y_val))
    raise SystemExit(run.exit_code)

Entering sets the seeds, op determinism and mixed precision, installs the
SIGTERM handler and starts the metrics endpoint; :meth:`Session.fit` restores
the newest valid checkpoint, trains and finishes; leaving writes the
termination message (``failed`` with the error when the block raised, ``invalid``
for a configuration error) and sets :attr:`Session.exit_code`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from rekindle_trainer.contract import EXIT_CODE_FOR_OUTCOME, Outcome, TerminationMessage
from rekindle_trainer.core import config
from rekindle_trainer.core.config import ConfigError, RuntimeEnv, TrainerConfig
from rekindle_trainer.reporting.addenda import Addenda
from rekindle_trainer.reporting.live import LiveState
from rekindle_trainer.reporting.metrics import Health, MetricsServer, TrainerMetrics
from rekindle_trainer.reporting.progress import ProgressLog
from rekindle_trainer.reporting.reporter import Reporter
from rekindle_trainer.training.prompt_exit import PromptExit
from rekindle_trainer.training.setup import EntrypointError

log = logging.getLogger(__name__)


class StopRequest:
    """SIGTERM/SIGINT set a flag that training checks after each step."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}
        #: Exits at once on a signal before the first step (see ``prompt_exit``).
        self.prompt = PromptExit((signal.SIGTERM, signal.SIGINT))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if not self.event.is_set():
            log.warning(
                "%s received: finishing the current step, then saving", signal.Signals(signum).name
            )
        self.event.set()

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        self.prompt.start()

    def reclaim(self) -> None:
        """Take SIGTERM and SIGINT back after TensorFlow took them at the C level.

        ``MultiWorkerMirroredStrategy`` starts TensorFlow's coordination service,
        whose preemption notifier installs its own C handler for SIGTERM (measured
        with TensorFlow 2.21): Python's handler, and with it the save before exit,
        would never run again. Installing the Python handlers anew restores them.
        """
        for signum in self._previous:
            signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Give the signals back."""
        self.prompt.stop()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def write_termination_message(path: Path, message: TerminationMessage) -> None:
    """Write the message where Kubernetes (or ``rekindle run``) reads it; log if impossible."""
    text = message.to_json()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        log.error("cannot write the termination message to %s: %s", path, exc)
    log.info("termination message: %s", text)


def configure_tensorflow(config: TrainerConfig, runtime: RuntimeEnv | None = None) -> Any:
    """Devices, seeds, determinism and precision; the distribution strategy.

    Every visible GPU is a replica (``MirroredStrategy`` over several); without one,
    ``REKINDLE_CPU_REPLICAS`` may split the CPU into several (see ``strategy``). The
    devices are set up first: that is possible only before TensorFlow initialises them.
    A gang's worker (``TF_CONFIG``) gets ``MultiWorkerMirroredStrategy``, created first.
    """
    import keras  # noqa: PLC0415 - TensorFlow loads only once the configuration is valid
    import tensorflow as tf  # noqa: PLC0415

    from rekindle_trainer.training import strategy  # noqa: PLC0415

    cpu_replicas = runtime.cpu_replicas if runtime is not None else 1
    workers = runtime.role.count if runtime is not None else 1
    # A gang's collectives are configured before any other TensorFlow operation.
    collective = runtime.collective if runtime is not None else "auto"
    made = strategy.make_strategy(cpu_replicas, workers, collective) if workers > 1 else None
    if made is None:
        strategy.split_cpu(cpu_replicas)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Set both ways: a process (or test) may open several sessions.
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32"
    )
    return made if made is not None else strategy.make_strategy(cpu_replicas)


@dataclass
class Session:
    """One attempt's configuration and services; see the module docstring."""

    config: TrainerConfig
    runtime: RuntimeEnv
    metrics: TrainerMetrics = field(default_factory=TrainerMetrics)
    health: Health = field(default_factory=Health)
    #: What ``GET /progress`` serves (the operator reads it: live status, stall detection).
    live: LiveState = field(default_factory=LiveState)
    stop: StopRequest = field(default_factory=StopRequest)
    strategy: Any = None
    progress: ProgressLog | None = None
    server: MetricsServer | None = None
    message: TerminationMessage | None = None
    addenda: Addenda = field(default_factory=Addenda)

    @property
    def exit_code(self) -> int:
        """The exit code that goes with the outcome (1 before anything ended)."""
        if self.message is None:
            return EXIT_CODE_FOR_OUTCOME[Outcome.FAILED]
        return EXIT_CODE_FOR_OUTCOME[self.message.outcome]

    def fit(
        self,
        model: Any,
        train: Any,
        validation: Any = None,
        *,
        callbacks: Sequence[Any] = (),
        replayable: bool | None = None,
    ) -> TerminationMessage:
        """Restore, train to the end (or SIGTERM, or early stop) and return the message."""
        from rekindle_trainer.training.setup import TrainingSetup, check_setup  # noqa: PLC0415

        setup = check_setup(
            TrainingSetup(model, train, validation, tuple(callbacks), replayable), "session.fit"
        )
        return self.run(setup)

    def run(self, setup: Any) -> TerminationMessage:
        """Train a checked :class:`~rekindle_trainer.training.setup.TrainingSetup`."""
        from rekindle_trainer.training.loop import run_attempt  # noqa: PLC0415

        assert self.progress is not None
        reporter = Reporter(self.metrics, self.health, self.progress, self.addenda, self.live)
        self.message = run_attempt(setup, self.config, self.runtime, reporter, self.stop.event)
        return self.message


def _failure(outcome: Outcome, error: str) -> TerminationMessage:
    return TerminationMessage(outcome=outcome, error=error)


@contextmanager
def session(
    env: Mapping[str, str] | None = None,
    *,
    require_entrypoint: bool = False,
    document: Any = None,
) -> Iterator[Session]:
    """Open an attempt from ``env`` (default ``os.environ``); see the module docstring.

    Args:
        env: the environment to read the ``REKINDLE_*`` variables from.
        require_entrypoint: the runner needs ``entrypoint``; a user script does not.
        document: a configuration document given directly (instead of the environment).

    A configuration error ends the block before it runs: the session's message is
    ``invalid`` and nothing is touched on the volume. Check :attr:`Session.exit_code`.
    """
    source = os.environ if env is None else env
    termination = config.termination_log_from_env(source)
    stop = StopRequest()
    stop.install()
    try:
        current = _open(source, stop, require_entrypoint=require_entrypoint, document=document)
    except ConfigError as exc:
        stop.uninstall()
        yield _invalid_session(exc, termination, stop)
        return
    stop.prompt.trained = lambda: current.health.last_step is not None
    stop.prompt.last_words = lambda: _before_first_step(current, termination)
    try:
        yield current
    except Exception as exc:
        current.message = _message_for_error(exc, gang=current.runtime.role.count > 1)
    finally:
        if current.message is None:
            current.message = _failure(Outcome.FAILED, "the session ended without training")
        current.message = current.addenda.apply(current.message)
        write_termination_message(termination, current.message)
        _close(current)


def _before_first_step(current: Session, termination: Path) -> None:
    """Write the message of an attempt stopped before its first step, once its start is known."""
    message = current.addenda.before_first_step()
    if message is not None:
        write_termination_message(termination, message)


def _open(
    source: Mapping[str, str], stop: StopRequest, *, require_entrypoint: bool, document: Any
) -> Session:
    """Parse the configuration, start the metrics endpoint, set TensorFlow up."""
    raw = config.load_document(source) if document is None else document
    trainer_config = config.parse_config(raw)
    if require_entrypoint and trainer_config.entrypoint is None:
        raise ConfigError(
            "entrypoint",
            "required by rekindle-train: 'package.module:function' returning a "
            "TrainingSetup (or run your own script with rekindle_trainer.session())",
        )
    runtime = config.parse_runtime_env(source)
    current = Session(trainer_config, runtime, stop=stop)
    current.addenda.report_timing = runtime.report_timing
    try:
        if runtime.metrics_port:
            current.server = MetricsServer(
                current.metrics, current.health, runtime.metrics_port, live=current.live
            )
        current.progress = ProgressLog(runtime.progress_file)
        current.strategy = configure_tensorflow(trainer_config, runtime)
        stop.reclaim()
    except ConfigError:
        _close(current)
        raise
    return current


def _invalid_session(exc: ConfigError, termination: Path, stop: StopRequest) -> Session:
    """The session handed out when the configuration is invalid; its message is written."""
    message = _failure(Outcome.INVALID, f"invalid configuration: {exc}")
    write_termination_message(termination, message)
    log.error("%s", message.error)
    failed = Session(_UNUSED_CONFIG, RuntimeEnv(checkpoint_dir=Path()), stop=stop)
    failed.message = message
    return _Closed(failed)


def _message_for_error(exc: Exception, *, gang: bool = False) -> TerminationMessage:
    """``invalid`` for configuration, entrypoint and model-mismatch errors, else ``failed``.

    On a gang, a failed collective (a peer lost: TensorFlow's health check aborted it,
    or the peer's connection broke) is ``failed`` with ``peer_lost``.
    """
    from rekindle_trainer.checkpoint.state import StateMismatch  # noqa: PLC0415

    if isinstance(exc, ConfigError | EntrypointError):
        return _failure(Outcome.INVALID, str(exc))
    if isinstance(exc, StateMismatch):
        return _failure(Outcome.INVALID, f"checkpoint does not fit the model: {exc}")
    log.error("training failed:\n%s", traceback.format_exc())
    message = _failure(Outcome.FAILED, f"{type(exc).__name__}: {exc}")
    if gang and _peer_lost(exc):
        message = replace(message, peer_lost=True)
    return message


def _peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is how TensorFlow reports a collective that lost a peer."""
    import tensorflow as tf  # noqa: PLC0415

    lost = (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.AbortedError,
        tf.errors.CancelledError,
    )
    return isinstance(exc, lost)


def _close(current: Session) -> None:
    """Stop the metrics endpoint, close the progress file, give the signals back."""
    if current.server is not None:
        current.server.close()
    if current.progress is not None:
        current.progress.close()
    current.stop.uninstall()


#: Stands in for an invalid configuration in the closed session (nothing trains with it).
_UNUSED_CONFIG = TrainerConfig(epochs=1)


class _NoStrategy:
    """Stands in for a strategy when the configuration was invalid (nothing will train)."""

    def scope(self) -> AbstractContextManager[None]:
        return nullcontext()


class _Closed(Session):
    """The session handed out after a configuration error: :meth:`fit` refuses to train."""

    def __init__(self, failed: Session) -> None:
        super().__init__(failed.config, failed.runtime, stop=failed.stop, strategy=_NoStrategy())
        self.message = failed.message

    def run(self, setup: Any) -> TerminationMessage:
        assert self.message is not None
        return self.message
