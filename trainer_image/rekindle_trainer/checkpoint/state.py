"""The model's training state as host arrays, and back.

A checkpoint holds three groups: ``model`` (every model variable, the dropout
layers' seed-generator states included), ``optimizer`` (its step counter,
moments, loss scale) and ``metrics`` (the running sums behind an epoch's
``loss``/``accuracy``, so that an epoch resumed mid-way reports the same
averages). Copying them to host memory is all a save costs the training thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SEED_STATE_NAME = "seed_generator_state"


class StateMismatch(ValueError):
    """A checkpoint's arrays do not fit this model (another architecture or optimizer)."""


def variables(model: Any) -> dict[str, list[Any]]:
    """The variables of each group, in a stable order."""
    optimizer = getattr(model, "optimizer", None)
    return {
        "model": list(model.variables),
        "optimizer": list(optimizer.variables) if optimizer is not None else [],
        "metrics": list(model.metrics_variables),
    }


def build_optimizer(model: Any) -> None:
    """Create the optimizer's slot variables now (Keras makes them at the first step)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


def snapshot(model: Any) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Host copies of every variable (the only part of a save on the training thread)."""
    return {
        group: [(v.path, _host_copy(v)) for v in values]
        for group, values in variables(model).items()
    }


def _host_copy(variable: Any) -> np.ndarray:
    """``variable.numpy()`` is already a copy with TensorFlow; copy again only if it is a view."""
    array = np.asarray(variable.numpy())
    return array if array.flags.owndata else array.copy()


def restore(
    model: Any, groups: Mapping[str, Sequence[tuple[str, np.ndarray]]], which: Sequence[str]
) -> None:
    """Assign the saved arrays of the groups ``which``.

    Raises :class:`StateMismatch`, before assigning anything, when any array differs in count
    or shape.
    """
    live = variables(model)
    for group in which:
        saved = list(groups.get(group, []))
        current = live[group]
        if len(saved) != len(current):
            raise StateMismatch(
                f"checkpoint group {group!r} has {len(saved)} variables, the model has "
                f"{len(current)}: was the model or optimizer changed since it was written?"
            )
        for variable, (name, array) in zip(current, saved, strict=True):
            if tuple(variable.shape) != array.shape:
                raise StateMismatch(
                    f"checkpoint variable {name!r} has shape {array.shape}, the model's "
                    f"{variable.path!r} has {tuple(variable.shape)}"
                )
    for group in which:
        for variable, (_, array) in zip(live[group], groups.get(group, []), strict=True):
            variable.assign(array)


def add_metrics(model: Any, groups: Mapping[str, Sequence[tuple[str, np.ndarray]]]) -> None:
    """Add the saved metric sums to the live ones (an epoch resumed after its first step).

    Keras' metrics keep sums and counts, so the saved part of the epoch plus the
    part trained since gives the same totals as an uninterrupted epoch (IEEE
    addition is commutative, so even bitwise for the first addition).
    """
    live = variables(model)["metrics"]
    saved = list(groups.get("metrics", []))
    if len(saved) != len(live):
        raise StateMismatch(
            f"checkpoint has {len(saved)} metric variables, the model has {len(live)}: "
            "were the compiled metrics changed since it was written?"
        )
    for variable, (name, array) in zip(live, saved, strict=True):
        if tuple(variable.shape) != array.shape:
            raise StateMismatch(f"checkpoint metric {name!r} has shape {array.shape}")
        variable.assign(variable.numpy() + array)


def seed_key(seed: int, epoch: int, index: int) -> int:
    """A 32-bit key for seed generator ``index`` at the start of ``epoch``."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def key_seed_generators(model: Any, seed: int, epoch: int) -> int:
    """Set each seed-generator state from ``(seed, epoch, index)``; how many there are.

    Dropout masks of an epoch then depend on the seed and the epoch only, not on
    how many steps an earlier process happened to run.
    """
    states = [v for v in model.variables if v.name == SEED_STATE_NAME]
    for index, state in enumerate(states):
        value = np.array([seed_key(seed, epoch, index), 0], dtype=state.dtype)
        state.assign(value)
    return len(states)
