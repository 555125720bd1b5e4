"""``metav1.Condition`` helpers: set one condition without disturbing the others.

Follows the Kubernetes convention: ``lastTransitionTime`` changes only when a
condition's ``status`` flips; a new reason or message alone does not move it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from rekindle_operator.core.job_status import Condition

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, or None."""
    for condition in conditions:
        if condition.type == type_:
            return condition
    return None


def set_condition(
    conditions: tuple[Condition, ...],
    type_: str,
    *,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> tuple[Condition, ...]:
    """``conditions`` with the one of ``type_`` set; its place in the list is kept.

    ``lastTransitionTime`` becomes ``now`` only if the condition is new or its
    ``status`` changed.
    """
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition status must be True, False or Unknown, got {status!r}")
    old = find(conditions, type_)
    if old is None:
        new = Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=now,
            observed_generation=generation,
        )
        return (*conditions, new)
    changed_at = now if old.status != status else old.last_transition_time
    updated = replace(
        old,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=changed_at,
        observed_generation=generation if generation is not None else old.observed_generation,
    )
    return tuple(updated if c.type == type_ else c for c in conditions)
