"""How an attempt ended, read from a pod (as the API returns it) or from a local process.

Pure functions: the pod dict, the time and what the caller knows about nodes
are passed in. The result is an :class:`AttemptEnd` (the attempt is over), an
:class:`AttemptRunning` (it runs) or ``None`` (nothing to act on yet, e.g. a
pod still being scheduled, or still shutting down after a SIGTERM).

The order of the checks says which signal wins: a clean exit 0 is a success
whatever else happened; exit 2 is invalid; an OOM kill is an OOM kill; a
disruption (the ``DisruptionTarget`` condition, a deletion not made by the
operator, a vanished node) wins over the exit code it caused (137 after the
grace period); then exit 143 is a preemption and any other code a crash.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rekindle_operator import timestamps
from rekindle_operator.ownership import LABEL_ATTEMPT
from rekindle_operator.reasons import Cause
from rekindle_trainer import contract
from rekindle_trainer.contract import Outcome, TerminationMessage

#: The trainer's container name in the pod.
TRAINER_CONTAINER: Final = "trainer"
#: Set on a pod by the operator before it deletes or stops it on purpose
#: (value: why, e.g. ``Suspended``, ``DeadlineExceeded``). Such an end is
#: :attr:`Cause.STOPPED`, never a disruption.
STOP_ANNOTATION: Final = "rekindle.dev/stopped-by-operator"

#: ``DisruptionTarget`` condition reasons (Kubernetes ≥ 1.26) and what they mean here.
DISRUPTION_REASONS: Final[dict[str, Cause]] = {
    "PreemptionByScheduler": Cause.PREEMPTED,
    "PreemptionByKubeScheduler": Cause.PREEMPTED,  # the name before Kubernetes 1.27
    "EvictionByEvictionAPI": Cause.EVICTED,
    "TerminationByKubelet": Cause.EVICTED,  # node-pressure eviction, graceful node shutdown
    "DeletionByTaintManager": Cause.NODE_LOST,  # NoExecute taint: node unreachable / not ready
    "DeletionByPodGC": Cause.NODE_LOST,  # the pod's node is gone
}
#: Pod ``status.reason`` values set when the kubelet or the control plane ended the pod.
POD_REASONS: Final[dict[str, Cause]] = {
    "Evicted": Cause.EVICTED,
    "Preempting": Cause.PREEMPTED,
    "NodeLost": Cause.NODE_LOST,
    "Shutdown": Cause.NODE_LOST,
    "NodeShutdown": Cause.NODE_LOST,
    "Terminated": Cause.NODE_LOST,
}
# Not disruptions: a node's admission rejections (UnexpectedAdmissionError, NodeAffinity,
# OutOf<resource>) would come back at once if restarted at once, so they are crashes
# without an exit code, restarted after a backoff and counted.
#: Container ``waiting.reason`` values that end an attempt before the trainer runs.
WAITING_REASONS: Final[dict[str, Cause]] = {
    "ErrImagePull": Cause.IMAGE_PULL_ERROR,
    "ImagePullBackOff": Cause.IMAGE_PULL_ERROR,
    "InvalidImageName": Cause.IMAGE_PULL_ERROR,
    "ErrImageNeverPull": Cause.IMAGE_PULL_ERROR,
    "CreateContainerConfigError": Cause.CONFIG_ERROR,
    "CreateContainerError": Cause.CONFIG_ERROR,
}


@dataclass(frozen=True, kw_only=True)
class Progress:
    """What an attempt reported about training: the trainer's termination message or progress."""

    epoch: int | None = None
    step: int | None = None
    checkpoint: str | None = None
    best_metric: float | None = None
    monitor: str | None = None
    best_epoch: int | None = None
    early_stop_epoch: int | None = None
    lost_steps: int = 0

    @classmethod
    def from_termination(cls, message: TerminationMessage) -> Progress:
        """The progress a termination message reports."""
        return cls(
            epoch=message.epoch,
            step=message.step,
            checkpoint=message.checkpoint,
            best_metric=message.best_metric,
            monitor=message.monitor,
            best_epoch=message.best_epoch,
            early_stop_epoch=message.early_stop_epoch,
            lost_steps=message.lost_steps,
        )


