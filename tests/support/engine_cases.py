"""The table of decision-engine cases, shared by every body that obeys the engine.

Each :class:`EngineCase` is one row: a spec, the status before, how the
attempt ended (as a pod the Kubernetes API returns, and as a local process
where one can end that way), and the time; then what must follow: the action,
phase, reason, conditions, restart counts, status fields and the event.

Consumers:

* ``tests/operator_tests/core/test_engine_cases.py`` runs every row through
  :func:`rekindle_operator.core.engine.decide` and through the two classifiers.
* The operator's tests build the row's :attr:`Ending.pod` in the emulated API,
  let the operator react, and check the job's status document with
  :meth:`Expected.status_mismatches` and its events with
  :meth:`Expected.event_mismatches`.
* The local runner's tests use the rows whose :attr:`Ending.process` is set.

Everything here is plain data plus small builders; nothing reads the clock.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rekindle_operator.core import job_spec, job_status, observation
from rekindle_operator.core.engine import Action, Decision
from rekindle_operator.core.observation import (
    AttemptEnd,
    AttemptPending,
    AttemptRunning,
    Observation,
)
from rekindle_operator.core.reasons import Cause, EventReason, EventType, Phase, Reason
from rekindle_operator.resources import classify, pods
from rekindle_trainer.contract import Outcome, TerminationMessage, timestamps

#: The job starts at T0; most rows happen an hour later.
T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
JOB = "digits"

#: The spec every row starts from; a row's ``spec`` is deep-merged onto it.
BASE_SPEC: dict[str, Any] = {
    "image": "ghcr.io/rekindle-dev/trainer:0.1.0",
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "training": {"epochs": 20},
    "earlyStopping": {"monitor": "val_loss", "patience": 2},
    "restartPolicy": {
        "maxRestarts": 3,
        "backoff": {"initialSeconds": 10, "maxSeconds": 300, "factor": 2.0},
        "pendingTimeoutSeconds": 600,
    },
}

# ---------------------------------------------------------------------------
# The shapes of a row.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodEnd:
    """The attempt's pod as the API returns it, and what is known about it."""

    pod: dict[str, Any]
    #: The pod was deleted from the API (a DELETED watch event or a 404).
    gone: bool = False
    #: Whether its node still exists; None when not known.
    node_exists: bool | None = None


@dataclass(frozen=True)
class ProcessEnd:
    """A local ``rekindle-train`` process that ends the same way."""

    exit_code: int
    termination: str | None = None
    #: What the runner itself did to the process (an injected fault, a stop).
    known_cause: Cause | None = None
    #: With ``known_cause``: the message the runner records.
    detail: str | None = None


@dataclass(frozen=True)
class Ending:
    """How the current attempt stands, in the engine's terms and in each body's."""

    #: What the classifiers must return and the engine is given.
    observed: Observation
    pod: PodEnd | None = None
    process: ProcessEnd | None = None


@dataclass(frozen=True)
class Expected:
    """What must follow a row."""

    action: Action
    phase: Phase
    reason: Reason
    #: Every condition after the decision: type -> "True" / "False".
    conditions: dict[str, str]
    #: ``status.restarts`` after the decision.
    restarts: dict[str, Any]
    #: ``Decision.attempt``: the attempt to create (START/RESTART) or the current one.
    attempt: int
    #: The event to post: (type, reason, a text its message contains); None: no event.
    event: tuple[EventType, EventReason, str] | None
    #: RESTART_AFTER: the delay.
    delay_seconds: float = 0.0
    #: Decision.requeue_after, when the row pins it.
    requeue_after: float | None = None
    #: Further status fields (camelCase) and their values after the decision.
    fields: dict[str, Any] = field(default_factory=dict)

    def status_mismatches(self, doc: Mapping[str, Any]) -> list[str]:
        """What differs between this expectation and a status document (camelCase)."""
        problems = []
        if doc.get("phase") != self.phase.value:
            problems.append(f"phase {doc.get('phase')!r} != {self.phase.value!r}")
        if doc.get("reason") != self.reason.value:
            problems.append(f"reason {doc.get('reason')!r} != {self.reason.value!r}")
        got_conditions = {c["type"]: c["status"] for c in doc.get("conditions") or []}
        if got_conditions != self.conditions:
            problems.append(f"conditions {got_conditions} != {self.conditions}")
        restarts = {"total": 0, "failures": 0, "disruptions": 0, "byCause": {}}
        restarts.update({k: v for k, v in (doc.get("restarts") or {}).items() if v is not None})
        if restarts != self.restarts:
            problems.append(f"restarts {restarts} != {self.restarts}")
        for key, value in self.fields.items():
            got = doc.get(key)
            if isinstance(
                got, dict
            ):  # a null inside is an absent field (as a merge patch stores it)
                got = {k: v for k, v in got.items() if v is not None}
            if got != value:
                problems.append(f"{key} {got!r} != {value!r}")
        return problems

    def event_mismatches(self, events: list[tuple[str, str, str]]) -> list[str]:
        """What is wrong with the (type, reason, message) events posted for this row."""
        if self.event is None:
            return [f"expected no event, got {events}"] if events else []
        type_, reason, text = self.event
        for got in events:
            if got[0] == type_.value and got[1] == reason.value and text in got[2]:
                return []
        return [f"no {type_.value} {reason.value} event containing {text!r} in {events}"]


@dataclass(frozen=True)
class EngineCase:
    """One row: spec, status before, how the attempt ended, time → what must follow."""

    name: str
    #: Why the row exists: the rule it pins.
    why: str
    #: Deep-merged onto :data:`BASE_SPEC`.
    spec_overrides: dict[str, Any]
    #: The status document before (camelCase, as stored in the resource).
    before: dict[str, Any]
    #: None: nothing new was observed (creation, a timer, a spec change).
    ending: Ending | None
    now: datetime
    expect: Expected
    generation: int | None = None

    @property
    def spec_document(self) -> dict[str, Any]:
        """The row's full spec document."""
        return _merge(BASE_SPEC, self.spec_overrides)

    @property
    def spec(self) -> job_spec.TrainingJobSpec:
        """The row's parsed spec."""
        return job_spec.parse_spec(self.spec_document)

    @property
    def status(self) -> job_status.Status:
        """The row's parsed status before."""
        return job_status.parse_status(self.before)

    def manifest(self, name: str = "digits", namespace: str = "default") -> dict[str, Any]:
        """The row's TrainingJob (spec and status before), ready to store in an API."""
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if self.generation is not None:
            meta["generation"] = self.generation
        return {
            "apiVersion": f"{job_spec.API_GROUP}/{job_spec.API_VERSION}",
            "kind": job_spec.KIND,
            "metadata": meta,
            "spec": self.spec_document,
            "status": copy.deepcopy(self.before),
        }

    @property
    def observed(self) -> Observation:
        """What the engine is told."""
        return None if self.ending is None else self.ending.observed

    def decision_mismatches(self, decision: Decision) -> list[str]:
        """What differs between a decision and this row's expectation."""
        expect = self.expect
        problems = expect.status_mismatches(job_status.to_document(decision.status))
        if decision.action is not expect.action:
            problems.append(f"action {decision.action} != {expect.action}")
        if decision.attempt != expect.attempt:
            problems.append(f"attempt {decision.attempt} != {expect.attempt}")
        if decision.delay_seconds != expect.delay_seconds:
            problems.append(f"delay {decision.delay_seconds} != {expect.delay_seconds}")
        if expect.requeue_after is not None and decision.requeue_after != expect.requeue_after:
            problems.append(f"requeue_after {decision.requeue_after} != {expect.requeue_after}")
        events = []
        if decision.event is not None:
            event = decision.event
            events.append((event.type.value, event.reason.value, event.message))
        return problems + expect.event_mismatches(events)


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------
# Builders.
# ---------------------------------------------------------------------------


