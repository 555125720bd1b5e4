"""Reusable host buffers for the training state, so that a save costs training one copy.

A save copies every model, optimizer and metric variable to host memory on the
training thread; everything else happens on the writer thread. Allocating fresh
arrays for that copy makes the kernel fault in (and zero) every page again,
which on a loaded machine costs several times the copy itself. A
:class:`BufferPool` instead keeps up to ``depth`` sets of host arrays, one
array per variable, whose pages are faulted in once, away from the training
thread. A set is in use from the copy until the writer has published it; a save
that finds every set in use either takes the set of a queued save that has not
started yet and that a newer one may supersede (see ``training.checkpointing``),
or waits for the oldest write to finish; a set is never overwritten while it is
written.

The copy itself, which reads TensorFlow variables, is
:func:`rekindle_trainer.training.variable_copy.copy_into`; this module holds
only host memory and imports no TensorFlow.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``(group, index, name, shape, dtype)`` of each variable, in the order of ``state.variables``.
Key = tuple[str, int, str, tuple[int, ...], str]
Layout = tuple[Key, ...]


def layout(values: Mapping[str, Sequence[Any]]) -> Layout:
    """The shape of the state: which host arrays a copy needs."""
    return tuple(
        (group, index, str(v.path), tuple(int(d) for d in v.shape), np.dtype(v.dtype).str)
        for group, variables in values.items()
        for index, v in enumerate(variables)
    )


@dataclass(eq=False)
class HostBuffers:
    """One set of host arrays, one per variable, and whether its pages are faulted in yet."""

    layout: Layout
    arrays: list[np.ndarray]
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def groups(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """The arrays by group as a :class:`~.store.Snapshot` holds them."""
        out: dict[str, list[tuple[str, np.ndarray]]] = {}
        for (group, _, name, _, _), array in zip(self.layout, self.arrays, strict=True):
            out.setdefault(group, []).append((name, array))
        return out


_TOUCH_BYTES = 1 << 20


def _touch(arrays: Sequence[np.ndarray], ready: threading.Event) -> None:
    """Fault every page in, a megabyte at a time so that training gets the GIL in between."""
    try:
        for array in arrays:
            flat = array.reshape(-1).view(np.uint8)
            for start in range(0, flat.size, _TOUCH_BYTES):
                flat[start : start + _TOUCH_BYTES] = 0
    finally:
        ready.set()


class BufferPool:
    """Up to ``depth`` reusable sets of host buffers; a save takes one, the writer gives it back.

    Args:
        depth: how many sets may exist (one being written while the next save copies: 2).
    """

    def __init__(self, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1. Received: depth={depth}")
        self.depth = depth
        self.created = 0
        self._free: list[HostBuffers] = []
        self._cond = threading.Condition()

    def prepare(self, values: Mapping[str, Sequence[Any]]) -> None:
        """Have one set for the current layout ready before the first save.

        Its pages are faulted in on a helper thread: neither this call nor the save pays.
        """
        want = layout(values)
        with self._cond:
            if any(b.layout == want for b in self._free) or (
                not self._free and self.created >= self.depth
            ):
                return
            stale = self._free.pop() if self._free else None
            if stale is None:
                self.created += 1
        self.give_back(self._build(want, stale))

    def acquire(self, values: Mapping[str, Sequence[Any]]) -> HostBuffers:
        """A set for the current layout; waits while all ``depth`` sets are being written."""
        buffers = self._take(values, block=True)
        assert buffers is not None
        return buffers

    def try_acquire(self, values: Mapping[str, Sequence[Any]]) -> HostBuffers | None:
        """A set for the current layout, or ``None`` while all ``depth`` are in use.

        The caller may then supersede a queued save instead of waiting.
        """
        return self._take(values, block=False)

    def _take(self, values: Mapping[str, Sequence[Any]], *, block: bool) -> HostBuffers | None:
        want = layout(values)
        with self._cond:
            while True:
                match = next((b for b in self._free if b.layout == want), None)
                if match is not None:
                    self._free.remove(match)
                    break
                if self._free or self.created < self.depth:
                    stale = self._free.pop() if self._free else None
                    if stale is None:
                        self.created += 1
                    match = None
                    break
                if not block:
                    return None
                self._cond.wait()
        buffers = match if match is not None else self._build(want, stale)
        buffers.ready.wait()
        return buffers

    def give_back(self, buffers: HostBuffers) -> None:
        """Return a set once the writer is done with it (returning it twice is harmless)."""
        with self._cond:
            if any(b is buffers for b in self._free):
                return
            self._free.append(buffers)
            self._cond.notify_all()

    @staticmethod
    def _build(want: Layout, stale: HostBuffers | None) -> HostBuffers:
        """A set for ``want``, reusing the arrays of ``stale`` whose key still matches."""
        reusable = dict(zip(stale.layout, stale.arrays, strict=True)) if stale else {}
        arrays: list[np.ndarray] = []
        fresh: list[np.ndarray] = []
        for key in want:
            array = reusable.get(key)
            if array is None:
                array = np.empty(key[3], dtype=np.dtype(key[4]))
                fresh.append(array)
            arrays.append(array)
        buffers = HostBuffers(want, arrays)
        threading.Thread(
            target=_touch, args=(fresh, buffers.ready), name="rekindle-prefault", daemon=True
        ).start()
        return buffers
