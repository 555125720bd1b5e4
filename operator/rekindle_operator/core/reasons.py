"""The words a TrainingJob's status and events use: phases, causes, reasons.

Kept beside the types (as Kubebuilder keeps reason strings beside its API
types) so that the engine, the operator, the local runner, the metrics and the
chart's alerts all spell them the same way.
"""

from __future__ import annotations

import enum
from typing import Final


class Phase(enum.StrEnum):
    """Where a TrainingJob stands (``status.phase``)."""

    PENDING = "Pending"  # an attempt was created and has not started running yet
    RUNNING = "Running"  # the current attempt is running
    RESTARTING = "Restarting"  # waiting out a backoff before the next attempt
    SUSPENDED = "Suspended"  # spec.suspend is true: no attempt runs
    SUCCEEDED = "Succeeded"  # finished: all epochs or early stopped
    FAILED = "Failed"  # finished: will not be retried


class Cause(enum.StrEnum):
    """How one attempt ended, as classified from a pod or a local process."""

    COMPLETED = "Completed"  # exit 0: every epoch trained
    EARLY_STOPPED = "EarlyStopped"  # exit 0: early stopping fired
    PREEMPTED = "Preempted"  # scheduler preemption, or exit 143 (saved after SIGTERM)
    EVICTED = "Evicted"  # Eviction API (drain), kubelet node-pressure eviction
    NODE_LOST = "NodeLost"  # the node vanished, became unreachable or shut down
    DELETED = "Deleted"  # the pod was deleted by someone other than the operator
    OOM_KILLED = "OOMKilled"  # the container ran out of memory
    CRASHED = "Crashed"  # any other non-zero exit code
    INVALID = "Invalid"  # exit 2: invalid configuration or user code that cannot load
    IMAGE_PULL_ERROR = "ImagePullError"  # ErrImagePull, ImagePullBackOff, InvalidImageName
    CONFIG_ERROR = "ConfigError"  # CreateContainerConfigError, CreateContainerError
    PENDING_TIMEOUT = "PendingTimeout"  # not running after restartPolicy.pendingTimeoutSeconds
    STALLED = "Stalled"  # no training step for restartPolicy.stallTimeoutSeconds
    STOPPED = "Stopped"  # stopped on purpose by the operator or the runner (suspend, deadline)


#: The attempt finished its job: the TrainingJob succeeds.
SUCCESS_CAUSES: Final = frozenset({Cause.COMPLETED, Cause.EARLY_STOPPED})
#: Not the job's fault: restarted at once, counted as disruptions (``maxDisruptions``).
DISRUPTION_CAUSES: Final = frozenset(
    {Cause.PREEMPTED, Cause.EVICTED, Cause.NODE_LOST, Cause.DELETED}
)
#: The job's fault or its environment's: restarted after a backoff, counted toward ``maxRestarts``.
FAILURE_CAUSES: Final = frozenset(
    {
        Cause.OOM_KILLED,
        Cause.CRASHED,
        Cause.IMAGE_PULL_ERROR,
        Cause.CONFIG_ERROR,
        Cause.PENDING_TIMEOUT,
        Cause.STALLED,
    }
)


class WorkerState(enum.StrEnum):
    """Where one worker of the current attempt stands (``status.workers[].state``)."""

    PENDING = "Pending"  # created, not running yet
    RUNNING = "Running"  # its trainer runs
    STOPPING = "Stopping"  # told to stop (SIGTERM), not ended yet
    SUCCEEDED = "Succeeded"  # exited 0
    FAILED = "Failed"  # ended any other way: its cause says how
    STOPPED = "Stopped"  # ended because it was stopped (another worker ended the attempt, suspend)


class ConditionType(enum.StrEnum):
    """The ``type`` of each condition in ``status.conditions``."""

    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    #: The API server refused to create the attempt's pod (or claim); the reason says why.
    CREATE_REFUSED = "CreateRefused"
    #: The attempt's pod waits for its turn: a queue's admission (Kueue) or a free node.
    QUEUED = "Queued"
    #: The attempt's pod has a node but its volume is attached to another (dead) node.
    VOLUME_ATTACH_BLOCKED = "VolumeAttachBlocked"
    #: spec.terminationGracePeriodSeconds is shorter than the trainer's measured saves need
    #: (:mod:`rekindle_operator.core.grace`); advisory: no phase sets or clears it.
    GRACE_TOO_SHORT = "GraceTooShort"


class Reason(enum.StrEnum):
    """``status.reason`` and the ``reason`` of conditions: one CamelCase word each."""

    ATTEMPT_STARTED = "AttemptStarted"  # Pending: an attempt was created
    ATTEMPT_RUNNING = "AttemptRunning"  # Running
    BACKOFF = "BackOff"  # Restarting: waiting before the next attempt
    SUSPENDED = "Suspended"  # Suspended by spec.suspend
    STOPPING = "Stopping"  # Suspended: the running attempt was told to stop and save
    COMPLETED = "Completed"  # Succeeded: all epochs trained
    EARLY_STOPPED = "EarlyStopped"  # Succeeded: early stopping fired
    INVALID_CONFIG = "InvalidConfig"  # Failed: the trainer exited 2
    MAX_RESTARTS_EXCEEDED = "MaxRestartsExceeded"  # Failed: more failures than maxRestarts
    MAX_DISRUPTIONS_EXCEEDED = "MaxDisruptionsExceeded"  # Failed: more than maxDisruptions
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # Failed: activeDeadlineSeconds passed
    CREATE_REFUSED = "CreateRefused"  # Pending (retrying) or Failed: the pod's create was refused
    QUEUED = "Queued"  # Pending: the pod waits for a queue's admission or a free node


class EventType(enum.StrEnum):
    """Kubernetes Event types."""

    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(enum.StrEnum):
    """The ``reason`` of the Kubernetes Events the engine asks to post."""

    ATTEMPT_STARTED = "AttemptStarted"  # "starting attempt N from the newest valid checkpoint …"
    RESTARTING = "Restarting"  # "restarting from the newest valid checkpoint (…) because of C: …"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    COMPLETED = "Completed"
    EARLY_STOPPED = "EarlyStopped"
    FAILED = "Failed"  # "failed because …"
    FAILED_CREATE = "FailedCreate"  # "the API server refused to create …" (as a Job's)
    GRACE_TOO_SHORT = "GraceTooShort"  # Warning: terminationGracePeriodSeconds < measured save