def ts(when: datetime) -> str:
    """An RFC 3339 timestamp."""
    return timestamps.format_time(when)


def restarts(failures: int = 0, disruptions: int = 0, **by_cause: int) -> dict[str, Any]:
    """A ``status.restarts`` document."""
    return {
        "total": failures + disruptions,
        "failures": failures,
        "disruptions": disruptions,
        "byCause": dict(by_cause),
    }


_PHASE_CONDITIONS: dict[str, dict[str, str]] = {
    "Pending": {"Running": "False"},
    "Running": {"Running": "True"},
    "Restarting": {"Running": "False", "Restarting": "True"},
    "Suspended": {"Running": "False", "Suspended": "True"},
    "Succeeded": {"Running": "False", "Succeeded": "True"},
    "Failed": {"Running": "False", "Failed": "True"},
}


def before(
    phase: str = "Running",
    *,
    attempt: int = 1,
    epoch: int = 5,
    step: int = 280,
    checkpoint: str | None = "ckpt-000005-0000000280",
    counts: dict[str, Any] | None = None,
    reason: str = "AttemptRunning",
    **extra: Any,
) -> dict[str, Any]:
    """A status document as the engine would have left it, in ``phase``."""
    conditions = [
        {"type": t, "status": s, "reason": reason, "message": "", "lastTransitionTime": ts(T0)}
        for t, s in _PHASE_CONDITIONS[phase].items()
    ]
    doc: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": "",
        "conditions": conditions,
        "attempt": attempt,
        "restarts": counts or restarts(),
        "currentEpoch": epoch,
        "currentStep": step,
        "startTime": ts(T0),
        "lastAttemptStartTime": ts(T0 + timedelta(minutes=30)),
    }
    if checkpoint is not None:
        doc["latestCheckpoint"] = checkpoint
    doc.update(extra)
    return doc


def ended_record(attempt: int, cause: Cause, exit_code: int | None = None) -> dict[str, Any]:
    """A ``status.lastAttemptEnd`` document."""
    record: dict[str, Any] = {"attempt": attempt, "cause": cause.value, "time": ts(T0)}
    if exit_code is not None:
        record["exitCode"] = exit_code
    return record


def termination(outcome: Outcome, **fields: Any) -> str:
    """A trainer termination message (JSON)."""
    values: dict[str, Any] = {"epoch": 5, "step": 280, "checkpoint": "ckpt-000005-0000000280"}
    values.update(fields)
    return TerminationMessage(outcome=outcome, **values).to_json()


def pod(
    attempt: int = 1,
    *,
    phase: str = "Running",
    exit_code: int | None = None,
    terminated_reason: str | None = None,
    message: str | None = None,
    waiting: tuple[str, str] | None = None,
    running: bool = False,
    conditions: tuple[dict[str, Any], ...] = (),
    deleting: bool = False,
    annotations: dict[str, str] | None = None,
    pod_reason: tuple[str, str] | None = None,
    created: datetime = T0 + timedelta(minutes=30),
    node: str | None = "gpu-node-1",
) -> dict[str, Any]:
    """A trainer pod as the Kubernetes API returns it."""
    state: dict[str, Any] = {}
    if exit_code is not None:
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": terminated_reason or ("Completed" if exit_code == 0 else "Error"),
            "startedAt": ts(created + timedelta(seconds=5)),
            "finishedAt": ts(created + timedelta(minutes=20)),
        }
        if message is not None:
            terminated["message"] = message
        state["terminated"] = terminated
    elif waiting is not None:
        state["waiting"] = {"reason": waiting[0], "message": waiting[1]}
    elif running:
        state["running"] = {"startedAt": ts(created + timedelta(seconds=5))}
    else:
        state["waiting"] = {"reason": "ContainerCreating"}
    meta: dict[str, Any] = {
        "name": f"{JOB}-{attempt}",
        "namespace": "default",
        "labels": {"rekindle.dev/job": JOB, "rekindle.dev/attempt": str(attempt)},
        "creationTimestamp": ts(created),
        "uid": f"pod-uid-{attempt}",
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    if deleting:
        meta["deletionTimestamp"] = ts(created + timedelta(minutes=19))
    pod_status: dict[str, Any] = {
        "phase": phase,
        "conditions": list(conditions),
        "containerStatuses": [
            {
                "name": pods.CONTAINER_NAME,
                "ready": running,
                "restartCount": 0,
                "state": state,
            }
        ],
    }
    if pod_reason is not None:
        pod_status["reason"], pod_status["message"] = pod_reason
    pod_spec: dict[str, Any] = {"containers": [{"name": pods.CONTAINER_NAME}]}
    if node is not None:
        pod_spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": pod_spec,
        "status": pod_status,
    }


def disruption(reason: str, message: str) -> dict[str, Any]:
    """A pod's ``DisruptionTarget`` condition."""
    return {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(T0 + timedelta(minutes=49)),
    }


def end(
    cause: Cause,
    *,
    attempt: int = 1,
    exit_code: int | None = None,
    message: str = "",
    progress: observation.Progress | None = None,
) -> AttemptEnd:
    """The classification a row expects."""
    return AttemptEnd(
        attempt=attempt, cause=cause, exit_code=exit_code, message=message, progress=progress
    )


#: What the trainer reports after saving at epoch 5, step 280.
SAVED_AT_5 = observation.Progress(epoch=5, step=280, checkpoint="ckpt-000005-0000000280")
PREEMPTED_AT_7 = termination(
    Outcome.PREEMPTED, epoch=7, step=392, checkpoint="ckpt-000007-0000000392"
)
PROGRESS_AT_7 = observation.Progress(epoch=7, step=392, checkpoint="ckpt-000007-0000000392")


def scheduled(when: datetime) -> dict[str, Any]:
    """A pod's ``PodScheduled`` condition, True since ``when`` (it got its node then)."""
    return {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(when)}


