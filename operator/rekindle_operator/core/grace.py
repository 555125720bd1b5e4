"""Whether ``terminationGracePeriodSeconds`` leaves room for the save the trainer measured.

On SIGTERM the trainer finishes its step, saves and publishes; the kubelet
kills it ``terminationGracePeriodSeconds`` after the signal. A grace shorter
than a save loses that save (and every step since the last one). The trainer
reports the 99th percentile of its save durations (``saveSecondsP99`` in
``GET /progress``); the rule here says when the grace is too short for it:

    needed = p99 * :data:`SAVE_FACTOR` + :data:`MARGIN_SECONDS`

The factor covers a save under stop pressure being slower than the measured
ones (the final save runs while other pods of a drained node write too); the
margin covers the step SIGTERM lands in, the publish after the write, and the
kubelet's own latency in delivering the signal. Only after
:data:`MIN_SAVES` saves: one cold first save (caches, a fresh volume) must
not raise and clear a warning by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from rekindle_operator.core import conditions
from rekindle_operator.core.job_status import Status
from rekindle_operator.core.reasons import ConditionType

#: The measured p99 is multiplied by this (a save under stop pressure is slower).
SAVE_FACTOR: Final = 1.5
#: Seconds added for the step in flight, the publish and the kubelet's latency.
MARGIN_SECONDS: Final = 10.0
#: Saves this attempt must have published before its p99 is judged.
MIN_SAVES: Final = 3
#: The ``GraceTooShort`` condition's reasons (not phase reasons: no ``status.reason``).
REASON_TOO_SHORT: Final = "SaveOutlastsGrace"
REASON_COVERS: Final = "GraceCoversSave"


@dataclass(frozen=True)
class Verdict:
    """The rule's answer for one reading: whether the grace is too short, and what to say."""

    too_short: bool
    #: The grace that would do (whole seconds, rounded up).
    suggested_seconds: int
    message: str


def needed_seconds(p99_seconds: float) -> int:
    """The shortest grace that leaves room for saves of ``p99_seconds`` (whole seconds)."""
    return math.ceil(p99_seconds * SAVE_FACTOR + MARGIN_SECONDS)


def judge(grace_seconds: int, p99_seconds: float | None, saves: int) -> Verdict | None:
    """The verdict on ``grace_seconds`` for saves whose p99 is ``p99_seconds``.

    None: nothing to judge yet (no p99 reported: an older trainer; fewer than
    :data:`MIN_SAVES` saves).
    """
    if p99_seconds is None or saves < MIN_SAVES:
        return None
    needed = needed_seconds(p99_seconds)
    measured = f"the trainer's saves take up to {p99_seconds:.1f} s (p99 of {saves} saves)"
    if grace_seconds < needed:
        return Verdict(
            too_short=True,
            suggested_seconds=needed,
            message=(
                f"spec.terminationGracePeriodSeconds ({grace_seconds} s) is shorter than "
                f"a stop needs: {measured}; a stopped attempt may be killed before its "
                f"final save and lose its steps since the last one. Set "
                f"terminationGracePeriodSeconds to at least {needed} "
                f"(p99 * {SAVE_FACTOR:g} + {MARGIN_SECONDS:g} s), or make saves faster"
            ),
        )
    return Verdict(
        too_short=False,
        suggested_seconds=needed,
        message=(
            f"spec.terminationGracePeriodSeconds ({grace_seconds} s) covers a stop: "
            f"{measured}, {needed} s needed"
        ),
    )


def with_verdict(status: Status, verdict: Verdict | None, now: datetime) -> tuple[Status, bool]:
    """``status`` with its ``GraceTooShort`` condition set by ``verdict``; whether it became True.

    No verdict leaves the condition as it is (a new attempt keeps its last
    judgement until it has saved :data:`MIN_SAVES` times), and a False verdict
    adds no condition to a job that never had one. The caller posts the
    Warning event only when it became True: once per finding, not per read.
    """
    old = conditions.find(status.conditions, ConditionType.GRACE_TOO_SHORT)
    if verdict is None or (old is None and not verdict.too_short):
        return status, False
    value = conditions.TRUE if verdict.too_short else conditions.FALSE
    reason = REASON_TOO_SHORT if verdict.too_short else REASON_COVERS
    conds = conditions.set_condition(
        status.conditions,
        ConditionType.GRACE_TOO_SHORT,
        status=value,
        reason=reason,
        message=verdict.message,
        now=now,
        generation=status.observed_generation,
    )
    raised = verdict.too_short and (old is None or old.status != conditions.TRUE)
    return status.but(conditions=conds), raised
