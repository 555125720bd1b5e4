"""Early stopping whose state survives restarts: Keras ``EarlyStopping`` as pure logic.

Keras resets ``wait``, ``best`` and ``best_weights`` in ``on_train_begin``
and saves none of them, so a resumed run judges patience against the wrong
best. :class:`EarlyStopper` follows Keras 3.15's ``EarlyStopping.on_epoch_end``
rule for rule (``min_delta``, ``patience``, ``baseline``, ``start_from_epoch``,
and the "best so far" for ``restore_best_weights``), but keeps its state in a
plain :class:`EarlyStoppingState` that goes into every checkpoint. It needs no
TensorFlow; the direction for ``mode="auto"`` is resolved by the caller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rekindle_trainer.config import EarlyStoppingConfig


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
        config: EarlyStoppingConfig,
        direction: str,
        state: EarlyStoppingState | None = None,
    ) -> None:
        if direction not in ("min", "max"):
            raise ValueError(f"direction must be 'min' or 'max'. Received: direction={direction!r}")
        self.config = config
        self.direction = direction
        self.state = state if state is not None else EarlyStoppingState()
        # Keras folds min_delta's sign into the comparison.
        self._delta = abs(config.min_delta) * (-1.0 if direction == "min" else 1.0)

    def _better(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        shifted = value - self._delta
        return shifted < reference if self.direction == "min" else shifted > reference

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> EpochVerdict:
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
        if self._better(current, state.best):
            state.best = current
            state.best_epoch = epoch
            if self.config.baseline is None or self._better(current, self.config.baseline):
                state.wait = 0
            return EpochVerdict(improved=True, stop=False)
        if state.wait >= self.config.patience and epoch > 0:
            state.stopped_epoch = epoch
            return EpochVerdict(improved=improved_first, stop=True)
        return EpochVerdict(improved=improved_first, stop=False)
