"""Early stopping whose state survives restarts: Keras ``EarlyStopping`` as pure logic.

Keras resets ``wait``, ``best`` and ``best_weights`` in ``on_train_begin``
and saves none of them, so a resumed run judges patience against the wrong
best. :class:`EarlyStopper` follows Keras 3.15's ``EarlyStopping.on_epoch_end``
rule for rule (``min_delta``, ``patience``, ``baseline``, ``start_from_epoch``,
and the "best so far" for ``restore_best_weights``), but keeps its state in a
plain :class:`EarlyStoppingState` that goes into every checkpoint. It needs no
TensorFlow. As in Keras:

* values are compared in float32 (Keras' ``ops.less``/``ops.greater`` turn the
  Python floats into float32 tensors), after subtracting ``min_delta`` in float64,
  so an improvement of exactly ``min_delta`` counts or not as it does in Keras;
* ``min_delta``'s sign is ignored (Keras takes its absolute value);
* ``mode="auto"`` is resolved at the first epoch end, when the compiled metrics
  exist (:func:`auto_direction`, :func:`direction_at_epoch_end`).

Unlike Keras, a monitor that is not among the epoch's logs is an error (Keras
warns and trains the whole budget): :func:`direction_at_epoch_end` raises
:class:`~rekindle_trainer.core.config.ConfigError` listing the logged metrics.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rekindle_trainer.contract.training_config import EarlyStopping
from rekindle_trainer.core.config import ConfigError

#: Keras' name for a metric's direction (``Metric._direction``) that means "higher is better".
KERAS_UP = "up"


@dataclass
class EarlyStoppingState:
    """What early stopping must remember across restarts (0-based epochs, as in Keras)."""

    wait: int = 0
    best: float | None = None
    best_epoch: int | None = None
    stopped_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the checkpoint manifest."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EarlyStoppingState:
        """Inverse of :meth:`to_dict`."""
        best = doc.get("best")
        return cls(
            wait=int(doc.get("wait", 0)),
            best=None if best is None else float(best),
            best_epoch=doc.get("best_epoch"),
            stopped_epoch=doc.get("stopped_epoch"),
        )


def has_stopped(state: EarlyStoppingState, config: EarlyStopping) -> bool:
    """Whether early stopping ended the run (disabled, the rule only keeps the best epoch)."""
    return config.enabled and state.stopped_epoch is not None


def in_use(config: EarlyStopping) -> bool:
    """Whether the rule must run: it stops training, or it picks the weights to restore.

    A rule that is not in use still tracks the best epoch when it can (``keepBest``
    spares its checkpoint), but a monitor it cannot read is then no error.
    """
    return config.enabled or config.restore_best_weights


def auto_direction(monitor: str, compiled: Iterable[tuple[str, str]]) -> str | None:
    """Keras 3.15's ``mode="auto"``: ``"min"``, ``"max"``, or ``None`` when it cannot tell.

    Args:
        monitor: the monitored log name; one ``val_`` prefix is dropped.
        compiled: ``(name, direction)`` of each compiled metric that has a direction
            (Keras' ``Metric._direction``: ``"up"`` is max, anything else min), in
            the order of ``model.metrics``. Only the metrics of the model's
            ``CompileMetrics``/``MetricsList`` count, as in Keras.

    Keras' rule, literally: the name ``loss`` is min; then every compiled metric of
    that name sets the direction, so the last one wins. Nothing else is recognised:
    an ``<output>_loss`` of a multi-output model is not a compiled metric, and Keras
    cannot tell its direction either.
    """
    name = monitor.removeprefix("val_")
    direction = "min" if name == "loss" else None
    for metric_name, metric_direction in compiled:
        if metric_name == name:
            direction = "max" if metric_direction == KERAS_UP else "min"
    return direction


def missing_monitor_problem(monitor: str, logs: Mapping[str, Any]) -> str:
    """What to say when ``monitor`` is not among an epoch's ``logs``: what is, and a guess."""
    names = sorted(logs)
    close = difflib.get_close_matches(monitor, names, n=1, cutoff=0.75)  # a typo, not a cousin
    guess = f"; did you mean {close[0]!r}?" if close else ""
    logged = ", ".join(names) if names else "none"
    return f"{monitor!r} was not logged at the end of the epoch (logged: {logged}){guess}"


def direction_at_epoch_end(
    config: EarlyStopping, logs: Mapping[str, Any], compiled: Iterable[tuple[str, str]]
) -> str | None:
    """The direction to compare in, at an epoch's end (Keras resolves ``auto`` at the first).

    Returns ``None`` when a rule that is not in use (see :func:`in_use`) cannot
    run: its monitor is not logged, or ``auto`` cannot tell its direction.

    Raises:
        ConfigError: for a rule in use whose monitor is not among ``logs`` (a typo such
            as ``val_mea``, or ``val_auc`` on a model without AUC, must not train the
            whole budget), or whose direction ``mode: auto`` cannot tell.
    """
    if config.monitor not in logs:
        if not in_use(config):
            return None
        raise ConfigError("earlyStopping.monitor", missing_monitor_problem(config.monitor, logs))
    if config.mode != "auto":
        return str(config.mode)
    direction = auto_direction(config.monitor, compiled)
    if direction is None and in_use(config):
        raise ConfigError(
            "earlyStopping.mode",
            f"auto cannot tell whether {config.monitor!r} should go down or up (Keras "
            "recognises 'loss' and the compiled metrics only); set mode to 'min' or 'max'",
        )
    return direction


def float32(value: float) -> np.float32:
    """``value`` as Keras compares it: a float32 (too large a value becomes infinite)."""
    with np.errstate(over="ignore"):
        return np.float32(value)


@dataclass(frozen=True)
class EpochVerdict:
    """What one epoch's end meant for early stopping."""

    improved: bool
    stop: bool


class EarlyStopper:
    """Keras ``EarlyStopping.on_epoch_end`` with external, serializable state.

    Args:
        config: the ``earlyStopping`` section of the configuration.
        direction: ``"min"`` or ``"max"``, already resolved from ``mode``.
        state: the state restored from a checkpoint. Defaults to a fresh one.
    """

    def __init__(
        self,
        config: EarlyStopping,
        direction: str,
        state: EarlyStoppingState | None = None,
    ) -> None:
        if direction not in ("min", "max"):
            raise ValueError(f"direction must be 'min' or 'max'. Received: direction={direction!r}")
        self.config = config
        self.direction = direction
        self.state = state if state is not None else EarlyStoppingState()
        # Keras takes |min_delta| and subtracts it with the sign of the direction.
        self._delta = abs(config.min_delta) * (-1.0 if direction == "min" else 1.0)

    def improves(self, value: float, reference: float | None) -> bool:
        """Keras' ``_is_improvement``: ``value - delta`` beats ``reference``, in float32."""
        if reference is None:
            return True
        shifted, ref = float32(value - self._delta), float32(reference)
        return bool(shifted < ref) if self.direction == "min" else bool(shifted > ref)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any]) -> EpochVerdict:
        """Update the state with the logs of 0-based ``epoch``; whether it improved or stops."""
        raw = logs.get(self.config.monitor)
        if raw is None or epoch < self.config.start_from_epoch:
            return EpochVerdict(improved=False, stop=False)
        current = float(raw)
        state = self.state
        improved_first = False
        if self.config.restore_best_weights and state.best_epoch is None:
            # Keras: "if best weights were never set, the current weights are the best".
            state.best_epoch = epoch
            improved_first = True
        state.wait += 1
        if self.improves(current, state.best):
            state.best = current
            state.best_epoch = epoch
            if self.config.baseline is None or self.improves(current, self.config.baseline):
                state.wait = 0
            return EpochVerdict(improved=True, stop=False)
        if state.wait >= self.config.patience and epoch > 0:
            state.stopped_epoch = epoch
            return EpochVerdict(improved=improved_first, stop=True)
        return EpochVerdict(improved=improved_first, stop=False)
