"""Verdicts on the benchmarks' goals, computed from the figures measured, never typed by hand.

Pure functions: each takes what a benchmark measured and its goal and answers
``"met"``, ``"not met"``, or why the figures cannot decide: ``"not resolved
(...)"`` when the machine's noise or a too-short window hides the answer,
``"not measured (...)"`` when the run the goal names did not happen. Both
benchmarks write these strings into their JSON and their printed tables, and
``docs/benchmarks.md`` quotes them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping

MET = "met"
NOT_MET = "not met"


def _number(name: str, value: float) -> float:
    """``value`` as a finite float; a clear error naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def at_most(measured: float, goal: float) -> str:
    """``measured <= goal``: a bound that may be reached (an overhead, a request count)."""
    return MET if _number("measured", measured) <= _number("goal", goal) else NOT_MET


def below(measured: float, goal: float) -> str:
    """``measured < goal``: a strict limit ("p99 under 250 ms")."""
    return MET if _number("measured", measured) < _number("goal", goal) else NOT_MET


#: Repetitions a ratio needs before its median is judged (one is one draw).
MIN_RATIO_REPETITIONS = 2


def ratio_at_least(ratios: Iterable[float], goal: float) -> str:
    """A throughput ratio's median at or above its goal ("restore at 0.8 of disk speed").

    Each ratio is one repetition's side-by-side pair; with fewer than
    :data:`MIN_RATIO_REPETITIONS` the figure is one draw: "not resolved".
    """
    listed = [_number("ratios[]", r) for r in ratios]
    if len(listed) < MIN_RATIO_REPETITIONS:
        return (
            f"not resolved ({len(listed)} repetition(s): a ratio needs "
            f"{MIN_RATIO_REPETITIONS} or more)"
        )
    return MET if statistics.median(listed) >= _number("goal", goal) else NOT_MET


def noise_floor_percent(control_ratios: Iterable[float]) -> float:
    """How far an A/A control strays from 1 at worst, in percent of the baseline.

    The control runs the same variant twice, so each round's ratio would be 1 on
    a quiet machine; the widest deviation over the rounds (either way) is the
    smallest overhead that the run can tell apart from noise.
    """
    ratios = [_number("control_ratios[]", r) for r in control_ratios]
    if not ratios:
        raise ValueError("control_ratios: empty; run the A/A control for at least one round")
    return round(100 * max(abs(r - 1) for r in ratios), 2)


def latency_below(measured: float, goal: float, floor: float) -> str:
    """A latency under its goal, on a machine whose own latency at the same quantile is ``floor``.

    Noise only adds to a latency, so a figure under the goal is met however
    loud the machine. A figure at or over the goal says nothing of the code
    measured when the machine alone (``floor``: the emulated API's own p99
    round trip) already reaches the goal: "not resolved", not "not met".
    """
    if below(measured, goal) == MET:
        return MET
    if _number("floor", floor) >= goal:
        return f"not resolved (the emulator's own p99 {floor:g} ms reaches the goal {goal:g} ms)"
    return NOT_MET


#: Rounds the A/A control needs before its deviations are read as a spread (one is one draw).
MIN_CONTROL_ROUNDS = 2


def overhead(
    overhead_percent: float, noise_floor: float, goal_percent: float, *, rounds: int
) -> str:
    """An overhead's median against its goal, judged only when the noise floor is within the goal.

    When two identical variants (the A/A control) already differ by more than
    the goal, a median under the goal, a negative one included, shows nothing
    about the goal: the verdict is "not resolved", not "met". So it is with
    fewer than :data:`MIN_CONTROL_ROUNDS` rounds, where the control's one
    deviation is a single draw, not a spread (``--quick`` runs one round).
    """
    floor, goal = _number("noise_floor", noise_floor), _number("goal_percent", goal_percent)
    if rounds < MIN_CONTROL_ROUNDS:
        return (
            f"not resolved ({rounds} round(s): the A/A control needs "
            f"{MIN_CONTROL_ROUNDS} or more to show a spread)"
        )
    if floor > goal:
        return f"not resolved (noise floor {floor:g} % wider than goal {goal:g} %)"
    return at_most(overhead_percent, goal)


def ahead_of(ours_percent: float, theirs_percent: float, noise_floor: float, *, rounds: int) -> str:
    """Our overhead below a peer's by more than the noise floor ("ahead of the peers").

    Both overheads are medians over the same interleaved rounds, each against its own
    trainer's baseline. "met" when ours is lower by more than the A/A control's
    noise floor, "not met" when higher by more, else "not resolved": a difference
    inside the floor is not one the run can show. One round is one draw. An overhead
    below minus the floor is "not resolved" too: a save cannot speed training up, so
    that side's baseline was slowed by something else and the comparison says nothing.
    """
    ours, theirs = _number("ours_percent", ours_percent), _number("theirs_percent", theirs_percent)
    floor = _number("noise_floor", noise_floor)
    if rounds < MIN_CONTROL_ROUNDS:
        return (
            f"not resolved ({rounds} round(s): the A/A control needs "
            f"{MIN_CONTROL_ROUNDS} or more to show a spread)"
        )
    for who, overhead in (("ours", ours), ("the peer's", theirs)):
        if overhead < -floor:
            # A save cannot make training faster: that side's own no-saves baseline ran slow.
            return (
                f"not resolved ({who} overhead {overhead:g} % is below minus the noise floor "
                f"{floor:g} %: its baseline segments ran slow)"
            )
    difference = round(theirs - ours, 2)
    if difference > floor:
        return MET
    if difference < -floor:
        return NOT_MET
    return f"not resolved (difference {difference:g} points within the noise floor {floor:g} %)"


def idle_requests(
    requests: float, window_seconds: float, longest_requeue_seconds: float | None
) -> str:
    """No request while nothing changes, judged only over a window a timed requeue falls in.

    ``longest_requeue_seconds`` is the longest delay after which the operator
    reconciles an unchanged job by itself (None when no such requeue is due,
    e.g. every job Running with no deadline or TTL). A window no longer than it
    may end before the requeue comes, so zero requests would prove nothing.
    """
    window = _number("window_seconds", window_seconds)
    if longest_requeue_seconds is not None:
        longest = _number("longest_requeue_seconds", longest_requeue_seconds)
        if window <= longest:
            return (
                f"not resolved (idle window {window:g} s not longer than the operator's "
                f"longest requeue, {longest:g} s)"
            )
    return at_most(requests, 0)


def at_jobs(
    measured_by_jobs: Mapping[int, float],
    jobs: int,
    goal: float,
    judge: Callable[[float, float], str] = below,
) -> str:
    """A goal set at one job count, judged on the run at exactly that count, if there was one."""
    if jobs not in measured_by_jobs:
        ran = ", ".join(map(str, sorted(measured_by_jobs))) or "none"
        return f"not measured (no run at {jobs} jobs; runs: {ran})"
    return judge(measured_by_jobs[jobs], goal)


def combined(verdicts: Iterable[str]) -> str:
    """One verdict for several: any "not met" wins, then the first undecided one, else "met"."""
    listed = list(verdicts)
    if not listed:
        raise ValueError("verdicts: empty; a goal needs at least one verdict")
    if NOT_MET in listed:
        return NOT_MET
    return next((v for v in listed if v != MET), MET)
