"""The trainer configuration: parsed and checked field by field, without TensorFlow.

The operator projects the TrainingJob spec into one JSON document
(``REKINDLE_CONFIG``); locally it may come from a JSON or YAML file
(``REKINDLE_CONFIG_FILE``). Every field is validated here, so that a bad one
ends the attempt before anything is imported or written, with a message that
names the field and what would be accepted.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from rekindle_trainer import contract

ENTRYPOINT_PATTERN: Final = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
MODES: Final = ("auto", "min", "max")
MAX_SEED: Final = 2**31 - 1


class ConfigError(ValueError):
    """A configuration field is wrong; the message names it and what is accepted."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name


@dataclass(frozen=True)
class CheckpointPolicy:
    """When to save and how many checkpoints to keep.

    Attributes:
        every_epochs: save after every N epochs; 0 disables. Defaults to 1.
        every_steps: save after every N optimizer steps; 0 disables.
        every_seconds: save when N seconds passed since the last save; 0 disables.
        keep: how many of the newest checkpoints to keep (at least 1). Defaults to 3.
        keep_best: also keep the checkpoint of the best epoch. Defaults to True.
    """

    every_epochs: int = 1
    every_steps: int = 0
    every_seconds: float = 0.0
    keep: int = 3
    keep_best: bool = True


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Keras ``EarlyStopping``'s parameters, under the spec's camelCase names."""

    enabled: bool = True
    monitor: str = "val_loss"
    min_delta: float = 0.0
    patience: int = 0
    mode: str = "auto"
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: int = 0


@dataclass(frozen=True)
class TrainerConfig:
    """The whole trainer configuration document (see ``docs/contract.md``)."""

    entrypoint: str | None = None
    epochs: int = 10
    batch_size: int = 32
    steps_per_epoch: int | None = None
    seed: int = 1337
    deterministic: bool = True
    mixed_precision: bool = False
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass(frozen=True)
class RuntimeEnv:
    """What the environment tells the trainer besides the configuration document.

    ``cpu_replicas`` (``REKINDLE_CPU_REPLICAS``) is the user's, not the operator's:
    see :mod:`rekindle_trainer.strategy`.
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


# --------------------------------------------------------------------------
# Field checkers: each returns the value or raises ConfigError naming the field.
# --------------------------------------------------------------------------


def _int(doc: Mapping[str, Any], key: str, where: str, default: int, minimum: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where + key, f"expected a whole number >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(where + key, f"expected a whole number >= {minimum}, got {value}")
    return value


def _number(
    doc: Mapping[str, Any], key: str, where: str, default: float | None, *, nonneg: bool
) -> float | None:
    value = doc.get(key, default)
    if value is None:
        return None
    accepted = "a number >= 0" if nonneg else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(where + key, f"expected {accepted}, got {value!r}")
    if nonneg and value < 0:
        raise ConfigError(where + key, f"expected {accepted}, got {value}")
    return float(value)


def _bool(doc: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(where + key, f"expected true or false, got {value!r}")
    return value


def _object(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(where + key, f"expected an object, got {type(value).__name__}")
    return value


def _no_unknown(doc: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in doc:
        if key not in allowed:
            raise ConfigError(
                where + str(key), f"unknown field; accepted fields: {', '.join(allowed)}"
            )


_TOP: Final = (
    "entrypoint",
    "epochs",
    "batchSize",
    "stepsPerEpoch",
    "seed",
    "deterministic",
    "mixedPrecision",
    "hyperparameters",
    "checkpoint",
    "earlyStopping",
)
_CHECKPOINT: Final = ("everyEpochs", "everySteps", "everySeconds", "keep", "keepBest")
_EARLY: Final = (
    "enabled",
    "monitor",
    "minDelta",
    "patience",
    "mode",
    "baseline",
    "restoreBestWeights",
    "startFromEpoch",
)


def parse_config(doc: Any) -> TrainerConfig:
    """Validate a configuration document and return it typed; raise :class:`ConfigError`."""
    if not isinstance(doc, Mapping):
        raise ConfigError("(document)", f"expected a JSON object, got {type(doc).__name__}")
    _no_unknown(doc, _TOP, "")
    entrypoint = doc.get("entrypoint")
    if entrypoint is not None and (
        not isinstance(entrypoint, str) or not ENTRYPOINT_PATTERN.match(entrypoint)
    ):
        raise ConfigError(
            "entrypoint",
            f"expected 'package.module:function' (e.g. rekindle_trainer.examples.digits:build), "
            f"got {entrypoint!r}",
        )
    steps = doc.get("stepsPerEpoch")
    steps_per_epoch = None if steps is None else _int(doc, "stepsPerEpoch", "", 1, 1)
    seed = _int(doc, "seed", "", 1337, 0)
    if seed > MAX_SEED:
        raise ConfigError("seed", f"expected a whole number from 0 to {MAX_SEED}, got {seed}")
    hyper = doc.get("hyperparameters", {})
    if hyper is None:
        hyper = {}
    if not isinstance(hyper, Mapping):
        raise ConfigError("hyperparameters", f"expected an object, got {type(hyper).__name__}")
    return TrainerConfig(
        entrypoint=entrypoint,
        epochs=_int(doc, "epochs", "", 10, 1),
        batch_size=_int(doc, "batchSize", "", 32, 1),
        steps_per_epoch=steps_per_epoch,
        seed=seed,
        deterministic=_bool(doc, "deterministic", "", True),
        mixed_precision=_bool(doc, "mixedPrecision", "", False),
        hyperparameters=dict(hyper),
        checkpoint=_parse_checkpoint(_object(doc, "checkpoint", "")),
        early_stopping=_parse_early_stopping(_object(doc, "earlyStopping", "")),
    )


def _parse_checkpoint(doc: Mapping[str, Any]) -> CheckpointPolicy:
    where = "checkpoint."
    _no_unknown(doc, _CHECKPOINT, where)
    seconds = _number(doc, "everySeconds", where, 0.0, nonneg=True)
    return CheckpointPolicy(
        every_epochs=_int(doc, "everyEpochs", where, 1, 0),
        every_steps=_int(doc, "everySteps", where, 0, 0),
        every_seconds=seconds or 0.0,
        keep=_int(doc, "keep", where, 3, 1),
        keep_best=_bool(doc, "keepBest", where, True),
    )


def _parse_early_stopping(doc: Mapping[str, Any]) -> EarlyStoppingConfig:
    where = "earlyStopping."
    _no_unknown(doc, _EARLY, where)
    monitor = doc.get("monitor", "val_loss")
    if not isinstance(monitor, str) or not monitor.strip():
        raise ConfigError(
            where + "monitor", f"expected a Keras log name such as val_loss, got {monitor!r}"
        )
    mode = doc.get("mode", "auto")
    if mode not in MODES:
        raise ConfigError(where + "mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
    return EarlyStoppingConfig(
        enabled=_bool(doc, "enabled", where, True),
        monitor=monitor,
        min_delta=_number(doc, "minDelta", where, 0.0, nonneg=True) or 0.0,
        patience=_int(doc, "patience", where, 0, 0),
        mode=mode,
        baseline=_number(doc, "baseline", where, None, nonneg=False),
        restore_best_weights=_bool(doc, "restoreBestWeights", where, False),
        start_from_epoch=_int(doc, "startFromEpoch", where, 0, 0),
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
