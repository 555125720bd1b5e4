"""Which devices an attempt trains on, and the distribution strategy over them.

A worker of a gang (``TF_CONFIG`` names several workers, see
:mod:`~rekindle_trainer.contract.gang`) trains under TensorFlow's
``MultiWorkerMirroredStrategy``: every worker holds a copy of every variable
and the gradients are all-reduced over gRPC (on every local GPU, or on the
CPU). It is created before any other TensorFlow operation (TensorFlow
configures its collectives once, when its runtime starts) and its constructor
waits until every worker of the gang has started. A dead peer is noticed by
TensorFlow's health check of the gang, tuned here from its defaults (a check
every 30 s, 10 s per try, 3 tries: up to a minute and a half) to
:data:`HEALTH_INTERVAL_S` / :data:`HEALTH_TIMEOUT_S` / :data:`HEALTH_TRIES`,
so within seconds: the check aborts every pending collective, ``fit`` raises,
and the attempt ends ``failed`` with ``peer_lost``. A per-collective timeout
(``CommunicationOptions(timeout_seconds=...)``) is not used: TensorFlow starts
a thread for every collective to enforce it, and it would also fire when one
worker merely traces its step much later than the others.

Otherwise every visible GPU is a replica (``MirroredStrategy`` when there are several);
without a GPU the attempt trains on the CPU with the default strategy, unless
``REKINDLE_CPU_REPLICAS`` asks for several replicas: the CPU is then split into
that many logical devices (before TensorFlow initialises its devices) and
``MirroredStrategy`` runs over them. That runs the multi-replica path (mirrored
variables, distributed data, all-reduced gradients, checkpoints of mirrored
state) on any machine, which is how it is tested without a GPU.

:func:`choose` is the decision, a pure function of what is visible;
:func:`split_cpu` and :func:`make_strategy` apply it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from rekindle_trainer import contract
from rekindle_trainer.core.config import ConfigError

log = logging.getLogger(__name__)

#: Seconds between two health checks of the gang's peers (TensorFlow's default: 30).
HEALTH_INTERVAL_S: Final = 2
#: Seconds one health check of a peer may take (TensorFlow's default: 10).
HEALTH_TIMEOUT_S: Final = 2
#: Failed checks in a row before a peer counts as lost (TensorFlow's default: 3).
HEALTH_TRIES: Final = 2
#: Seconds a worker waits for the whole gang to start (TensorFlow's default: forever).
GANG_START_TIMEOUT_S: Final = 600


@dataclass(frozen=True)
class Placement:
    """The devices to mirror over; none means TensorFlow's default strategy (one device).

    Attributes:
        devices: device names for ``MirroredStrategy``, or ``()`` for the default strategy.
        note: why, for the log (also says when ``REKINDLE_CPU_REPLICAS`` was ignored).
    """

    devices: tuple[str, ...]
    note: str
    #: Workers of the gang: more than one means ``MultiWorkerMirroredStrategy``.
    workers: int = 1

    @property
    def replicas(self) -> int:
        """How many replicas train in sync (over every worker)."""
        return max(1, len(self.devices)) * self.workers

    @property
    def multi_worker(self) -> bool:
        """Whether the attempt trains with ``MultiWorkerMirroredStrategy``."""
        return self.workers > 1


def choose(
    gpus: Sequence[str], cpus: Sequence[str], cpu_replicas: int, workers: int = 1
) -> Placement:
    """Where to train, given the visible GPUs and CPUs, the requested CPU replicas, the gang.

    Args:
        gpus: logical GPU device names (physical ones for a gang: see :func:`make_strategy`).
        cpus: logical CPU device names (several only after :func:`split_cpu`).
        cpu_replicas: ``REKINDLE_CPU_REPLICAS`` (1: the CPU is one device).
        workers: the workers of the gang (``TF_CONFIG``; 1 without one).
    """
    if workers > 1:
        ignored = (
            f"; {contract.ENV_CPU_REPLICAS}={cpu_replicas} ignored (a gang's worker "
            "trains on its GPUs or on its CPU as one device)"
            if cpu_replicas > 1
            else ""
        )
        local = f"{len(gpus)} GPU(s) each" if gpus else "the CPU each"
        return Placement(
            tuple(gpus),
            f"MultiWorkerMirroredStrategy over {workers} workers, {local}{ignored}",
            workers,
        )
    if gpus:
        ignored = (
            f"; {contract.ENV_CPU_REPLICAS}={cpu_replicas} ignored (GPUs take precedence)"
            if cpu_replicas > 1
            else ""
        )
        if len(gpus) == 1:
            return Placement((), f"one GPU ({gpus[0]}), default strategy{ignored}")
        return Placement(tuple(gpus), f"MirroredStrategy over {len(gpus)} GPUs{ignored}")
    if cpu_replicas <= 1:
        return Placement((), "CPU, default strategy")
    if len(cpus) < cpu_replicas:
        raise ConfigError(
            contract.ENV_CPU_REPLICAS,
            f"asks for {cpu_replicas} CPU replicas but TensorFlow has {len(cpus)} CPU device(s)",
        )
    return Placement(
        tuple(cpus[:cpu_replicas]),
        f"MirroredStrategy over {cpu_replicas} logical CPU devices ({contract.ENV_CPU_REPLICAS})",
    )


def split_cpu(replicas: int) -> None:
    """Split the physical CPU into ``replicas`` logical devices, before TensorFlow uses it.

    Raises :class:`ConfigError` naming ``REKINDLE_CPU_REPLICAS`` when this process already
    initialised TensorFlow with another split (it can be set only once per process).
    """
    import tensorflow as tf  # noqa: PLC0415 - only once the configuration is valid

    if replicas <= 1 or tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError:  # devices already initialised: fine if they are split the same way
        have = len(tf.config.list_logical_devices("CPU"))
        if have != replicas:
            raise ConfigError(
                contract.ENV_CPU_REPLICAS,
                f"{replicas} CPU replicas requested, but TensorFlow already runs in this "
                f"process with {have} CPU device(s); set the variable before the process "
                "first uses TensorFlow (rekindle-train reads it at start)",
            ) from None


def make_strategy(cpu_replicas: int, workers: int = 1, collective: str = "auto") -> Any:
    """The strategy for this process: see the module docstring.

    For a gang it must run before any other TensorFlow operation of the process.
    """
    import tensorflow as tf  # noqa: PLC0415

    if workers > 1:
        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]  # starts no runtime
        placement = choose(gpus, [], cpu_replicas, workers)
        log.info("training on %s", placement.note)
        return multi_worker_strategy(collective)
    split_cpu(cpu_replicas)
    placement = choose(
        [d.name for d in tf.config.list_logical_devices("GPU")],
        [d.name for d in tf.config.list_logical_devices("CPU")],
        cpu_replicas,
    )
    log.info("training on %s", placement.note)
    if not placement.devices:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(list(placement.devices))


def multi_worker_strategy(implementation_name: str = "auto") -> Any:
    """``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``, its health check tuned (see above).

    ``implementation_name``: ``REKINDLE_COLLECTIVE`` (``auto``, ``ring`` or ``nccl``),
    the all-reduce's implementation.
    """
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow.python.distribute import (  # noqa: PLC0415 - the knobs are not public
        collective_all_reduce_strategy as collective,
    )

    extended = collective.CollectiveAllReduceExtended
    extended._check_health_interval = HEALTH_INTERVAL_S
    extended._check_health_timeout = HEALTH_TIMEOUT_S
    extended._check_health_retry_limit = HEALTH_TRIES
    extended._check_health_initial_timeout = GANG_START_TIMEOUT_S
    implementation = getattr(
        tf.distribute.experimental.CommunicationImplementation, implementation_name.upper()
    )
    options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
    log.info("gang collectives: %s", implementation.name)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def replicas(model: Any) -> int:
    """Replicas in sync for ``model`` (1 unless it was built in a multi-replica scope)."""
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1))


@contextmanager
def uneven_first_batch(model: Any) -> Iterator[None]:
    """Let ``fit`` start on a batch that does not split evenly over the replicas.

    Keras 3 (checked with 3.15), before training under a strategy, reads the first
    batch and averages it over the replicas only to learn its shapes and dtypes; the
    average fails when the replicas' slices differ in size (a global batch of 29 over
    two replicas: 15 and 14). A resumed run starts exactly there whenever it resumes
    at an epoch's last, short batch. While this is active the first replica's slice
    gives the shapes instead. Nothing changes with a single replica, or if Keras no
    longer has the method.
    """
    original = getattr(model, "_maybe_symbolic_build", None)
    strategy = getattr(model, "_distribute_strategy", None)
    if original is None or strategy is None or replicas(model) < 2:
        yield
        return
    import tensorflow as tf  # noqa: PLC0415

    def first_replica(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> Any:
        if iterator is not None and data_batch is None:
            for _, _, per_replica in iterator:
                data_batch = tf.nest.map_structure(first_replica, next(per_replica))
                break
        return original(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build
    try:
        yield
    finally:
        del model._maybe_symbolic_build
