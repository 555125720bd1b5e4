"""Gang scheduling: an attempt's PodGroup, the words on its pods, and the CRD's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rekindle_operator.core.job_spec import GangScheduler
from rekindle_operator.resources import kueue, podgroups, pods, validation
from tests.operator_tests.resources.test_pods import CONFIG, UID, job, spec

VOLCANO_ANNOTATION = "scheduling.k8s.io/group-name"
PLUGINS_LABEL = "scheduling.x-k8s.io/pod-group"


def gang(**fields: Any) -> dict[str, Any]:
    return {"gangScheduling": fields}


@pytest.mark.parametrize(
    ("gang_fields", "workers", "api_version", "group_spec"),
    [
        ({"scheduler": "volcano"}, 4, "scheduling.volcano.sh/v1beta1", {"minMember": 4}),
        (
            {"scheduler": "volcano", "queue": "research"},
            2,
            "scheduling.volcano.sh/v1beta1",
            {"minMember": 2, "queue": "research"},
        ),
        ({"scheduler": "scheduler-plugins"}, 3, "scheduling.x-k8s.io/v1alpha1", {"minMember": 3}),
        (
            {"scheduler": "scheduler-plugins", "scheduleTimeoutSeconds": 120},
            8,
            "scheduling.x-k8s.io/v1alpha1",
            {"minMember": 8, "scheduleTimeoutSeconds": 120},
        ),
        ({"scheduler": "volcano"}, 1, "scheduling.volcano.sh/v1beta1", {"minMember": 1}),
    ],
)
def test_the_pod_group_of_an_attempt_asks_for_the_whole_gang(
    gang_fields: dict[str, Any], workers: int, api_version: str, group_spec: dict[str, Any]
) -> None:
    group = podgroups.build_pod_group(job(), spec(workers=workers, **gang(**gang_fields)), 3)
    assert group is not None
    assert group["apiVersion"] == api_version
    assert group["kind"] == "PodGroup"
    assert group["spec"] == group_spec
    meta = group["metadata"]
    assert (meta["name"], meta["namespace"]) == ("digits-3", "ml")
    assert meta["labels"]["rekindle.dev/job"] == "digits"
    assert meta["labels"]["rekindle.dev/attempt"] == "3"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("TrainingJob", "digits", UID)
    assert owner["controller"] is True


def test_volcano_gives_the_pod_groups_priority_from_the_template() -> None:
    s = spec(workers=2, template={"priorityClassName": "high"}, **gang(scheduler="volcano"))
    group = podgroups.build_pod_group(job(), s, 1)
    assert group is not None
    assert group["spec"]["priorityClassName"] == "high"
    plugins = spec(
        workers=2, template={"priorityClassName": "high"}, **gang(scheduler="scheduler-plugins")
    )
    other = podgroups.build_pod_group(job(), plugins, 1)
    assert other is not None
    assert "priorityClassName" not in other["spec"]


def test_no_gang_scheduling_no_pod_group_and_the_pod_as_it_was() -> None:
    assert podgroups.build_pod_group(job(), spec(workers=2), 1) is None
    pod = pods.build_pod(job(), spec(workers=2), 1, CONFIG)
    assert "schedulerName" not in pod["spec"]
    assert VOLCANO_ANNOTATION not in pod["metadata"].get("annotations", {})
    assert PLUGINS_LABEL not in pod["metadata"]["labels"]


@pytest.mark.parametrize(
    ("gang_fields", "scheduler_name", "place", "key"),
    [
        ({"scheduler": "volcano"}, "volcano", "annotations", VOLCANO_ANNOTATION),
        (
            {"scheduler": "volcano", "schedulerName": "volcano-gpu"},
            "volcano-gpu",
            "annotations",
            VOLCANO_ANNOTATION,
        ),
        (
            {"scheduler": "scheduler-plugins"},
            "scheduler-plugins-scheduler",
            "labels",
            PLUGINS_LABEL,
        ),
        (
            {"scheduler": "scheduler-plugins", "schedulerName": "coscheduler"},
            "coscheduler",
            "labels",
            PLUGINS_LABEL,
        ),
    ],
)
def test_every_worker_names_its_attempts_group_and_the_scheduler(
    gang_fields: dict[str, Any], scheduler_name: str, place: str, key: str
) -> None:
    s = spec(
        workers=3,
        template={"metadata": {"labels": {"team": "a"}, "annotations": {"note": "n"}}},
        **gang(**gang_fields),
    )
    for worker in range(3):
        pod = pods.build_pod(job(), s, 2, CONFIG, worker=worker)
        assert pod["spec"]["schedulerName"] == scheduler_name
        assert pod["metadata"][place][key] == "digits-2"
        assert pod["metadata"]["labels"]["team"] == "a", "the template's labels stay"
        assert pod["metadata"]["annotations"]["note"] == "n", "the template's annotations stay"
        assert pod["metadata"]["labels"]["rekindle.dev/worker"] == str(worker)


def test_the_group_name_follows_the_attempt() -> None:
    assert podgroups.group_name("digits", 1) == "digits-1"
    assert podgroups.group_name("digits", 12) == "digits-12"
    with pytest.raises(ValueError, match="attempt must be 1 or more"):
        podgroups.group_name("digits", 0)


def test_each_scheduler_has_its_pod_group_api() -> None:
    assert set(podgroups.APIS) == set(GangScheduler)
    assert podgroups.APIS[GangScheduler.VOLCANO].pod_key == VOLCANO_ANNOTATION
    assert podgroups.APIS[GangScheduler.SCHEDULER_PLUGINS].pod_key == PLUGINS_LABEL


def test_volcano_with_a_kueue_queue_from_the_jobs_label_is_a_conflict_naming_both() -> None:
    labelled = job()
    labelled["metadata"]["labels"] = {kueue.QUEUE_LABEL: "team-a"}
    problem = podgroups.conflict(labelled, spec(**gang(scheduler="volcano")))
    assert problem is not None
    assert problem.startswith("spec.gangScheduling.scheduler:")
    assert "team-a" in problem
    assert kueue.QUEUE_LABEL in problem
    assert podgroups.conflict(labelled, spec(**gang(scheduler="scheduler-plugins"))) is None
    assert podgroups.conflict(job(), spec(**gang(scheduler="volcano"))) is None
    assert podgroups.conflict(labelled, spec()) is None


def manifest(**spec_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "g"},
        "spec": {"image": "t:1", "entrypoint": "m:f", "training": {"epochs": 3}, **spec_fields},
    }


@pytest.mark.parametrize(
    "spec_fields",
    [
        gang(scheduler="volcano"),
        gang(scheduler="volcano", queue="research", schedulerName="volcano"),
        gang(scheduler="scheduler-plugins", scheduleTimeoutSeconds=60),
        {**gang(scheduler="scheduler-plugins"), "queueName": "team-a"},
        {**gang(scheduler="volcano"), "template": {"schedulerName": "volcano"}},
        {
            **gang(scheduler="scheduler-plugins", schedulerName="co"),
            "template": {"schedulerName": "co"},
        },
    ],
)
def test_the_crd_accepts_gang_scheduling_that_can_work(spec_fields: dict[str, Any]) -> None:
    assert validation.validate(manifest(**spec_fields)) == []


@pytest.mark.parametrize(
    ("spec_fields", "field", "words"),
    [
        (gang(), "spec.gangScheduling.scheduler", "required"),
        (gang(scheduler="yunikorn"), "spec.gangScheduling.scheduler", "volcano"),
        (
            {**gang(scheduler="volcano"), "queueName": "team-a"},
            "spec.gangScheduling.scheduler",
            "spec.queueName",
        ),
        (
            {**gang(scheduler="volcano"), "template": {"schedulerName": "default-scheduler"}},
            "spec.template.schedulerName",
            "spec.gangScheduling",
        ),
        (
            {
                **gang(scheduler="scheduler-plugins"),
                "template": {"schedulerName": "volcano"},
            },
            "spec.template.schedulerName",
            "spec.gangScheduling.schedulerName",
        ),
        (
            gang(scheduler="scheduler-plugins", queue="research"),
            "spec.gangScheduling.queue",
            "volcano",
        ),
        (
            gang(scheduler="volcano", scheduleTimeoutSeconds=60),
            "spec.gangScheduling.scheduleTimeoutSeconds",
            "scheduler-plugins",
        ),
        (
            {
                **gang(scheduler="volcano"),
                "template": {"metadata": {"annotations": {VOLCANO_ANNOTATION: "x"}}},
            },
            "spec.template.metadata.annotations",
            "spec.gangScheduling",
        ),
        (
            {"template": {"metadata": {"labels": {PLUGINS_LABEL: "x"}}}},
            "spec.template.metadata.labels",
            "spec.gangScheduling",
        ),
    ],
)
def test_the_crd_refuses_a_conflict_naming_the_field(
    spec_fields: dict[str, Any], field: str, words: str
) -> None:
    problems = validation.validate(manifest(**spec_fields))
    assert [p.field for p in problems] == [field], problems
    assert words in problems[0].message


def test_the_snippet_in_docs_gang_scheduling_md_is_valid() -> None:
    """docs/gang-scheduling.md: its spec fragment passes the CRD and parses as it says."""
    text = (Path(__file__).parents[3] / "docs" / "gang-scheduling.md").read_text()
    block = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    doc = manifest(**block["spec"])
    assert validation.validate(doc) == []
    parsed = validation.check(doc).spec
    assert parsed.gang_scheduling is not None
    assert parsed.gang_scheduling.scheduler is GangScheduler.VOLCANO
    assert parsed.gang_scheduling.pod_scheduler_name == "volcano"
