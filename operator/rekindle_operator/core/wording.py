"""Counts in words for messages a person reads: "1 epoch", "12 epochs"."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun``, the noun in the plural unless the number is one.

    >>> counted(1, "epoch"), counted(12, "epoch"), counted(0, "step")
    ('1 epoch', '12 epochs', '0 steps')
    """
    word = noun if number == 1 else (plural or f"{noun}s")
    return f"{number} {word}"
