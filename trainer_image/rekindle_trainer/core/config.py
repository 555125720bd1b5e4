"""The trainer configuration: parsed and checked field by field, without TensorFlow.

The operator projects the TrainingJob spec into one JSON document
(``REKINDLE_CONFIG``); locally it may come from a JSON or YAML file
(``REKINDLE_CONFIG_FILE``). Its fields, defaults and bounds are declared once,
in :mod:`rekindle_trainer.contract.training_config`, the declarations the
operator's spec reuses; the contract's parser checks every field here, so that
a bad one ends the attempt before anything is imported or written, with a
message that names the field and what would be accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rekindle_trainer import contract
from rekindle_trainer.contract import documents, gang
from rekindle_trainer.contract.training_config import TrainerConfig

__all__ = [
    "ConfigError",
    "RuntimeEnv",
    "TrainerConfig",
    "load_document",
    "parse_config",
    "parse_runtime_env",
    "termination_log_from_env",
]


class ConfigError(ValueError):
    """A configuration field is wrong; the message names it and what is accepted."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name


@dataclass(frozen=True)
class RuntimeEnv:
    """What the environment tells the trainer besides the configuration document.

    ``cpu_replicas`` (``REKINDLE_CPU_REPLICAS``) is the user's, not the operator's:
    see :mod:`rekindle_trainer.training.strategy`.
    """

    checkpoint_dir: Path
    attempt: int = 1
    metrics_port: int = contract.DEFAULT_METRICS_PORT
    termination_log: Path = Path(contract.DEFAULT_TERMINATION_LOG)
    progress_file: Path | None = None
    job_name: str = ""
    job_namespace: str = ""
    job_uid: str = ""
    cpu_replicas: int = 1
    #: This process's place in its gang (``TF_CONFIG``); one worker without it.
    role: gang.WorkerRole = gang.SOLO
    #: ``REKINDLE_REPORT_TIMING=1``: the operator reads the termination message's ``timing``.
    report_timing: bool = False
    collective: str = "auto"


def parse_config(doc: Any) -> TrainerConfig:
    """Validate a configuration document and return it typed; raise :class:`ConfigError`.

    The error names the first bad field (:attr:`ConfigError.field`); its message
    lists every problem found, each with its field.
    """
    try:
        parsed = documents.parse(TrainerConfig, doc)
    except documents.DocumentError as exc:
        (field_name, problem), *others = exc.located
        rest = [f"{where}: {message}" for where, message in others]
        raise ConfigError(field_name, "; ".join([problem, *rest])) from None
    _check_together(parsed)
    return parsed


def _check_together(parsed: TrainerConfig) -> None:
    """Fields that are each valid but contradict each other (the CRD's CEL rules say the same)."""
    if parsed.early_stopping.restore_best_weights and not parsed.checkpoint.keep_best:
        raise ConfigError(
            "earlyStopping.restoreBestWeights",
            "needs checkpoint.keepBest (true by default): the best epoch's weights are "
            "restored from its checkpoint, which keepBest false lets pruning delete; "
            "set keepBest to true or restoreBestWeights to false",
        )


def load_document(env: Mapping[str, str]) -> Any:
    """The raw configuration document from ``REKINDLE_CONFIG`` or ``REKINDLE_CONFIG_FILE``."""
    text = env.get(contract.ENV_CONFIG)
    if text is not None and text.strip():
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(contract.ENV_CONFIG, f"not valid JSON ({exc})") from exc
    path = env.get(contract.ENV_CONFIG_FILE)
    if not path:
        return {}
    try:
        raw = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(contract.ENV_CONFIG_FILE, f"cannot read {path}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(raw) if path.endswith((".yaml", ".yml")) else json.loads(raw)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(
            contract.ENV_CONFIG_FILE, f"{path} is not valid JSON/YAML: {exc}"
        ) from exc


