"""How an attempt ended, read from a pod (as the API returns it) or from a local process.

Pure functions: the pod dict, the time and what the caller knows about nodes
are passed in. The result is an :class:`AttemptEnd` (the attempt is over), an
:class:`AttemptRunning` (it runs), an :class:`AttemptPending` (it waits: for
its turn in a queue or for a node, or on its node for its containers) or
``None`` (nothing to act on yet, e.g. a pod still shutting down after a SIGTERM).

The pending timeout counts from when the pod got its node: waiting in a queue
(a scheduling gate such as Kueue's) or for a free node is never a failure.

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
from datetime import datetime, timedelta
from typing import Any, Final

from rekindle_operator.core.observation import (
    AttemptEnd,
    AttemptPending,
    AttemptRunning,
    Observation,
    Progress,
)
from rekindle_operator.core.reasons import Cause
from rekindle_operator.resources import kueue, nodes
from rekindle_operator.resources.ownership import LABEL_ATTEMPT
from rekindle_operator.resources.pods import CONTAINER_NAME
from rekindle_trainer import contract
from rekindle_trainer.contract import Outcome, TerminationMessage, timestamps

#: Set on a pod by the operator before it deletes or stops it on purpose
#: (value: why, e.g. ``Suspended``, ``DeadlineExceeded``). Such an end is
#: :attr:`Cause.STOPPED`, never a disruption.
STOP_ANNOTATION: Final = "rekindle.dev/stopped-by-operator"
#: The stop annotation's value on the pods of an attempt whose trainer stalled: their
#: end is read as ``Stalled`` (a failure), not as a stop on purpose.
STALLED_STOP: Final = "Stalled"

#: Seconds after a pod's grace period ended (its ``deletionTimestamp``) with its
#: trainer not reported ended: its kubelet is gone, the pod is replaced.
KUBELET_SILENCE_SECONDS: Final = 30.0

#: ``DisruptionTarget`` condition reasons (Kubernetes ≥ 1.26) and what they mean here.
DISRUPTION_REASONS: Final[dict[str, Cause]] = {
    "PreemptionByScheduler": Cause.PREEMPTED,
    "PreemptionByKubeScheduler": Cause.PREEMPTED,  # the name before Kubernetes 1.27
    "EvictionByEvictionAPI": Cause.EVICTED,
    "TerminationByKubelet": Cause.EVICTED,  # node-pressure eviction, graceful node shutdown
    "DeletionByTaintManager": Cause.NODE_LOST,  # NoExecute taint: node unreachable / not ready
    "DeletionByPodGC": Cause.NODE_LOST,  # the pod's node is gone
}
#: ``DisruptionTarget`` reasons of a pod Kueue stopped (older Kueue releases; newer ones
#: set the ``TerminationTarget`` condition, any reason): a preemption by the queue.
KUEUE_DISRUPTION_REASONS: Final = frozenset(
    {"StoppedByKueue", "PreemptedByKueue", "EvictedByKueue"}
)
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
#: What to change, added to the end message when a waiting reason's message holds the words:
#: (reason, words, fix).
WAITING_FIXES: Final = (
    (
        "CreateContainerConfigError",
        "runAsNonRoot",
        "the image would run as root, or as a user named without a number; set "
        "spec.template.securityContext.runAsUser to a non-zero UID the image can run as "
        "(Rekindle sets 10001 unless runAsUser is set or runAsNonRoot is false), or build the "
        "image with a numeric non-root USER",
    ),
)


def attempt_of(pod: Mapping[str, Any]) -> int:
    """The attempt number of a pod: its ``rekindle.dev/attempt`` label or its name's suffix.

    The suffix is ``-<attempt>``, or ``-<attempt>-w<worker>`` for a gang's worker.

    Raises:
        ValueError: when neither holds a positive integer.
    """
    meta = pod.get("metadata") or {}
    label = (meta.get("labels") or {}).get(LABEL_ATTEMPT)
    name = re.sub(r"-w[0-9]+$", "", str(meta.get("name", "")))
    text = label if label is not None else name.rsplit("-", 1)[-1]
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
    node_down: str | None = None,
    attach: nodes.AttachState | None = None,
) -> Observation:
    """How the attempt that ``pod`` runs stands.

    Args:
        pod: the pod as the Kubernetes API returns it (a dict), the last one seen.
        now: the current time (for the pending timeout).
        pending_timeout_seconds: ``spec.restartPolicy.pendingTimeoutSeconds``.
        gone: the pod was deleted from the API (a DELETED watch event, or a 404).
        node_exists: whether the node in ``spec.nodeName`` still exists; None
            when not known.
        node_down: why the pod's node cannot run it any more
            (:func:`nodes.node_down`); None when it can or is not known.
        attach: what the attach events about the pod say (:func:`nodes.attach_state`).
    """
    attempt = attempt_of(pod)
    signs = _PodSigns.of(pod, gone=gone, node_exists=node_exists)
    if signs.terminated is not None or signs.phase in ("Succeeded", "Failed"):
        return _terminated(attempt, pod, signs)
    if gone or signs.lost_node is not None:
        # It ended without a terminated state: the node went away, or the pod was deleted.
        cause, message = _without_exit(pod, signs)
        return AttemptEnd(attempt=attempt, cause=cause, message=message)
    dead = _node_dead(pod, signs, now, node_down)
    if dead is not None:
        # Its node will never stop it: replace it now, never wait for it to go.
        cause, message = signs.stopped() or dead
        return AttemptEnd(attempt=attempt, cause=cause, message=message)
    waiting = None if signs.deleting else _waiting_end(signs.container)
    if waiting is not None:
        return AttemptEnd(attempt=attempt, cause=waiting[0], message=waiting[1])
    if signs.deleting:
        return None  # shutting down: wait for the trainer to save and exit
    return _running_or_pending(attempt, pod, signs, now, pending_timeout_seconds, attach=attach)


def overdue_at(pod: Mapping[str, Any]) -> datetime | None:
    """When a pod being deleted counts as abandoned by its node, if it is being deleted.

    ``deletionTimestamp`` is when its grace period ends; a kubelet that works
    reports the container's end soon after. :data:`KUBELET_SILENCE_SECONDS` later
    nobody will.
    """
    when = (pod.get("metadata") or {}).get("deletionTimestamp")
    if not when:
        return None
    return timestamps.parse_time(str(when)) + timedelta(seconds=KUBELET_SILENCE_SECONDS)


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
    code = exit_code_of(exit_code)
    ended = _Exit.read(code, termination_text)
    known = None
    if known_cause is not None:
        known = known_cause, detail or f"{known_cause.value}: {describe_exit(code)}"
    why = _first(ended.settled(), known, ended.preempted()) or _crashed(code, ended.error)
    return ended.end(attempt, why)


def exit_code_of(returncode: int) -> int:
    """A process's return code as a container runtime reports it (signal N → 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def signal_of(code: int) -> str | None:
    """``SIGKILL`` etc. when an exit code says the process died of a signal (128 + N)."""
    if code <= 128:
        return None
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return None