@dataclass(frozen=True, kw_only=True)
class AttemptEnd:
    """Attempt ``attempt`` is over, because of ``cause``."""

    attempt: int
    cause: Cause
    exit_code: int | None = None
    #: For a person: what happened (the error text, the eviction message, …).
    message: str = ""
    #: The trainer's termination message, when it wrote one.
    progress: Progress | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptRunning:
    """Attempt ``attempt`` is running (its trainer container started)."""

    attempt: int
    started_at: datetime | None = None
    progress: Progress | None = None


#: What the engine is told about the current attempt.
Observation = AttemptEnd | AttemptRunning | None


def attempt_of(pod: Mapping[str, Any]) -> int:
    """The attempt number of a pod: its ``rekindle.dev/attempt`` label or its name's suffix.

    Raises:
        ValueError: when neither holds a positive integer.
    """
    meta = pod.get("metadata") or {}
    label = (meta.get("labels") or {}).get(LABEL_ATTEMPT)
    text = label if label is not None else str(meta.get("name", "")).rsplit("-", 1)[-1]
    if text and text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(
        f"pod {meta.get('name')!r}: no attempt number in label {LABEL_ATTEMPT} or a -N name suffix"
    )


def classify_pod(
    pod: Mapping[str, Any],
    *,
    now: datetime,
    pending_timeout_seconds: float,
    gone: bool = False,
    node_exists: bool | None = None,
) -> Observation:
    """How the attempt that ``pod`` runs stands.

    Args:
        pod: the pod as the Kubernetes API returns it (a dict), the last one seen.
        now: the current time (for the pending timeout).
        pending_timeout_seconds: ``spec.restartPolicy.pendingTimeoutSeconds``.
        gone: the pod was deleted from the API (a DELETED watch event, or a 404).
        node_exists: whether the node in ``spec.nodeName`` still exists; None
            when not known.
    """
    attempt = attempt_of(pod)
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    container = _trainer_status(status)
    terminated = (container.get("state") or {}).get("terminated") if container else None
    stopped_by = (meta.get("annotations") or {}).get(STOP_ANNOTATION)
    disruption = _disruption(pod)
    deleting = gone or meta.get("deletionTimestamp") is not None

    if terminated is not None or phase in ("Succeeded", "Failed"):
        return _terminated(
            attempt,
            pod,
            terminated=terminated,
            stopped_by=stopped_by,
            disruption=disruption,
            deleting=deleting,
        )

    node_gone = node_exists is False and bool((pod.get("spec") or {}).get("nodeName"))
    if gone or node_gone:
        # It ended without a terminated state: the node went away, or the pod was deleted.
        if stopped_by:
            return AttemptEnd(
                attempt=attempt, cause=Cause.STOPPED, message=f"stopped: {stopped_by}"
            )
        if disruption is not None:
            return AttemptEnd(attempt=attempt, cause=disruption[0], message=disruption[1])
        if node_gone:
            node = pod["spec"]["nodeName"]
            return AttemptEnd(
                attempt=attempt, cause=Cause.NODE_LOST, message=f"node {node} is gone"
            )
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.DELETED,
            message=f"pod {meta.get('name')} was deleted by someone other than the operator",
        )

    waiting = (container.get("state") or {}).get("waiting") if container else None
    if waiting and waiting.get("reason") in WAITING_REASONS and not deleting:
        reason = waiting["reason"]
        detail = waiting.get("message") or ""
        return AttemptEnd(
            attempt=attempt,
            cause=WAITING_REASONS[reason],
            message=f"{reason}: {detail}".rstrip(": "),
        )

    if deleting:
        return None  # shutting down: wait for the trainer to save and exit
    running = (container.get("state") or {}).get("running") if container else None
    if phase == "Running" and running is not None:
        started = running.get("startedAt")
        return AttemptRunning(
            attempt=attempt, started_at=timestamps.parse_time(started) if started else None
        )
    if phase == "Pending":
        created = meta.get("creationTimestamp")
        if created is not None:
            waited = (now - timestamps.parse_time(created)).total_seconds()
            if waited > pending_timeout_seconds:
                return AttemptEnd(
                    attempt=attempt,
                    cause=Cause.PENDING_TIMEOUT,
                    message=_pending_message(status, waited),
                )
    return None


