"""Kueue's plain-Pod integration: the labels that queue an attempt's pods as one group.

Kueue (kueue.sigs.k8s.io) hands out a shared cluster's quota. Its plain-Pod
integration needs no code on Rekindle's side, only words on the pods:

* the label ``kueue.x-k8s.io/queue-name`` names the LocalQueue (from
  ``spec.queueName``, else the TrainingJob's own label of that name);
* the label ``kueue.x-k8s.io/pod-group-name`` and the annotation
  ``kueue.x-k8s.io/pod-group-total-count`` make the attempt's pods one
  Workload, admitted all together (a gang of ``size`` pods; one today);
* Kueue's webhook then holds each pod back with the scheduling gate
  ``kueue.x-k8s.io/admission`` until the group is admitted.

The group's name stays the same for every attempt of one run of the job, so
that a replacement pod joins the Workload Kueue already admitted (after a
crash) or waits for it to be admitted again (after Kueue preempted it). A
run ends when the job finishes or is suspended: the operator then marks the
last pod ``kueue.x-k8s.io/retriable-in-group: "false"`` so that Kueue
finishes the Workload and frees its quota, and a resumed job starts a new
group (its name follows ``status.startTime``, which a resumption resets).

Pure: builders of labels and patches, no API calls.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rekindle_operator.core.job_spec import TrainingJobSpec
from rekindle_trainer.contract import timestamps

#: The LocalQueue a pod (or a TrainingJob) is submitted to.
QUEUE_LABEL: Final = "kueue.x-k8s.io/queue-name"
#: The pods of one Workload.
GROUP_LABEL: Final = "kueue.x-k8s.io/pod-group-name"
#: How many pods the Workload has (a string).
GROUP_COUNT_ANNOTATION: Final = "kueue.x-k8s.io/pod-group-total-count"
#: "false" on a pod of a group: once no pod of the group runs, the Workload is finished.
RETRIABLE_ANNOTATION: Final = "kueue.x-k8s.io/retriable-in-group"
#: The scheduling gate Kueue's webhook adds to a queued pod and removes to admit it.
ADMISSION_GATE: Final = "kueue.x-k8s.io/admission"
#: The pod condition Kueue sets (True) on the pods it stops, e.g. when it preempts them.
STOP_CONDITION: Final = "TerminationTarget"
#: Labels and annotations of Kueue's that only Rekindle sets on its pods.
RESERVED_KEYS: Final = frozenset(
    {QUEUE_LABEL, GROUP_LABEL, GROUP_COUNT_ANNOTATION, RETRIABLE_ANNOTATION}
)


@dataclass(frozen=True)
class PodGroup:
    """The Kueue Workload the pods of an attempt belong to."""

    queue: str
    name: str
    #: How many pods the group has: the attempt's gang size.
    total_count: int


def queue_name(job: Mapping[str, Any], spec: TrainingJobSpec) -> str | None:
    """The LocalQueue of ``job``: ``spec.queueName``, else its own queue-name label."""
    if spec.queue_name:
        return spec.queue_name
    labels = (job.get("metadata") or {}).get("labels") or {}
    label = labels.get(QUEUE_LABEL)
    return str(label) if label else None


def group_name(job_name: str, uid: str, started: datetime | None) -> str:
    """``<job>-<8 hex>``: the same for every attempt of one run, another after a resumption.

    At most 60 characters (a job name has at most 51): a valid label value.
    """
    seed = f"{uid}/{timestamps.format_time(started) if started else ''}"
    return f"{job_name}-{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


def pod_group(
    job: Mapping[str, Any], spec: TrainingJobSpec, started: datetime | None, *, size: int = 1
) -> PodGroup | None:
    """The group of the current run's attempts; None when the job names no queue.

    Args:
        job: the TrainingJob as read from the API.
        spec: its parsed spec.
        started: ``status.startTime`` (the start of this run).
        size: how many pods each attempt has (its gang).
    """
    queue = queue_name(job, spec)
    if queue is None:
        return None
    meta = job["metadata"]
    name = group_name(meta["name"], str(meta.get("uid", "")), started)
    return PodGroup(queue=queue, name=name, total_count=size)


def with_pod_group(pod: Mapping[str, Any], group: PodGroup | None) -> dict[str, Any]:
    """A copy of ``pod`` labelled and annotated as a member of ``group`` (as it is, if None)."""
    labelled = copy.deepcopy(dict(pod))
    if group is None:
        return labelled
    meta = labelled.setdefault("metadata", {})
    meta["labels"] = {**meta.get("labels", {}), QUEUE_LABEL: group.queue, GROUP_LABEL: group.name}
    meta["annotations"] = {
        **meta.get("annotations", {}),
        GROUP_COUNT_ANNOTATION: str(group.total_count),
    }
    return labelled


def in_group(pod: Mapping[str, Any]) -> bool:
    """Whether ``pod`` belongs to a Kueue pod group."""
    return GROUP_LABEL in ((pod.get("metadata") or {}).get("labels") or {})


def finishing_annotations(pod: Mapping[str, Any]) -> dict[str, str]:
    """The annotations that let Kueue finish ``pod``'s group when it stops ({} when in none)."""
    return {RETRIABLE_ANNOTATION: "false"} if in_group(pod) else {}