def queued_pod(*, created: datetime, queue: str) -> dict[str, Any]:
    """A trainer pod Kueue holds back (its admission gate) in LocalQueue ``queue``."""
    held = pod(phase="Pending", created=created, node=None)
    held["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = queue
    held["spec"]["schedulingGates"] = [{"name": "kueue.x-k8s.io/admission"}]
    held["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
    ]
    return held


def _queued_before(since: datetime) -> dict[str, Any]:
    """Pending with attempt 1 queued (waiting for Kueue's admission) since ``since``."""
    doc = before("Pending", reason="Queued", lastAttemptStartTime=ts(since))
    doc["conditions"].append(
        {
            "type": "Queued",
            "status": "True",
            "reason": "WaitingForAdmission",
            "message": "waiting for Kueue to admit it from LocalQueue team-a",
            "lastTransitionTime": ts(since),
        }
    )
    return doc


def _refused_before(retry_at: datetime) -> dict[str, Any]:
    """Pending: attempt 1 was preempted, attempt 2's pod refused (quota); retry at ``retry_at``."""
    doc = before(
        "Pending",
        reason="CreateRefused",
        counts=restarts(disruptions=1, Preempted=1),
        lastAttemptEnd=ended_record(1, Cause.PREEMPTED, 143),
        nextAttemptTime=ts(retry_at),
    )
    doc["conditions"].append(
        {
            "type": "CreateRefused",
            "status": "True",
            "reason": "ExceededQuota",
            "message": 'pods "digits-2" is forbidden: exceeded quota: gpus',
            "lastTransitionTime": ts(NOW - timedelta(seconds=20)),
        }
    )
    return doc


_RESTARTING = {"Running": "False", "Restarting": "True"}
_PENDING_AFTER_BACKOFF = {"Running": "False", "Restarting": "False"}
_PENDING = {"Running": "False"}


def _backoff(initial: int = 10) -> dict[str, Any]:
    return {"restartPolicy": {"backoff": {"initialSeconds": initial}}}


def _forgive(epochs: int, **policy: Any) -> dict[str, Any]:
    """``restartPolicy.resetAfterProgressEpochs: epochs`` (and further ``policy`` fields)."""
    return {"restartPolicy": {"resetAfterProgressEpochs": epochs, **policy}}


def budget(
    used: int = 0,
    *,
    left: int | None = None,
    since: int = 0,
    resets: int = 0,
    disruptions_left: int | None = None,
    most: int = 3,
) -> dict[str, Any]:
    """A ``status.restartBudget`` document (``left``: ``most - used`` unless given)."""
    doc: dict[str, Any] = {
        "failuresUsed": used,
        "failuresLeft": most - used if left is None else left,
        "progressEpoch": since,
        "resets": resets,
    }
    if disruptions_left is not None:
        doc["disruptionsLeft"] = disruptions_left
    return doc


#: What the trainer reports when it crashes after saving at epoch 9, step 504.
SAVED_AT_9 = observation.Progress(epoch=9, step=504, checkpoint="ckpt-000009-0000000504")
_CRASHED_AT_9 = termination(
    Outcome.FAILED,
    error="RuntimeError: NaN loss",
    epoch=9,
    step=504,
    checkpoint="ckpt-000009-0000000504",
)


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

CASES: tuple[EngineCase, ...] = (
    # --- starting --------------------------------------------------------------
    EngineCase(
        name="new-job-starts-attempt-1",
        why="A new job starts its first attempt; the deadline counts from now.",
        spec_overrides={},
        before={},
        ending=None,
        now=T0,
        generation=1,
        expect=Expected(
            action=Action.START,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(),
            attempt=1,
            event=(EventType.NORMAL, EventReason.ATTEMPT_STARTED, "starting attempt 1"),
            requeue_after=600.0,
            fields={
                "attempt": 1,
                "startTime": ts(T0),
                "observedGeneration": 1,
                "restartBudget": budget(left=3),
            },
        ),
    ),
    EngineCase(
        name="new-job-with-max-on-a-loss-starts-with-a-warning",
        why="mode: max on val_loss is allowed (Keras takes it as given) but almost surely wrong.",
        spec_overrides={"earlyStopping": {"mode": "max"}},
        before={},
        ending=None,
        now=T0,
        generation=1,
        expect=Expected(
            action=Action.START,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(),
            attempt=1,
            event=(
                EventType.WARNING,
                EventReason.ATTEMPT_STARTED,
                "starting attempt 1; warning: earlyStopping.mode is max, but 'val_loss' is a "
                "loss (lower is better): the highest value will count as the best",
            ),
            fields={"attempt": 1, "startTime": ts(T0)},
        ),
    ),
    EngineCase(
        name="new-job-created-suspended-starts-nothing",
        why="suspend: true at creation: no attempt, phase Suspended.",
        spec_overrides={"suspend": True},
        before={},
        ending=None,
        now=T0,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.SUSPENDED,
            reason=Reason.SUSPENDED,
            conditions={"Running": "False", "Suspended": "True"},
            restarts=restarts(),
            attempt=0,
            event=(EventType.NORMAL, EventReason.SUSPENDED, "suspended"),
            fields={"attempt": 0},
        ),
    ),
    EngineCase(
        name="pending-attempt-starts-running",
        why="The trainer container runs: Running, condition Running True, no event.",
        spec_overrides={},
        before=before("Pending", reason="AttemptStarted"),
        ending=Ending(
            observed=AttemptRunning(attempt=1),
            pod=PodEnd(pod(phase="Running", running=True)),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.RUNNING,
            reason=Reason.ATTEMPT_RUNNING,
            conditions={"Running": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
        ),
    ),
    EngineCase(
        name="pending-within-timeout-waits",
        why="A pod still Pending before pendingTimeoutSeconds is left alone until the timeout.",
        spec_overrides={},
        before=before(
            "Pending",
            reason="AttemptStarted",
            lastAttemptStartTime=ts(NOW - timedelta(seconds=100)),
        ),
        ending=Ending(
            observed=AttemptPending(attempt=1, since=NOW - timedelta(seconds=100)),
            pod=PodEnd(pod(phase="Pending", created=NOW - timedelta(seconds=100))),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(),
            attempt=1,
            event=None,
            requeue_after=500.0,
        ),
    ),
    EngineCase(
        name="spec-change-is-observed",
        why="A new generation while running: observedGeneration follows, nothing else changes.",
        spec_overrides={},
        before=before("Running", observedGeneration=1),
        ending=None,
        now=NOW,
        generation=2,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.RUNNING,
            reason=Reason.ATTEMPT_RUNNING,
            conditions={"Running": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
            fields={"observedGeneration": 2},
        ),
    ),
    # --- success -----------------------------------------------------------------
    EngineCase(
        name="completed-all-epochs",
        why="Exit 0 with outcome completed: Succeeded, reason Completed.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.COMPLETED,
                exit_code=0,
                message="trained every epoch",
                progress=observation.Progress(
                    epoch=20,
                    step=1120,
                    checkpoint="ckpt-000020-0000001120",
                    best_metric=0.08,
                    monitor="val_loss",
                    best_epoch=19,
                ),
            ),
            pod=PodEnd(
                pod(
                    phase="Succeeded",
                    exit_code=0,
                    message=termination(
                        Outcome.COMPLETED,
                        epoch=20,
                        step=1120,
                        checkpoint="ckpt-000020-0000001120",
                        best_metric=0.08,
                        monitor="val_loss",
                        best_epoch=19,
                    ),
                )
            ),
            process=ProcessEnd(
                0,
                termination(
                    Outcome.COMPLETED,
                    epoch=20,
                    step=1120,
                    checkpoint="ckpt-000020-0000001120",
                    best_metric=0.08,
                    monitor="val_loss",
                    best_epoch=19,
                ),
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.SUCCEED,
            phase=Phase.SUCCEEDED,
            reason=Reason.COMPLETED,
            conditions={"Running": "False", "Succeeded": "True"},
            restarts=restarts(),
            attempt=1,
            event=(
                EventType.NORMAL,
                EventReason.COMPLETED,
                "completed all 20 epochs (best val_loss 0.08 at epoch 19)",
            ),
            fields={
                "currentEpoch": 20,
                "completionTime": ts(NOW),
                "bestMetric": {"name": "val_loss", "value": 0.08, "epoch": 19},
                "earlyStopEpoch": None,
            },
        ),
    ),
    EngineCase(
        name="early-stopped",
        why="Exit 0, outcome early_stopped: Succeeded, reason EarlyStopped, the epoch recorded.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.EARLY_STOPPED,
                exit_code=0,
                message="early stopping fired at epoch 9",
                progress=observation.Progress(
                    epoch=9,
                    step=504,
                    checkpoint="ckpt-000009-0000000504",
                    best_metric=0.11,
                    monitor="val_loss",
                    best_epoch=7,
                    early_stop_epoch=9,
                ),
            ),
            pod=PodEnd(
                pod(
                    phase="Succeeded",
                    exit_code=0,
                    message=termination(
                        Outcome.EARLY_STOPPED,
                        epoch=9,
                        step=504,
                        checkpoint="ckpt-000009-0000000504",
                        best_metric=0.11,
                        monitor="val_loss",
                        best_epoch=7,
                        early_stop_epoch=9,
                    ),
                )
            ),
            process=ProcessEnd(
                0,
                termination(
                    Outcome.EARLY_STOPPED,
                    epoch=9,
                    step=504,
                    checkpoint="ckpt-000009-0000000504",
                    best_metric=0.11,
                    monitor="val_loss",
                    best_epoch=7,
                    early_stop_epoch=9,
                ),
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.SUCCEED,
            phase=Phase.SUCCEEDED,
            reason=Reason.EARLY_STOPPED,
            conditions={"Running": "False", "Succeeded": "True"},
            restarts=restarts(),
            attempt=1,
            event=(
                EventType.NORMAL,
                EventReason.EARLY_STOPPED,
                "early stopped at epoch 9 (best val_loss 0.11 at epoch 7); 11 of 20 epochs saved",
            ),
            fields={"earlyStopEpoch": 9, "currentEpoch": 9, "completionTime": ts(NOW)},
        ),
    ),
    # --- disruptions: restart at once, counted apart ----------------------------------
    EngineCase(
        name="preempted-by-the-scheduler",
        why="DisruptionTarget PreemptionByScheduler: restart now from the save, counted apart.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.PREEMPTED,
                exit_code=143,
                message="PreemptionByScheduler: preempted by a higher-priority pod",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=143,
                    message=PREEMPTED_AT_7,
                    deleting=True,
                    conditions=(
                        disruption("PreemptionByScheduler", "preempted by a higher-priority pod"),
                    ),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, Preempted=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "restarting from the newest valid checkpoint (last reported: epoch 7 step 392)"
                " because of Preempted",
            ),
            fields={
                "attempt": 2,
                "currentEpoch": 7,
                "latestCheckpoint": "ckpt-000007-0000000392",
                "lastAttemptStartTime": ts(NOW),
            },
        ),
    ),
    EngineCase(
        name="sigterm-exit-143-is-a-preemption",
        why="Exit 143 (saved after SIGTERM) with no other signal: a preemption, restarted at once.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.PREEMPTED,
                exit_code=143,
                message="stopped by SIGTERM after saving",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(pod(phase="Failed", exit_code=143, message=PREEMPTED_AT_7)),
            process=ProcessEnd(143, PREEMPTED_AT_7),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, Preempted=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "restarting from the newest valid checkpoint (last reported: epoch 7 step 392)"
                " because of Preempted",
            ),
        ),
    ),
    EngineCase(
        name="evicted-by-a-drain",
        why="DisruptionTarget EvictionByEvictionAPI wins over the 137 of a kill after the grace.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.EVICTED,
                exit_code=137,
                message="EvictionByEvictionAPI: Eviction API: evicting",
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=137,
                    deleting=True,
                    conditions=(disruption("EvictionByEvictionAPI", "Eviction API: evicting"),),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, Evicted=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "restarting from the newest valid checkpoint (last reported: epoch 5 step 280)"
                " because of Evicted",
            ),
        ),
    ),
    EngineCase(
        name="evicted-for-node-pressure",
        why="The kubelet evicted the pod (phase Failed, reason Evicted): a disruption.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.EVICTED,
                exit_code=137,
                message="Evicted: The node was low on resource: memory.",
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=137,
                    pod_reason=("Evicted", "The node was low on resource: memory."),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, Evicted=1),
            attempt=2,
            event=(EventType.NORMAL, EventReason.RESTARTING, "because of Evicted"),
        ),
    ),
    EngineCase(
        name="node-unreachable-taint-manager",
        why="DeletionByTaintManager (node not ready/unreachable) then the pod is gone: NodeLost.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.NODE_LOST,
                message="DeletionByTaintManager: Taint manager: deleting due to NoExecute taint",
            ),
            pod=PodEnd(
                pod(
                    running=True,
                    deleting=True,
                    conditions=(
                        disruption(
                            "DeletionByTaintManager",
                            "Taint manager: deleting due to NoExecute taint",
                        ),
                    ),
                ),
                gone=True,
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, NodeLost=1),
            attempt=2,
            event=(EventType.NORMAL, EventReason.RESTARTING, "because of NodeLost"),
        ),
    ),
    EngineCase(
        name="node-vanished",
        why="The pod's node no longer exists: NodeLost, even though the pod still says Running.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(Cause.NODE_LOST, exit_code=None, message="node gpu-node-1 is gone"),
            pod=PodEnd(pod(running=True), node_exists=False),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, NodeLost=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "because of NodeLost: node gpu-node-1 is gone",
            ),
        ),
    ),
    EngineCase(
        name="machine-lost-locally",
        why="Locally, the runner's injected SIGKILL stands for a lost machine: NodeLost.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.NODE_LOST, exit_code=137, message="NodeLost: exit code 137 (SIGKILL)"
            ),
            process=ProcessEnd(-9, None, known_cause=Cause.NODE_LOST),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, NodeLost=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "restarting from the newest valid checkpoint (last reported: epoch 5 step 280)"
                " because of NodeLost",
            ),
        ),
    ),
    EngineCase(
        name="pod-deleted-by-someone-else",
        why="A deletion the operator did not make (no stop annotation): a disruption, Deleted.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.DELETED,
                exit_code=143,
                message="pod digits-1 was deleted by someone other than the operator",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(
                pod(phase="Failed", exit_code=143, message=PREEMPTED_AT_7, deleting=True), gone=True
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, Deleted=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "restarting from the newest valid checkpoint (last reported: epoch 7 step 392)"
                " because of Deleted",
            ),
        ),
    ),
    EngineCase(
        name="disruptions-do-not-count-toward-max-restarts",
        why="With failures at maxRestarts, a preemption still restarts: the counts are apart.",
        spec_overrides={},
        before=before(attempt=4, counts=restarts(failures=3, Crashed=3)),
        ending=Ending(
            observed=end(
                Cause.PREEMPTED,
                attempt=4,
                exit_code=143,
                message="stopped by SIGTERM after saving",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(pod(4, phase="Failed", exit_code=143, message=PREEMPTED_AT_7)),
            process=ProcessEnd(143, PREEMPTED_AT_7),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(failures=3, disruptions=1, Crashed=3, Preempted=1),
            attempt=5,
            event=(EventType.NORMAL, EventReason.RESTARTING, "because of Preempted"),
        ),
    ),
    EngineCase(
        name="disruptions-beyond-the-cap-fail",
        why="maxDisruptions reached: the next disruption fails the job (MaxDisruptionsExceeded).",
        spec_overrides={"restartPolicy": {"maxDisruptions": 2}},
        before=before(attempt=3, counts=restarts(disruptions=2, Preempted=2)),
        ending=Ending(
            observed=end(
                Cause.PREEMPTED,
                attempt=3,
                exit_code=143,
                message="stopped by SIGTERM after saving",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(pod(3, phase="Failed", exit_code=143, message=PREEMPTED_AT_7)),
            process=ProcessEnd(143, PREEMPTED_AT_7),
        ),
        now=NOW,
        expect=Expected(
            action=Action.FAIL,
            phase=Phase.FAILED,
            reason=Reason.MAX_DISRUPTIONS_EXCEEDED,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(disruptions=2, Preempted=2),
            attempt=3,
            event=(EventType.WARNING, EventReason.FAILED, "failed because of Preempted"),
            fields={"completionTime": ts(NOW)},
        ),
    ),
    # --- failures: backoff, counted toward maxRestarts ----------------------------------
    EngineCase(
        name="crashed-restarts-after-backoff",
        why="A crash (exit 1): Restarting, the first backoff delay, counted as a failure.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.CRASHED,
                exit_code=1,
                message="exit code 1: ZeroDivisionError: division by zero",
                progress=SAVED_AT_5,
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=1,
                    message=termination(
                        Outcome.FAILED, error="ZeroDivisionError: division by zero"
                    ),
                )
            ),
            process=ProcessEnd(
                1, termination(Outcome.FAILED, error="ZeroDivisionError: division by zero")
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, Crashed=1),
            attempt=1,
            delay_seconds=10.0,
            requeue_after=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "from the newest valid checkpoint (last reported: epoch 5 step 280)"
                " because of Crashed: exit code 1: ZeroDivisionError",
            ),
            fields={"nextAttemptTime": ts(NOW + timedelta(seconds=10)), "attempt": 1},
        ),
    ),
    EngineCase(
        name="crashed-without-a-message",
        why="A crash that wrote no termination message (a segfault): still Crashed.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(Cause.CRASHED, exit_code=139, message="exit code 139 (SIGSEGV)"),
            pod=PodEnd(pod(phase="Failed", exit_code=139)),
            process=ProcessEnd(-11, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, Crashed=1),
            attempt=1,
            delay_seconds=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "because of Crashed: exit code 139 (SIGSEGV)",
            ),
        ),
    ),
    EngineCase(
        name="backoff-grows-by-the-factor",
        why="The third failure waits initialSeconds * factor^2 = 40 s.",
        spec_overrides={},
        before=before(attempt=3, counts=restarts(failures=2, Crashed=2)),
        ending=Ending(
            observed=end(Cause.CRASHED, attempt=3, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(3, phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=3, Crashed=3),
            attempt=3,
            delay_seconds=40.0,
            event=(EventType.WARNING, EventReason.RESTARTING, "attempt 4 starts in 40s"),
        ),
    ),
    EngineCase(
        name="backoff-is-capped",
        why="The delay never exceeds maxSeconds.",
        spec_overrides={"restartPolicy": {"maxRestarts": 20}},
        before=before(attempt=10, counts=restarts(failures=9, Crashed=9)),
        ending=Ending(
            observed=end(Cause.CRASHED, attempt=10, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(10, phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=10, Crashed=10),
            attempt=10,
            delay_seconds=300.0,
            event=(EventType.WARNING, EventReason.RESTARTING, "starts in 300s"),
        ),
    ),
    EngineCase(
        name="zero-backoff-restarts-now",
        why="initialSeconds 0: a failure restarts at once (still counted, still a Warning).",
        spec_overrides=_backoff(0),
        before=before(),
        ending=Ending(
            observed=end(Cause.CRASHED, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(failures=1, Crashed=1),
            attempt=2,
            event=(EventType.WARNING, EventReason.RESTARTING, "because of Crashed"),
        ),
    ),
    EngineCase(
        name="failures-beyond-max-restarts-fail",
        why="maxRestarts failures restarted already: the next one fails the job.",
        spec_overrides={},
        before=before(attempt=4, counts=restarts(failures=3, OOMKilled=1, Crashed=2)),
        ending=Ending(
            observed=end(Cause.CRASHED, attempt=4, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(4, phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.FAIL,
            phase=Phase.FAILED,
            reason=Reason.MAX_RESTARTS_EXCEEDED,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(failures=3, OOMKilled=1, Crashed=2),
            attempt=4,
            event=(
                EventType.WARNING,
                EventReason.FAILED,
                "failed because of Crashed (exit code 1) after 3 restarts (maxRestarts 3)",
            ),
            fields={
                "completionTime": ts(NOW),
                "lastAttemptEnd": {
                    "attempt": 4,
                    "cause": "Crashed",
                    "exitCode": 1,
                    "message": "exit code 1",
                    "time": ts(NOW),
                },
                # A job from before budgets: its budget is counted from its restarts.
                "restartBudget": budget(used=3, since=5),
            },
        ),
    ),
    # --- the failure budget: progress starts it afresh, nothing else does ------------
    EngineCase(
        name="failure-after-progress-starts-the-budget-afresh",
        why="resetAfterProgressEpochs 3: a failure 4 epochs past the previous one does not "
        "exhaust the budget; it starts afresh (count and backoff) and this failure is its first.",
        spec_overrides=_forgive(3),
        before=before(
            attempt=4,
            epoch=8,
            counts=restarts(failures=3, Crashed=3),
            restartBudget=budget(used=3, since=5),
        ),
        ending=Ending(
            observed=end(
                Cause.CRASHED,
                attempt=4,
                exit_code=1,
                message="exit code 1: RuntimeError: NaN loss",
                progress=SAVED_AT_9,
            ),
            pod=PodEnd(pod(4, phase="Failed", exit_code=1, message=_CRASHED_AT_9)),
            process=ProcessEnd(1, _CRASHED_AT_9),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=4, Crashed=4),
            attempt=4,
            delay_seconds=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "attempt 5 starts in 10s (4 epochs trained since the previous failure started "
                "the failure budget afresh; 2 of 3 failed restarts left)",
            ),
            fields={
                "restartBudget": budget(used=1, since=9, resets=1),
                "currentEpoch": 9,
                "message": (
                    "restarting from the newest valid checkpoint (last reported: epoch 9 step "
                    "504) because of Crashed: exit code 1: RuntimeError: NaN loss; attempt 5 "
                    "starts in 10s (4 epochs trained since the previous failure started the "
                    "failure budget afresh; 2 of 3 failed restarts left)"
                ),
            },
        ),
    ),
    EngineCase(
        name="failure-without-enough-progress-is-counted",
        why="resetAfterProgressEpochs 3, 1 epoch since the previous failure: counted as ever "
        "(after an earlier reset the lifetime count may pass maxRestarts; the budget may not).",
        spec_overrides=_forgive(3),
        before=before(
            attempt=6,
            epoch=10,
            counts=restarts(failures=5, Crashed=5),
            restartBudget=budget(used=2, since=9, resets=1),
        ),
        ending=Ending(
            observed=end(Cause.CRASHED, attempt=6, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(6, phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=6, Crashed=6),
            attempt=6,
            delay_seconds=40.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "attempt 7 starts in 40s (0 of 3 failed restarts left)",
            ),
            fields={"restartBudget": budget(used=3, since=10, resets=1)},
        ),
    ),
    EngineCase(
        name="failure-without-enough-progress-exhausts-the-budget",
        why="resetAfterProgressEpochs 3, the budget spent and 1 epoch since the previous "
        "failure: Failed (MaxRestartsExceeded), saying how little progress there was.",
        spec_overrides=_forgive(3),
        before=before(
            attempt=7,
            epoch=11,
            counts=restarts(failures=6, Crashed=6),
            restartBudget=budget(used=3, since=10, resets=1),
        ),
        ending=Ending(
            observed=end(Cause.CRASHED, attempt=7, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(7, phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.FAIL,
            phase=Phase.FAILED,
            reason=Reason.MAX_RESTARTS_EXCEEDED,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(failures=6, Crashed=6),
            attempt=7,
            event=(
                EventType.WARNING,
                EventReason.FAILED,
                "failed because of Crashed (exit code 1) after 3 restarts (maxRestarts 3), "
                "1 epoch trained since the previous failure (resetAfterProgressEpochs 3)",
            ),
            fields={"restartBudget": budget(used=3, since=10, resets=1)},
        ),
    ),
    EngineCase(
        name="a-disruption-neither-spends-nor-restores-the-failure-budget",
        why="Disruptions keep their own budget: a preemption after progress restarts, leaves "
        "the failure budget spent and says how many disruptions are left.",
        spec_overrides=_forgive(3, maxDisruptions=2),
        before=before(
            attempt=4,
            counts=restarts(failures=3, Crashed=3),
            restartBudget=budget(used=3, since=2),
        ),
        ending=Ending(
            observed=end(
                Cause.PREEMPTED,
                attempt=4,
                exit_code=143,
                message="stopped by SIGTERM after saving",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(pod(4, phase="Failed", exit_code=143, message=PREEMPTED_AT_7)),
            process=ProcessEnd(143, PREEMPTED_AT_7),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(failures=3, disruptions=1, Crashed=3, Preempted=1),
            attempt=5,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "because of Preempted: stopped by SIGTERM after saving; starting attempt 5 "
                "(1 of 2 disruptions left)",
            ),
            fields={"restartBudget": budget(used=3, since=2, disruptions_left=1)},
        ),
    ),
    EngineCase(
        name="oom-killed",
        why="OOMKilled: a failure with backoff; the message says what to change.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.OOM_KILLED,
                exit_code=137,
                message=(
                    "the trainer ran out of memory (OOMKilled); raise resources.limits.memory "
                    "or lower training.batchSize"
                ),
            ),
            pod=PodEnd(pod(phase="Failed", exit_code=137, terminated_reason="OOMKilled")),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, OOMKilled=1),
            attempt=1,
            delay_seconds=10.0,
            event=(EventType.WARNING, EventReason.RESTARTING, "because of OOMKilled"),
        ),
    ),
    EngineCase(
        name="stalled",
        why="No training step for stallTimeoutSeconds: the operator stopped it; a failure.",
        spec_overrides={"restartPolicy": {"stallTimeoutSeconds": 300}},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.STALLED,
                exit_code=137,
                message="stopped: no training step within restartPolicy.stallTimeoutSeconds",
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=137,
                    annotations={classify.STOP_ANNOTATION: classify.STALLED_STOP},
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, Stalled=1),
            attempt=1,
            delay_seconds=10.0,
            event=(EventType.WARNING, EventReason.RESTARTING, "because of Stalled"),
        ),
    ),
    EngineCase(
        name="invalid-configuration-never-restarts",
        why="Exit 2: Failed with InvalidConfig at once, whatever maxRestarts allows.",
        spec_overrides={"restartPolicy": {"maxRestarts": 100}},
        before=before(epoch=0, step=0, checkpoint=None),
        ending=Ending(
            observed=end(
                Cause.INVALID,
                exit_code=2,
                message="hyperparameters.dropout: expected a number from 0.0 to 0.9, got 2",
                progress=observation.Progress(epoch=0, step=0, checkpoint=None),
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=2,
                    message=termination(
                        Outcome.INVALID,
                        epoch=0,
                        step=0,
                        checkpoint=None,
                        error="hyperparameters.dropout: expected a number from 0.0 to 0.9, got 2",
                    ),
                )
            ),
            process=ProcessEnd(
                2,
                termination(
                    Outcome.INVALID,
                    epoch=0,
                    step=0,
                    checkpoint=None,
                    error="hyperparameters.dropout: expected a number from 0.0 to 0.9, got 2",
                ),
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.FAIL,
            phase=Phase.FAILED,
            reason=Reason.INVALID_CONFIG,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(),
            attempt=1,
            event=(
                EventType.WARNING,
                EventReason.FAILED,
                "failed because the trainer rejected its configuration: hyperparameters.dropout",
            ),
        ),
    ),
    EngineCase(
        name="image-pull-backoff",
        why="ImagePullBackOff: the attempt ends as ImagePullError, a failure with backoff.",
        spec_overrides={},
        before=before("Pending", reason="AttemptStarted", epoch=0, step=0, checkpoint=None),
        ending=Ending(
            observed=end(
                Cause.IMAGE_PULL_ERROR,
                message=(
                    'ImagePullBackOff: Back-off pulling image "ghcr.io/rekindle-dev/trainer:0.1.0"'
                ),
            ),
            pod=PodEnd(
                pod(
                    phase="Pending",
                    waiting=(
                        "ImagePullBackOff",
                        'Back-off pulling image "ghcr.io/rekindle-dev/trainer:0.1.0"',
                    ),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, ImagePullError=1),
            attempt=1,
            delay_seconds=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "restarting from the newest valid checkpoint (none reported yet)"
                " because of ImagePullError: ImagePullBackOff",
            ),
        ),
    ),
    EngineCase(
        name="err-image-pull",
        why="ErrImagePull is the same cause as ImagePullBackOff.",
        spec_overrides={},
        before=before("Pending", reason="AttemptStarted", epoch=0, step=0, checkpoint=None),
        ending=Ending(
            observed=end(Cause.IMAGE_PULL_ERROR, message="ErrImagePull: manifest unknown"),
            pod=PodEnd(pod(phase="Pending", waiting=("ErrImagePull", "manifest unknown"))),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, ImagePullError=1),
            attempt=1,
            delay_seconds=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "because of ImagePullError: ErrImagePull: manifest unknown",
            ),
        ),
    ),
    EngineCase(
        name="container-config-error",
        why="CreateContainerConfigError (a missing Secret): ConfigError, with backoff.",
        spec_overrides={},
        before=before("Pending", reason="AttemptStarted", epoch=0, step=0, checkpoint=None),
        ending=Ending(
            observed=end(
                Cause.CONFIG_ERROR, message='CreateContainerConfigError: secret "wandb" not found'
            ),
            pod=PodEnd(
                pod(
                    phase="Pending",
                    waiting=("CreateContainerConfigError", 'secret "wandb" not found'),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, ConfigError=1),
            attempt=1,
            delay_seconds=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                'because of ConfigError: CreateContainerConfigError: secret "wandb" not found',
            ),
        ),
    ),
    EngineCase(
        name="stuck-pending-past-the-timeout",
        why="Not running pendingTimeoutSeconds after it got a node: PendingTimeout, a failure.",
        spec_overrides={},
        before=before(
            "Pending",
            reason="AttemptStarted",
            epoch=0,
            step=0,
            checkpoint=None,
            lastAttemptStartTime=ts(NOW - timedelta(seconds=700)),
        ),
        ending=Ending(
            observed=end(
                Cause.PENDING_TIMEOUT,
                message="still Pending 601s after it got node gpu-node-1: ContainerCreating",
            ),
            pod=PodEnd(
                pod(
                    phase="Pending",
                    created=NOW - timedelta(seconds=700),
                    conditions=(scheduled(NOW - timedelta(seconds=601)),),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART_AFTER,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, PendingTimeout=1),
            attempt=1,
            delay_seconds=10.0,
            event=(
                EventType.WARNING,
                EventReason.RESTARTING,
                "s after it got node gpu-node-1: ContainerCreating",
            ),
        ),
    ),
    # --- waiting for its turn: never a failure, never a pending timeout ----------------------
    EngineCase(
        name="queued-for-admission-past-the-timeout-waits",
        why="Held back by Kueue's gate for an hour: Queued, not a PendingTimeout.",
        spec_overrides={"queueName": "team-a"},
        before=before(
            "Pending",
            reason="AttemptStarted",
            lastAttemptStartTime=ts(NOW - timedelta(hours=1)),
        ),
        ending=Ending(
            observed=AttemptPending(
                attempt=1,
                queued="WaitingForAdmission",
                message="waiting for Kueue to admit it from LocalQueue team-a",
            ),
            pod=PodEnd(queued_pod(created=NOW - timedelta(hours=1), queue="team-a")),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.PENDING,
            reason=Reason.QUEUED,
            conditions={"Running": "False", "Queued": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
            requeue_after=None,
            fields={
                "message": "attempt 1 is queued (WaitingForAdmission): waiting for Kueue to "
                "admit it from LocalQueue team-a"
            },
        ),
    ),
    EngineCase(
        name="unschedulable-past-the-timeout-waits",
        why="No node fits it for longer than the timeout: Queued (Unschedulable), not a failure.",
        spec_overrides={},
        before=before(
            "Pending",
            reason="AttemptStarted",
            lastAttemptStartTime=ts(NOW - timedelta(seconds=601)),
        ),
        ending=Ending(
            observed=AttemptPending(
                attempt=1,
                queued="Unschedulable",
                message="0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            ),
            pod=PodEnd(
                pod(
                    phase="Pending",
                    created=NOW - timedelta(seconds=601),
                    node=None,
                    conditions=(
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                        },
                    ),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.PENDING,
            reason=Reason.QUEUED,
            conditions={"Running": "False", "Queued": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
            requeue_after=None,
        ),
    ),
    EngineCase(
        name="admitted-and-scheduled-leaves-the-queue",
        why="Out of the queue and on a node: Queued False; the pending timeout counts from now on.",
        spec_overrides={"queueName": "team-a"},
        before=_queued_before(NOW - timedelta(hours=1)),
        ending=Ending(
            observed=AttemptPending(attempt=1, since=NOW - timedelta(seconds=10)),
            pod=PodEnd(
                pod(
                    phase="Pending",
                    created=NOW - timedelta(hours=1),
                    conditions=(scheduled(NOW - timedelta(seconds=10)),),
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions={"Running": "False", "Queued": "False"},
            restarts=restarts(),
            attempt=1,
            event=None,
            requeue_after=590.0,
        ),
    ),
    # --- backoff timer -----------------------------------------------------------------
    EngineCase(
        name="backoff-not-over-waits",
        why="Restarting before nextAttemptTime: wait, asking again when it is due.",
        spec_overrides={},
        before=before(
            "Restarting",
            reason="BackOff",
            counts=restarts(failures=1, Crashed=1),
            lastAttemptEnd=ended_record(1, Cause.CRASHED, 1),
            nextAttemptTime=ts(NOW + timedelta(seconds=7)),
        ),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.RESTARTING,
            reason=Reason.BACKOFF,
            conditions=_RESTARTING,
            restarts=restarts(failures=1, Crashed=1),
            attempt=1,
            event=None,
            requeue_after=7.0,
        ),
    ),
    EngineCase(
        name="backoff-over-starts-the-next-attempt",
        why="At nextAttemptTime the next attempt starts from the latest checkpoint.",
        spec_overrides={},
        before=before(
            "Restarting",
            reason="BackOff",
            counts=restarts(failures=1, Crashed=1),
            lastAttemptEnd=ended_record(1, Cause.CRASHED, 1),
            nextAttemptTime=ts(NOW),
        ),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.START,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING_AFTER_BACKOFF,
            restarts=restarts(failures=1, Crashed=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.ATTEMPT_STARTED,
                "backoff over; starting attempt 2 from the newest valid checkpoint"
                " (last reported: epoch 5 step 280)",
            ),
            fields={"nextAttemptTime": None, "attempt": 2},
        ),
    ),
    # --- a create the API server refused (engine.decide_create_refused) ---------------------
    EngineCase(
        name="refused-create-waits-until-due",
        why="A create refused for now (quota) waits in Pending for its retry; no attempt is live.",
        spec_overrides={},
        before=_refused_before(NOW + timedelta(seconds=7)),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.PENDING,
            reason=Reason.CREATE_REFUSED,
            conditions={"Running": "False", "CreateRefused": "True"},
            restarts=restarts(disruptions=1, Preempted=1),
            attempt=1,
            event=None,
            requeue_after=7.0,
        ),
    ),
    EngineCase(
        name="refused-create-is-tried-again-when-due",
        why="At nextAttemptTime the refused attempt is created again; the refusal is over.",
        spec_overrides={},
        before=_refused_before(NOW),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.START,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions={"Running": "False", "CreateRefused": "False"},
            restarts=restarts(disruptions=1, Preempted=1),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.ATTEMPT_STARTED,
                "creating attempt 2 again after a refusal from the newest valid checkpoint "
                "(last reported: epoch 5 step 280)",
            ),
            fields={"nextAttemptTime": None, "attempt": 2},
        ),
    ),
    # --- deadline -------------------------------------------------------------------------
    EngineCase(
        name="deadline-passes-while-running",
        why="activeDeadlineSeconds after startTime: Failed (DeadlineExceeded); the attempt stops.",
        spec_overrides={"activeDeadlineSeconds": 3600},
        before=before(),
        ending=None,
        now=T0 + timedelta(seconds=3600),
        expect=Expected(
            action=Action.FAIL,
            phase=Phase.FAILED,
            reason=Reason.DEADLINE_EXCEEDED,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(),
            attempt=1,
            event=(
                EventType.WARNING,
                EventReason.FAILED,
                "failed because activeDeadlineSeconds (3600s) passed at epoch 5 step 280",
            ),
        ),
    ),
    EngineCase(
        name="no-restart-after-the-deadline",
        why="A crash after the deadline is not restarted: DeadlineExceeded.",
        spec_overrides={"activeDeadlineSeconds": 600},
        before=before(),
        ending=Ending(
            observed=end(Cause.CRASHED, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.FAIL,
            phase=Phase.FAILED,
            reason=Reason.DEADLINE_EXCEEDED,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(),
            attempt=1,
            event=(EventType.WARNING, EventReason.FAILED, "activeDeadlineSeconds (600s)"),
        ),
    ),
    EngineCase(
        name="deadline-not-yet-asks-again-then",
        why="While running under a deadline the engine asks to be called when it passes.",
        spec_overrides={"activeDeadlineSeconds": 7200},
        before=before(),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.RUNNING,
            reason=Reason.ATTEMPT_RUNNING,
            conditions={"Running": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
            requeue_after=3600.0,
        ),
    ),
    # --- suspend --------------------------------------------------------------------------
    EngineCase(
        name="suspend-stops-the-running-attempt",
        why="suspend: true while running: STOP (SIGTERM, the trainer saves), phase Suspended.",
        spec_overrides={"suspend": True},
        before=before(),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.STOP,
            phase=Phase.SUSPENDED,
            reason=Reason.STOPPING,
            conditions={"Running": "False", "Suspended": "True"},
            restarts=restarts(),
            attempt=1,
            event=(EventType.NORMAL, EventReason.SUSPENDED, "attempt 1 is told to save and stop"),
        ),
    ),
    EngineCase(
        name="the-stopped-attempt-ends-while-suspended",
        why="The attempt stopped for the suspension ends: recorded, not counted, still Suspended.",
        spec_overrides={"suspend": True},
        before=before("Suspended", reason="Stopping"),
        ending=Ending(
            observed=end(
                Cause.STOPPED, exit_code=143, message="stopped: Suspended", progress=PROGRESS_AT_7
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=143,
                    message=PREEMPTED_AT_7,
                    deleting=True,
                    annotations={classify.STOP_ANNOTATION: "Suspended"},
                ),
                gone=True,
            ),
            process=ProcessEnd(
                143, PREEMPTED_AT_7, known_cause=Cause.STOPPED, detail="stopped: Suspended"
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.SUSPENDED,
            reason=Reason.SUSPENDED,
            conditions={"Running": "False", "Suspended": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
            fields={
                "currentEpoch": 7,
                "lastAttemptEnd": {
                    "attempt": 1,
                    "cause": "Stopped",
                    "exitCode": 143,
                    "message": "stopped: Suspended",
                    "time": ts(NOW),
                },
            },
        ),
    ),
    EngineCase(
        name="suspend-during-backoff",
        why="suspend: true while waiting out a backoff: Suspended, the timer dropped.",
        spec_overrides={"suspend": True},
        before=before(
            "Restarting",
            reason="BackOff",
            counts=restarts(failures=1, Crashed=1),
            lastAttemptEnd=ended_record(1, Cause.CRASHED, 1),
            nextAttemptTime=ts(NOW + timedelta(seconds=5)),
        ),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.SUSPENDED,
            reason=Reason.SUSPENDED,
            conditions={"Running": "False", "Restarting": "False", "Suspended": "True"},
            restarts=restarts(failures=1, Crashed=1),
            attempt=1,
            event=(EventType.NORMAL, EventReason.SUSPENDED, "suspended"),
            fields={"nextAttemptTime": None},
        ),
    ),
    EngineCase(
        name="resume-starts-a-new-attempt",
        why="suspend: false again: the next attempt resumes from the checkpoint; deadline reset.",
        spec_overrides={"suspend": False, "activeDeadlineSeconds": 600},
        before=before(
            "Suspended",
            reason="Suspended",
            epoch=7,
            step=392,
            checkpoint="ckpt-000007-0000000392",
            lastAttemptEnd=ended_record(1, Cause.STOPPED, 143),
        ),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.START,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions={"Running": "False", "Suspended": "False"},
            restarts=restarts(),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESUMED,
                "resumed; starting attempt 2 from the newest valid checkpoint"
                " (last reported: epoch 7 step 392)",
            ),
            fields={"startTime": ts(NOW)},
        ),
    ),
    EngineCase(
        name="resume-waits-for-the-stopping-attempt",
        why="Un-suspended before the stopped attempt ended: wait (never two attempts at once).",
        spec_overrides={"suspend": False},
        before=before("Suspended", reason="Stopping"),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.SUSPENDED,
            reason=Reason.STOPPING,
            conditions={"Running": "False", "Suspended": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
        ),
    ),
    EngineCase(
        name="success-while-suspending-wins",
        why="The attempt finished training while it was being stopped: Succeeded.",
        spec_overrides={"suspend": True},
        before=before("Suspended", reason="Stopping"),
        ending=Ending(
            observed=end(
                Cause.COMPLETED,
                exit_code=0,
                message="trained every epoch",
                progress=observation.Progress(
                    epoch=20, step=1120, checkpoint="ckpt-000020-0000001120"
                ),
            ),
            pod=PodEnd(
                pod(
                    phase="Succeeded",
                    exit_code=0,
                    message=termination(
                        Outcome.COMPLETED, epoch=20, step=1120, checkpoint="ckpt-000020-0000001120"
                    ),
                    annotations={classify.STOP_ANNOTATION: "Suspended"},
                )
            ),
            process=ProcessEnd(
                0,
                termination(
                    Outcome.COMPLETED, epoch=20, step=1120, checkpoint="ckpt-000020-0000001120"
                ),
                known_cause=Cause.STOPPED,
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.SUCCEED,
            phase=Phase.SUCCEEDED,
            reason=Reason.COMPLETED,
            conditions={"Running": "False", "Suspended": "False", "Succeeded": "True"},
            restarts=restarts(),
            attempt=1,
            event=(EventType.NORMAL, EventReason.COMPLETED, "completed all 20 epochs"),
        ),
    ),
    EngineCase(
        name="stopped-by-the-operator-without-suspend-restarts-uncounted",
        why="An attempt the operator stopped for another reason is replaced at once, uncounted.",
        spec_overrides={},
        before=before(),
        ending=Ending(
            observed=end(
                Cause.STOPPED, exit_code=143, message="stopped: SpecChanged", progress=PROGRESS_AT_7
            ),
            pod=PodEnd(
                pod(
                    phase="Failed",
                    exit_code=143,
                    message=PREEMPTED_AT_7,
                    annotations={classify.STOP_ANNOTATION: "SpecChanged"},
                )
            ),
        ),
        now=NOW,
        expect=Expected(
            action=Action.RESTART,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(),
            attempt=2,
            event=(
                EventType.NORMAL,
                EventReason.RESTARTING,
                "attempt 1 was stopped from the newest valid checkpoint"
                " (last reported: epoch 7 step 392)",
            ),
        ),
    ),
    # --- idempotency and finished jobs ------------------------------------------------------
    EngineCase(
        name="an-end-seen-again-changes-nothing",
        why="A replayed end (already in lastAttemptEnd) is ignored: no double count.",
        spec_overrides={},
        before=before(
            "Pending",
            attempt=2,
            reason="AttemptStarted",
            counts=restarts(disruptions=1, Preempted=1),
            lastAttemptEnd=ended_record(1, Cause.PREEMPTED, 143),
            lastAttemptStartTime=ts(NOW),
        ),
        ending=Ending(
            observed=end(
                Cause.PREEMPTED,
                attempt=1,
                exit_code=143,
                message="stopped by SIGTERM after saving",
                progress=PROGRESS_AT_7,
            ),
            pod=PodEnd(pod(1, phase="Failed", exit_code=143, message=PREEMPTED_AT_7)),
            process=ProcessEnd(143, PREEMPTED_AT_7),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.PENDING,
            reason=Reason.ATTEMPT_STARTED,
            conditions=_PENDING,
            restarts=restarts(disruptions=1, Preempted=1),
            attempt=2,
            event=None,
            requeue_after=600.0,
        ),
    ),
    EngineCase(
        name="a-finished-job-ignores-ends",
        why="Succeeded is final: a late end changes no phase and starts nothing.",
        spec_overrides={},
        before=before(
            "Succeeded",
            reason="EarlyStopped",
            lastAttemptEnd=ended_record(1, Cause.EARLY_STOPPED, 0),
            completionTime=ts(T0),
        ),
        ending=Ending(
            observed=end(Cause.CRASHED, attempt=1, exit_code=1, message="exit code 1"),
            pod=PodEnd(pod(1, phase="Failed", exit_code=1)),
            process=ProcessEnd(1, None),
        ),
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.SUCCEEDED,
            reason=Reason.EARLY_STOPPED,
            conditions={"Running": "False", "Succeeded": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
        ),
    ),
    EngineCase(
        name="ttl-after-finished-deletes-the-job",
        why="ttlSecondsAfterFinished past completionTime: DELETE.",
        spec_overrides={"ttlSecondsAfterFinished": 600},
        before=before(
            "Failed",
            reason="MaxRestartsExceeded",
            lastAttemptEnd=ended_record(1, Cause.CRASHED, 1),
            completionTime=ts(NOW - timedelta(seconds=600)),
        ),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.DELETE,
            phase=Phase.FAILED,
            reason=Reason.MAX_RESTARTS_EXCEEDED,
            conditions={"Running": "False", "Failed": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
        ),
    ),
    EngineCase(
        name="ttl-not-yet-asks-again-then",
        why="Before the TTL passes the engine asks to be called when it does.",
        spec_overrides={"ttlSecondsAfterFinished": 600},
        before=before(
            "Succeeded",
            reason="Completed",
            lastAttemptEnd=ended_record(1, Cause.COMPLETED, 0),
            completionTime=ts(NOW - timedelta(seconds=100)),
        ),
        ending=None,
        now=NOW,
        expect=Expected(
            action=Action.WAIT,
            phase=Phase.SUCCEEDED,
            reason=Reason.COMPLETED,
            conditions={"Running": "False", "Succeeded": "True"},
            restarts=restarts(),
            attempt=1,
            event=None,
            requeue_after=500.0,
        ),
    ),
)

#: Rows by name.
BY_NAME: dict[str, EngineCase] = {case.name: case for case in CASES}
#: Rows a pod can express (the operator's tests).
POD_CASES: tuple[EngineCase, ...] = tuple(
    c for c in CASES if c.ending is not None and c.ending.pod is not None
)
#: Rows a local process can express (the local runner's tests).
PROCESS_CASES: tuple[EngineCase, ...] = tuple(
    c for c in CASES if c.ending is not None and c.ending.process is not None
)