def classify_process(
    attempt: int,
    exit_code: int,
    termination_text: str | None,
    *,
    known_cause: Cause | None = None,
    detail: str | None = None,
) -> AttemptEnd:
    """How a local ``rekindle-train`` process ended.

    Args:
        attempt: the attempt number.
        exit_code: the process's return code; a negative value ``-N`` (killed
            by signal N, as :mod:`subprocess` reports it) becomes ``128 + N``.
        termination_text: the content of its termination message file, if any.
        known_cause: what the runner itself did to the process (an injected
            SIGKILL standing for a lost node, SIGTERM for a preemption, Ctrl-C,
            a stop for suspension). It names the cause unless the process
            succeeded or reported invalid input anyway.
        detail: with ``known_cause``, the message to record (e.g.
            ``stopped: Suspended``); by default the cause and the exit code.
    """
    code = 128 - exit_code if exit_code < 0 else exit_code
    settled, progress, error = _contract_end(attempt, code, termination_text)
    if settled is not None:
        return settled
    if known_cause is not None:
        return AttemptEnd(
            attempt=attempt,
            cause=known_cause,
            exit_code=code,
            message=detail or f"{known_cause.value}: {_describe_exit(code)}",
            progress=progress,
        )
    if code == contract.EXIT_PREEMPTED:
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.PREEMPTED,
            exit_code=code,
            message=_SAVED_AFTER_SIGTERM,
            progress=progress,
        )
    return AttemptEnd(
        attempt=attempt,
        cause=Cause.CRASHED,
        exit_code=code,
        message=_crash_message(code, error),
        progress=progress,
    )


def _terminated(
    attempt: int,
    pod: Mapping[str, Any],
    *,
    terminated: Mapping[str, Any] | None,
    stopped_by: str | None,
    disruption: tuple[Cause, str] | None,
    deleting: bool,
) -> AttemptEnd:
    status = pod.get("status") or {}
    terminated = terminated or {}
    code: int | None = terminated.get("exitCode")
    if code is None and status.get("phase") == "Succeeded":
        code = contract.EXIT_OK
    settled, progress, error = _contract_end(attempt, code, terminated.get("message"))
    if settled is not None:
        return settled
    if terminated.get("reason") == "OOMKilled":
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.OOM_KILLED,
            exit_code=code,
            message="the trainer ran out of memory (OOMKilled); raise resources.limits.memory "
            "or lower training.batchSize",
            progress=progress,
        )
    if stopped_by:
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.STOPPED,
            exit_code=code,
            message=f"stopped: {stopped_by}",
            progress=progress,
        )
    if disruption is not None:
        return AttemptEnd(
            attempt=attempt,
            cause=disruption[0],
            exit_code=code,
            message=disruption[1],
            progress=progress,
        )
    pod_reason = status.get("reason")
    if pod_reason in POD_REASONS:
        detail = status.get("message") or pod_reason
        return AttemptEnd(
            attempt=attempt,
            cause=POD_REASONS[pod_reason],
            exit_code=code,
            message=f"{pod_reason}: {detail}" if detail != pod_reason else pod_reason,
            progress=progress,
        )
    if deleting:
        name = (pod.get("metadata") or {}).get("name")
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.DELETED,
            exit_code=code,
            message=f"pod {name} was deleted by someone other than the operator",
            progress=progress,
        )
    if code == contract.EXIT_PREEMPTED:
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.PREEMPTED,
            exit_code=code,
            message=_SAVED_AFTER_SIGTERM,
            progress=progress,
        )
    if code is None:
        why = ": ".join(str(p) for p in (status.get("reason"), status.get("message")) if p)
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.CRASHED,
            message=f"pod {status.get('phase')} without an exit code" + (f": {why}" if why else ""),
            progress=progress,
        )
    return AttemptEnd(
        attempt=attempt,
        cause=Cause.CRASHED,
        exit_code=code,
        message=_crash_message(code, error or _informative(terminated.get("reason"))),
        progress=progress,
    )


