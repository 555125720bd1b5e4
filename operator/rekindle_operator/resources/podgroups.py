"""Gang scheduling by a batch scheduler: the PodGroup of an attempt and the words on its pods.

A gang of N workers is useless until all N run; the default scheduler places
pods one by one, so a half-placed gang can hold GPUs while it waits for the
rest. With ``spec.gangScheduling`` the operator creates, before the pods of
attempt ``k``, a PodGroup ``<job>-<k>`` with ``minMember`` = ``spec.workers``
and points every pod of the attempt at it; the batch scheduler then places all
of them or none. Two PodGroup APIs are known (as in Kubeflow's training-operator):

* ``volcano``: ``scheduling.volcano.sh/v1beta1`` PodGroup (``spec.minMember``,
  ``spec.queue``, ``spec.priorityClassName``); each pod carries the annotation
  ``scheduling.k8s.io/group-name`` and ``schedulerName: volcano``;
* ``scheduler-plugins``: ``scheduling.x-k8s.io/v1alpha1`` PodGroup of the
  coscheduling plugin (``spec.minMember``, ``spec.scheduleTimeoutSeconds``);
  each pod carries the label ``scheduling.x-k8s.io/pod-group`` and the
  scheduler's name (``scheduler-plugins-scheduler`` unless set).

One PodGroup per attempt: a new attempt never inherits the last one's state
(phase, scheduled count); the operator deletes the previous attempt's group
when it starts the next, and the owner reference deletes the last with the job.
Pure: plain dicts in and out, no API calls.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from rekindle_operator.core.job_spec import GangScheduler, GangScheduling, TrainingJobSpec
from rekindle_operator.resources import kueue, ownership


@dataclass(frozen=True)
class PodGroupApi:
    """Where a scheduler's PodGroup lives in the API, and how its pods name their group."""

    group: str
    version: str
    kind: str
    plural: str
    #: ``"annotation"`` or ``"label"``: where a pod names its PodGroup.
    pod_key_place: str
    #: The key of that annotation or label.
    pod_key: str

    @property
    def api_version(self) -> str:
        """``group/version`` of the PodGroup."""
        return f"{self.group}/{self.version}"


VOLCANO: Final = PodGroupApi(
    group="scheduling.volcano.sh",
    version="v1beta1",
    kind="PodGroup",
    plural="podgroups",
    pod_key_place="annotation",
    pod_key="scheduling.k8s.io/group-name",
)
SCHEDULER_PLUGINS: Final = PodGroupApi(
    group="scheduling.x-k8s.io",
    version="v1alpha1",
    kind="PodGroup",
    plural="podgroups",
    pod_key_place="label",
    pod_key="scheduling.x-k8s.io/pod-group",
)
#: The PodGroup API of each gang scheduler.
APIS: Final = {GangScheduler.VOLCANO: VOLCANO, GangScheduler.SCHEDULER_PLUGINS: SCHEDULER_PLUGINS}


def api_of(gang: GangScheduling) -> PodGroupApi:
    """The PodGroup API that ``gang``'s scheduler reads."""
    return APIS[gang.scheduler]


def group_name(job_name: str, attempt: int) -> str:
    """``<job>-<attempt>``: the PodGroup of one attempt (a valid label value and object name)."""
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    return f"{job_name}-{attempt}"


def build_pod_group(
    job: Mapping[str, Any], spec: TrainingJobSpec, attempt: int
) -> dict[str, Any] | None:
    """The PodGroup of ``attempt`` of ``job``; None when the job asks for no gang scheduling.

    ``minMember`` is the whole gang (``spec.workers``): TensorFlow's collective
    cannot start with fewer workers, so a partial placement is never useful.
    """
    gang = spec.gang_scheduling
    if gang is None:
        return None
    api = api_of(gang)
    meta = job["metadata"]
    name = meta["name"]
    group_spec: dict[str, Any] = {"minMember": spec.workers}
    if gang.scheduler is GangScheduler.VOLCANO:
        if gang.queue is not None:
            group_spec["queue"] = gang.queue
        if spec.template.priority_class_name is not None:
            group_spec["priorityClassName"] = spec.template.priority_class_name
    elif gang.schedule_timeout_seconds is not None:
        group_spec["scheduleTimeoutSeconds"] = gang.schedule_timeout_seconds
    return {
        "apiVersion": api.api_version,
        "kind": api.kind,
        "metadata": {
            "name": group_name(name, attempt),
            "namespace": meta["namespace"],
            "labels": {
                ownership.LABEL_MANAGED_BY: ownership.MANAGER,
                ownership.LABEL_JOB: name,
                ownership.LABEL_ATTEMPT: str(attempt),
            },
            "ownerReferences": [ownership.owner_reference(job)],
        },
        "spec": group_spec,
    }


def with_gang(
    pod: Mapping[str, Any], spec: TrainingJobSpec, job_name: str, attempt: int
) -> dict[str, Any]:
    """A copy of ``pod`` that the gang scheduler places as a member of the attempt's PodGroup.

    As it is when the job asks for no gang scheduling.
    """
    placed = copy.deepcopy(dict(pod))
    gang = spec.gang_scheduling
    if gang is None:
        return placed
    api = api_of(gang)
    meta = placed.setdefault("metadata", {})
    place = "annotations" if api.pod_key_place == "annotation" else "labels"
    meta[place] = {**meta.get(place, {}), api.pod_key: group_name(job_name, attempt)}
    placed.setdefault("spec", {})["schedulerName"] = gang.pod_scheduler_name
    return placed


def conflict(job: Mapping[str, Any], spec: TrainingJobSpec) -> str | None:
    """Why ``job``'s gang scheduling cannot work as asked (None when it can).

    The CRD refuses ``spec.queueName`` with ``volcano``; a queue given by the
    job's own Kueue label is only seen here: Kueue and Volcano would both
    queue the pods, each by its own quota.
    """
    gang = spec.gang_scheduling
    if gang is None or gang.scheduler is not GangScheduler.VOLCANO:
        return None
    queue = kueue.queue_name(job, spec)
    if queue is None:
        return None
    return (
        f"spec.gangScheduling.scheduler: volcano cannot be used with the Kueue queue {queue} "
        f"(label {kueue.QUEUE_LABEL}): Volcano's Queue and Kueue's would both hold the pods; "
        "remove the label and queue in Volcano (spec.gangScheduling.queue), or use "
        "scheduler-plugins with Kueue"
    )