def describe_exit(code: int) -> str:
    """``exit code 137 (SIGKILL)``, or ``exit code 3``."""
    name = signal_of(code)
    return f"exit code {code} ({name})" if name else f"exit code {code}"


#: A cause and the message that goes with it, as each sign below reads it.
_Why = tuple[Cause, str]

#: The message of an attempt that exited 143 (saved after SIGTERM) with no other cause known.
_SAVED_AFTER_SIGTERM = "stopped by SIGTERM after saving"


@dataclass(frozen=True)
class _PodSigns:
    """What a pod shows about how its attempt ended, read once."""

    phase: str
    #: The trainer container's status, if the pod has one.
    container: Mapping[str, Any] | None
    terminated: Mapping[str, Any] | None
    #: _Why the operator stopped it (the stop annotation), if it did.
    stopped_by: str | None
    disruption: _Why | None
    #: Deleted from the API, or being deleted.
    deleting: bool
    #: The pod's node, when that node is known to be gone.
    lost_node: str | None

    @classmethod
    def of(cls, pod: Mapping[str, Any], *, gone: bool, node_exists: bool | None) -> _PodSigns:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        container = _trainer_status(status)
        state = (container.get("state") or {}) if container else {}
        node = (pod.get("spec") or {}).get("nodeName")
        return cls(
            phase=status.get("phase", "Pending"),
            container=container,
            terminated=state.get("terminated"),
            stopped_by=(meta.get("annotations") or {}).get(STOP_ANNOTATION),
            disruption=_disruption(pod),
            deleting=gone or meta.get("deletionTimestamp") is not None,
            lost_node=node if node_exists is False and node else None,
        )

    def stopped(self) -> _Why | None:
        """The operator stopped the pod on purpose (a stalled trainer's: a failure)."""
        if self.stopped_by == STALLED_STOP:
            return (
                Cause.STALLED,
                "stopped: no training step within restartPolicy.stallTimeoutSeconds",
            )
        return (Cause.STOPPED, f"stopped: {self.stopped_by}") if self.stopped_by else None