#: The message of an attempt that exited 143 (saved after SIGTERM) with no other cause known.
_SAVED_AFTER_SIGTERM = "stopped by SIGTERM after saving"


def _contract_end(
    attempt: int, code: int | None, termination_text: str | None
) -> tuple[AttemptEnd | None, Progress | None, str | None]:
    """Read the termination message; settle the ends the contract decides by itself.

    Exit 0 (success) and exit 2 (invalid) win over every other sign, for pods and
    processes alike. Returns ``(end or None, progress, error text)``; the caller
    goes on with the other causes when ``end`` is ``None``.
    """
    message, note = _parse_termination(termination_text)
    progress = Progress.from_termination(message) if message else None
    error = (message.error if message else None) or note
    if code == contract.EXIT_OK:
        return _success(attempt, code, message, progress), progress, error
    if code == contract.EXIT_INVALID:
        invalid = AttemptEnd(
            attempt=attempt,
            cause=Cause.INVALID,
            exit_code=code,
            message=error or "the trainer rejected its configuration (exit 2)",
            progress=progress,
        )
        return invalid, progress, error
    return None, progress, error


def _success(
    attempt: int, code: int, message: TerminationMessage | None, progress: Progress | None
) -> AttemptEnd:
    if message is not None and message.outcome is Outcome.EARLY_STOPPED:
        where = f" at epoch {message.early_stop_epoch}" if message.early_stop_epoch else ""
        return AttemptEnd(
            attempt=attempt,
            cause=Cause.EARLY_STOPPED,
            exit_code=code,
            message=f"early stopping fired{where}",
            progress=progress,
        )
    return AttemptEnd(
        attempt=attempt,
        cause=Cause.COMPLETED,
        exit_code=code,
        message="trained every epoch",
        progress=progress,
    )


def _trainer_status(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    statuses = status.get("containerStatuses") or []
    for container in statuses:
        if container.get("name") == TRAINER_CONTAINER:
            return dict(container)
    return dict(statuses[0]) if statuses else None


def _disruption(pod: Mapping[str, Any]) -> tuple[Cause, str] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            reason = condition.get("reason", "")
            cause = DISRUPTION_REASONS.get(reason, Cause.EVICTED)
            detail = condition.get("message") or ""
            return cause, f"{reason}: {detail}".rstrip(": ")
    return None


def _parse_termination(text: str | None) -> tuple[TerminationMessage | None, str | None]:
    """The termination message, or None and a note saying why it was unusable."""
    if not text or not text.strip():
        return None, None
    try:
        return TerminationMessage.from_json(text), None
    except ValueError as exc:
        # Not ours (e.g. a user command's last log lines): keep a short excerpt.
        excerpt = re.sub(r"\s+", " ", text.strip())[:200]
        return None, excerpt if not text.lstrip().startswith("{") else str(exc)[:200]


def _informative(reason: str | None) -> str | None:
    """A container's terminated reason, unless it only restates the exit ("Error")."""
    return None if reason in (None, "Error", "Completed") else reason


def _describe_exit(code: int) -> str:
    if code > 128:
        try:
            return f"exit code {code} ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


def _crash_message(code: int, error: str | None) -> str:
    described = _describe_exit(code)
    return f"{described}: {error}" if error else described


def _pending_message(status: Mapping[str, Any], waited: float) -> str:
    detail = ""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            detail = condition.get("message") or condition.get("reason") or ""
    text = f"still Pending after {int(waited)}s"
    return f"{text}: {detail}" if detail else text