def parse_runtime_env(env: Mapping[str, str]) -> RuntimeEnv:
    """The checkpoint folder, attempt, ports, paths and CPU replicas.

    Raises :class:`ConfigError` naming the variable that is wrong.
    """
    folder = env.get(contract.ENV_CHECKPOINT_DIR, "").strip()
    if not folder:
        raise ConfigError(
            contract.ENV_CHECKPOINT_DIR,
            f"required: the job's folder on the checkpoint volume "
            f"(e.g. {contract.DEFAULT_CHECKPOINT_MOUNT}/<job>)",
        )
    _check_folder(contract.ENV_CHECKPOINT_DIR, Path(folder))
    attempt = _env_int(env, contract.ENV_ATTEMPT, 1, 1, 2**31)
    port = _env_int(env, contract.ENV_METRICS_PORT, contract.DEFAULT_METRICS_PORT, 0, 65535)
    progress = env.get(contract.ENV_PROGRESS_FILE, "").strip()
    return RuntimeEnv(
        checkpoint_dir=Path(folder),
        attempt=attempt,
        metrics_port=port,
        termination_log=Path(
            env.get(contract.ENV_TERMINATION_LOG, "").strip() or contract.DEFAULT_TERMINATION_LOG
        ),
        progress_file=Path(progress) if progress else None,
        job_name=env.get(contract.ENV_JOB_NAME, ""),
        job_namespace=env.get(contract.ENV_JOB_NAMESPACE, ""),
        job_uid=env.get(contract.ENV_JOB_UID, ""),
        cpu_replicas=_env_int(env, contract.ENV_CPU_REPLICAS, 1, 1, contract.MAX_CPU_REPLICAS),
        role=_role(env),
        report_timing=env.get(contract.ENV_REPORT_TIMING, "").strip() == "1",
        collective=_collective(env),
    )


def _collective(env: Mapping[str, str]) -> str:
    """``REKINDLE_COLLECTIVE`` (a gang's collective implementation), checked."""
    value = env.get(contract.ENV_COLLECTIVE, "").strip().lower() or "auto"
    if value not in contract.COLLECTIVES:
        raise ConfigError(
            contract.ENV_COLLECTIVE,
            f"expected one of {', '.join(contract.COLLECTIVES)}, got {value!r} "
            "(ring: gRPC, works everywhere; nccl: GPUs, one worker per GPU)",
        )
    return value


def _role(env: Mapping[str, str]) -> gang.WorkerRole:
    """The worker's place from ``TF_CONFIG``; a malformed one is a :class:`ConfigError`."""
    try:
        return gang.worker_role(env)
    except ValueError as exc:
        raise ConfigError(
            contract.ENV_TF_CONFIG,
            f"{exc}; it is set by the operator or rekindle run for spec.workers > 1 "
            "(unset it to train as one worker)",
        ) from None


def _check_folder(name: str, folder: Path) -> None:
    """Refuse a folder that cannot be one: it, or the nearest of its parents that exists, is a file.

    Retrying cannot help (exit 2, not a crash), and it is found before anything trains.
    """
    for path in (folder, *folder.parents):
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            what = "is" if path == folder else f"is inside {path}, which is"
            raise ConfigError(
                name,
                f"{folder} {what} not a folder: the checkpoint folder (the volume of "
                "spec.checkpoint, mounted for the job) must be a folder or not exist yet; "
                "remove the file or point spec.checkpoint at another volume",
            )


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            name, f"expected a whole number from {low} to {high}, got {raw!r}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(name, f"expected a whole number from {low} to {high}, got {value}")
    return value


def termination_log_from_env(env: Mapping[str, str] | None = None) -> Path:
    """Where to write the termination message even when the rest of the environment is bad."""
    source = os.environ if env is None else env
    return Path(
        source.get(contract.ENV_TERMINATION_LOG, "").strip() or contract.DEFAULT_TERMINATION_LOG
    )