@dataclass(frozen=True)
class _Exit:
    """What an exit code and a termination message say, before any other sign is read."""

    code: int | None
    #: The outcome the exit code implies (the contract's mapping); None without a code.
    outcome: Outcome | None
    message: TerminationMessage | None
    progress: Progress | None
    #: The trainer's error text, or a note on why its termination message was unusable.
    error: str | None

    @classmethod
    def read(cls, code: int | None, termination_text: str | None) -> _Exit:
        message, note = _parse_termination(termination_text)
        return cls(
            code=code,
            outcome=None if code is None else contract.outcome_for_exit_code(code),
            message=message,
            progress=Progress.from_termination(message) if message else None,
            error=(message.error if message else None) or note,
        )

    def end(self, attempt: int, why: _Why) -> AttemptEnd:
        """The attempt's end because of ``why``, with this exit's code and progress."""
        cause, text = why
        return AttemptEnd(
            attempt=attempt, cause=cause, exit_code=self.code, message=text, progress=self.progress
        )

    def settled(self) -> _Why | None:
        """The ends the contract decides by itself: success (exit 0) and invalid (exit 2).

        They win over every other sign, for pods and processes alike.
        """
        if self.outcome is Outcome.COMPLETED:
            if self.message is not None and self.message.outcome is Outcome.EARLY_STOPPED:
                epoch = self.message.early_stop_epoch
                return Cause.EARLY_STOPPED, "early stopping fired" + (
                    f" at epoch {epoch}" if epoch else ""
                )
            return Cause.COMPLETED, "trained every epoch"
        if self.outcome is Outcome.INVALID:
            return Cause.INVALID, self.error or "the trainer rejected its configuration (exit 2)"
        return None

    def preempted(self) -> _Why | None:
        """Exit 143: the trainer saved after a SIGTERM nobody else explains."""
        return (
            (Cause.PREEMPTED, _SAVED_AFTER_SIGTERM) if self.outcome is Outcome.PREEMPTED else None
        )


def _terminated(attempt: int, pod: Mapping[str, Any], signs: _PodSigns) -> AttemptEnd:
    """The end of a pod whose trainer terminated (or whose phase is final)."""
    status = pod.get("status") or {}
    terminated = signs.terminated or {}
    code: int | None = terminated.get("exitCode")
    if code is None and signs.phase == "Succeeded":
        code = contract.EXIT_OK
    ended = _Exit.read(code, terminated.get("message"))
    why = _first(
        ended.settled(),
        _oom_killed(terminated),
        signs.stopped(),
        signs.disruption,
        _pod_reason(status),
        _deleted(pod) if signs.deleting else None,
        ended.preempted(),
    )
    if why is None:
        why = (
            _crashed(code, ended.error or _informative(terminated))
            if code is not None
            else _no_exit_code(signs.phase, status)
        )
    return ended.end(attempt, why)


def _crashed(code: int, error: str | None) -> _Why:
    """Any other exit: a crash, described by its code (and signal) and ``error``."""
    described = describe_exit(code)
    return Cause.CRASHED, f"{described}: {error}" if error else described


def _no_exit_code(phase: str, status: Mapping[str, Any]) -> _Why:
    """A pod in a final phase whose trainer left no exit code: a crash, with what the pod says."""
    detail = ": ".join(str(p) for p in (status.get("reason"), status.get("message")) if p)
    return Cause.CRASHED, f"pod {phase} without an exit code" + (f": {detail}" if detail else "")


