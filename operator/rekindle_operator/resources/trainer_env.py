"""The environment the contract gives the trainer (``docs/contract.md``, "In").

Built here once, as name → value pairs, for both bodies: :mod:`.pods` turns
them into a container's ``env`` entries, ``rekindle run`` into a local
process's environment. Only the values differ (paths in a pod, paths under the
work folder locally); the names and their encoding are the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rekindle_trainer import contract


@dataclass(frozen=True)
class JobIdentity:
    """Who the trainer works for (names its logs and metrics)."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> JobIdentity:
        """The identity of a TrainingJob as the API returns it."""
        meta = job["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))


def variables(
    *,
    config: Mapping[str, Any],
    checkpoint_dir: str,
    attempt: int,
    job: JobIdentity,
    metrics_port: int,
    termination_log: str,
    progress_file: str | None = None,
    tf_config: str | None = None,
) -> dict[str, str]:
    """The contract's variables for one attempt, in the order a pod lists them.

    Args:
        config: the trainer configuration document (``REKINDLE_CONFIG``, compact JSON).
        checkpoint_dir: the job's folder on the checkpoint volume.
        attempt: the attempt number (1, 2, …).
        job: the job the attempt belongs to.
        metrics_port: the trainer's Prometheus port (0: none).
        termination_log: where the trainer writes its termination message.
        progress_file: where it appends progress events; None: it writes none.
        tf_config: a gang worker's ``TF_CONFIG`` (:mod:`rekindle_trainer.contract.gang`);
            None for one worker, which gets none.
    """
    values = {
        contract.ENV_CONFIG: json.dumps(dict(config), separators=(",", ":"), sort_keys=True),
        contract.ENV_CHECKPOINT_DIR: checkpoint_dir,
        contract.ENV_ATTEMPT: str(attempt),
        contract.ENV_JOB_NAME: job.name,
        contract.ENV_JOB_NAMESPACE: job.namespace,
        contract.ENV_JOB_UID: job.uid,
        contract.ENV_METRICS_PORT: str(metrics_port),
        contract.ENV_TERMINATION_LOG: termination_log,
        # This operator reads the termination message's timing (status.goodput).
        contract.ENV_REPORT_TIMING: "1",
    }
    if progress_file is not None:
        values[contract.ENV_PROGRESS_FILE] = progress_file
    if tf_config is not None:
        values[contract.ENV_TF_CONFIG] = tf_config
    return values
