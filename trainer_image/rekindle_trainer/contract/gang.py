"""The gang of workers one attempt trains on: ``TF_CONFIG``, written and read.

With ``spec.workers: N`` greater than 1, every worker of an attempt is given
TensorFlow's standard ``TF_CONFIG`` (:data:`~rekindle_trainer.contract.ENV_TF_CONFIG`)::

    {"cluster": {"worker": ["w0.job-workers.ns.svc:2222", "w1.job-workers.ns.svc:2222"]},
     "task": {"type": "worker", "index": 1}}

The operator builds it with :func:`tf_config` (hosts: each pod's hostname under
the job's headless Service), ``rekindle run`` with the same function (hosts:
``127.0.0.1`` and free ports); the trainer reads its place with
:func:`worker_role`. Worker :data:`~rekindle_trainer.contract.CHIEF_INDEX` is
the chief. A single worker gets no ``TF_CONFIG`` at all.

Example:
    >>> doc = tf_config(["127.0.0.1:5001", "127.0.0.1:5002"], 1)
    >>> worker_role({"TF_CONFIG": json.dumps(doc)})
    WorkerRole(index=1, count=2)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rekindle_trainer.contract import CHIEF_INDEX, ENV_TF_CONFIG, MAX_WORKERS

#: The task type of every worker (no ``chief`` or ``ps`` entries: worker 0 is the chief).
TASK_TYPE = "worker"


@dataclass(frozen=True)
class WorkerRole:
    """Where one worker stands in its gang."""

    index: int
    count: int

    @property
    def is_chief(self) -> bool:
        """Whether this worker is the chief (publishes checkpoints, decides success)."""
        return self.index == CHIEF_INDEX


#: The role of a process that has no ``TF_CONFIG``: the one and only worker.
SOLO = WorkerRole(index=CHIEF_INDEX, count=1)


def tf_config(hosts: Sequence[str], index: int) -> dict[str, Any]:
    """``TF_CONFIG`` for worker ``index`` of a gang whose workers listen at ``hosts``.

    Raises:
        ValueError: when ``hosts`` is empty, longer than the most workers, or
            ``index`` is not one of its positions.
    """
    if not 1 <= len(hosts) <= MAX_WORKERS:
        raise ValueError(f"a gang has 1 to {MAX_WORKERS} workers, got {len(hosts)} hosts")
    if not 0 <= index < len(hosts):
        raise ValueError(f"worker index {index} is outside the gang of {len(hosts)}")
    return {"cluster": {TASK_TYPE: list(hosts)}, "task": {"type": TASK_TYPE, "index": index}}


def tf_config_text(hosts: Sequence[str], index: int) -> str:
    """:func:`tf_config` as the compact JSON an environment variable holds."""
    return json.dumps(tf_config(hosts, index), separators=(",", ":"), sort_keys=True)


def worker_role(environ: Mapping[str, str]) -> WorkerRole:
    """The place of this process in its gang, from ``TF_CONFIG`` (:data:`SOLO` without one).

    Raises:
        ValueError: naming ``TF_CONFIG`` and the part that is wrong.
    """
    text = environ.get(ENV_TF_CONFIG, "").strip()
    if not text:
        return SOLO
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_TF_CONFIG}: not JSON ({exc})") from exc
    cluster = doc.get("cluster") if isinstance(doc, dict) else None
    task = doc.get("task") if isinstance(doc, dict) else None
    if not isinstance(cluster, dict):
        raise ValueError(f"{ENV_TF_CONFIG}: cluster must be an object of task lists")
    hosts = cluster.get(TASK_TYPE)
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise ValueError(f"{ENV_TF_CONFIG}: cluster.{TASK_TYPE} must be a list of host:port")
    if set(cluster) != {TASK_TYPE}:
        others = sorted(set(cluster) - {TASK_TYPE})
        raise ValueError(
            f"{ENV_TF_CONFIG}: only {TASK_TYPE!r} tasks are supported (worker "
            f"{CHIEF_INDEX} is the chief), got {others}"
        )
    if not isinstance(task, dict) or task.get("type") != TASK_TYPE:
        raise ValueError(f"{ENV_TF_CONFIG}: task.type must be {TASK_TYPE!r}")
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(hosts):
        raise ValueError(
            f"{ENV_TF_CONFIG}: task.index must be 0 to {len(hosts) - 1}, got {index!r}"
        )
    return WorkerRole(index=index, count=len(hosts))