def _without_exit(pod: Mapping[str, Any], signs: _PodSigns) -> _Why:
    """_Why a pod that never terminated is over: its node or the pod itself is gone."""
    lost = (Cause.NODE_LOST, f"node {signs.lost_node} is gone") if signs.lost_node else None
    return _first(signs.stopped(), signs.disruption, lost) or _deleted(pod)


def _node_dead(
    pod: Mapping[str, Any], signs: _PodSigns, now: datetime, node_down: str | None
) -> _Why | None:
    """Why the pod's node will never end it: the node is down, or it ignored the deletion.

    The signs: the Node says so (read by the caller), the taint manager or the
    pod GC is deleting it (``DisruptionTarget``), or it is still not stopped
    :data:`KUBELET_SILENCE_SECONDS` after its grace period ended.
    """
    if node_down is not None and (pod.get("spec") or {}).get("nodeName"):
        return Cause.NODE_LOST, node_down
    if not signs.deleting:
        return None
    if signs.disruption is not None and signs.disruption[0] is Cause.NODE_LOST:
        return signs.disruption
    overdue = overdue_at(pod)
    if overdue is not None and now >= overdue and (pod.get("spec") or {}).get("nodeName"):
        node = pod["spec"]["nodeName"]
        late = int((now - overdue).total_seconds() + KUBELET_SILENCE_SECONDS)
        return Cause.NODE_LOST, (
            f"node {node} did not stop the pod {late}s after its grace period ended "
            "(its kubelet does not answer)"
        )
    return None


def _running_or_pending(
    attempt: int,
    pod: Mapping[str, Any],
    signs: _PodSigns,
    now: datetime,
    pending_timeout_seconds: float,
    *,
    attach: nodes.AttachState | None = None,
) -> Observation:
    """A live pod: running, queued, pending on its node (too long?), or nothing yet.

    A pod whose volume cannot be attached (``attach.blocked``) waits without a
    timeout: another node holds the volume, which no restart of the job fixes.
    """
    running = (signs.container.get("state") or {}).get("running") if signs.container else None
    if signs.phase == "Running" and running is not None:
        return AttemptRunning(attempt=attempt)
    if signs.phase != "Pending":
        return None
    queued = _queued(pod)
    if queued is not None:
        return AttemptPending(attempt=attempt, queued=queued[0], message=queued[1])
    if attach is not None and attach.blocked is not None:
        return AttemptPending(attempt=attempt, blocked=attach.blocked[0], message=attach.blocked[1])
    since = _scheduled_at(pod)
    if since is None:
        return None
    if attach is not None and attach.attached_at is not None:
        since = max(since, attach.attached_at)  # the wait for the attach is not counted
    waited = (now - since).total_seconds()
    if waited <= pending_timeout_seconds:
        return AttemptPending(attempt=attempt, since=since)
    message = _pending_message(pod, signs.container, waited)
    return AttemptEnd(attempt=attempt, cause=Cause.PENDING_TIMEOUT, message=message)


def _queued(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why a pod waits for its turn, as (reason, message); None when it has its node.

    A scheduling gate holds it back (Kueue's until the queue admits it), or no
    node has been found for it yet.
    """
    spec = pod.get("spec") or {}
    gates = [g.get("name", "") for g in spec.get("schedulingGates") or []]
    if kueue.ADMISSION_GATE in gates:
        queue = ((pod.get("metadata") or {}).get("labels") or {}).get(kueue.QUEUE_LABEL)
        where = f" from LocalQueue {queue}" if queue else ""
        return "WaitingForAdmission", f"waiting for Kueue to admit it{where}"
    if gates:
        return "SchedulingGated", f"waiting for its scheduling gates to go: {', '.join(gates)}"
    if spec.get("nodeName"):
        return None
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        reason = str(scheduled.get("reason") or "Unschedulable")
        return reason, str(scheduled.get("message") or "no node fits it yet")
    return "WaitingForScheduler", "not looked at by a scheduler yet"


def _scheduled_at(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod got its node (PodScheduled True), else when it was created."""
    scheduled = _condition(pod, "PodScheduled")
    when = scheduled.get("lastTransitionTime") if scheduled is not None else None
    if scheduled is None or scheduled.get("status") != "True" or not when:
        when = (pod.get("metadata") or {}).get("creationTimestamp")
    return timestamps.parse_time(when) if when else None


def _condition(pod: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The pod's status condition of ``type_``, if it has one."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return None


def _first(*whys: _Why | None) -> _Why | None:
    """The first sign that says something: the order of the arguments is the order of trust."""
    return next((why for why in whys if why is not None), None)


def _oom_killed(terminated: Mapping[str, Any]) -> _Why | None:
    if terminated.get("reason") != "OOMKilled":
        return None
    return Cause.OOM_KILLED, (
        "the trainer ran out of memory (OOMKilled); raise resources.limits.memory "
        "or lower training.batchSize"
    )


def _pod_reason(status: Mapping[str, Any]) -> _Why | None:
    """A pod ``status.reason`` set when the kubelet or the control plane ended the pod."""
    reason = status.get("reason")
    if reason not in POD_REASONS:
        return None
    detail = status.get("message") or reason
    return POD_REASONS[reason], f"{reason}: {detail}" if detail != reason else reason


def _deleted(pod: Mapping[str, Any]) -> _Why:
    name = (pod.get("metadata") or {}).get("name")
    return Cause.DELETED, f"pod {name} was deleted by someone other than the operator"


def _waiting_end(container: Mapping[str, Any] | None) -> _Why | None:
    """A container waiting for a reason that ends the attempt before the trainer runs."""
    waiting = (container.get("state") or {}).get("waiting") if container else None
    if not waiting or waiting.get("reason") not in WAITING_REASONS:
        return None
    reason = waiting["reason"]
    detail = waiting.get("message") or ""
    message = f"{reason}: {detail}".rstrip(": ")
    fixes = [fix for when, words, fix in WAITING_FIXES if when == reason and words in detail]
    return WAITING_REASONS[reason], "; ".join([message, *fixes])


def _trainer_status(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    statuses = status.get("containerStatuses") or []
    for container in statuses:
        if container.get("name") == CONTAINER_NAME:
            return dict(container)
    return dict(statuses[0]) if statuses else None


def disrupted(pod: Mapping[str, Any]) -> bool:
    """Whether the cluster said it ended the pod (``DisruptionTarget`` or a queue's stop)."""
    return _disruption(pod) is not None


def _disruption(pod: Mapping[str, Any]) -> _Why | None:
    """The cluster's word that it ended the pod: a queue's preemption, else a DisruptionTarget."""
    said = [
        c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    ]
    for condition in said:
        reason, detail = str(condition.get("reason", "")), str(condition.get("message") or "")
        if condition.get("type") == kueue.STOP_CONDITION or (
            condition.get("type") == "DisruptionTarget" and reason in KUEUE_DISRUPTION_REASONS
        ):
            return Cause.PREEMPTED, f"preempted by Kueue ({reason}): {detail}".rstrip(": ")
    for condition in said:
        if condition.get("type") == "DisruptionTarget":
            reason, detail = str(condition.get("reason", "")), str(condition.get("message") or "")
            cause = DISRUPTION_REASONS.get(reason, Cause.EVICTED)
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


def _informative(terminated: Mapping[str, Any]) -> str | None:
    """A container's terminated reason, unless it only restates the exit ("Error")."""
    reason = terminated.get("reason")
    return None if reason in (None, "Error", "Completed") else reason


def _pending_message(
    pod: Mapping[str, Any], container: Mapping[str, Any] | None, waited: float
) -> str:
    """``still Pending 601s after it got node N: <what its container waits for>``."""
    node = (pod.get("spec") or {}).get("nodeName")
    waiting = ((container or {}).get("state") or {}).get("waiting") or {}
    detail = ": ".join(str(p) for p in (waiting.get("reason"), waiting.get("message")) if p)
    text = (
        f"still Pending {int(waited)}s after it got node {node}"
        if node
        else (f"still Pending after {int(waited)}s")
    )
    return f"{text}: {detail}" if detail else text
