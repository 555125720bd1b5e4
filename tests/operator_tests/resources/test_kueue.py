"""Kueue's plain-Pod integration: queue and pod-group labels on every pod of an attempt."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from rekindle_operator.resources import crd, kueue, pods, validation
from tests.operator_tests.resources.test_pods import CONFIG, UID, job, spec

STARTED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def queued_job(label: str | None = None) -> dict[str, Any]:
    body = job()
    if label is not None:
        body["metadata"]["labels"] = {kueue.QUEUE_LABEL: label}
    return body


def test_the_queue_is_the_specs_else_the_jobs_label_else_none() -> None:
    assert kueue.queue_name(queued_job(), spec(queueName="team-a")) == "team-a"
    assert kueue.queue_name(queued_job("team-b"), spec()) == "team-b"
    assert kueue.queue_name(queued_job("team-b"), spec(queueName="team-a")) == "team-a"
    assert kueue.queue_name(queued_job(), spec()) is None


def test_a_job_without_a_queue_gets_no_group_and_its_pod_no_kueue_words() -> None:
    assert kueue.pod_group(queued_job(), spec(), STARTED) is None
    pod = pods.build_pod(job(), spec(), 1, CONFIG)
    assert kueue.with_pod_group(pod, None) == pod


def test_every_pod_of_a_queued_attempt_carries_the_queue_and_its_group() -> None:
    group = kueue.pod_group(queued_job(), spec(queueName="team-a"), STARTED)
    assert group is not None
    built = pods.build_pod(job(), spec(queueName="team-a"), 2, CONFIG)
    pod = kueue.with_pod_group(built, group)
    labels, annotations = pod["metadata"]["labels"], pod["metadata"].get("annotations", {})
    assert labels[kueue.QUEUE_LABEL] == "team-a"
    assert labels[kueue.GROUP_LABEL] == group.name
    assert annotations[kueue.GROUP_COUNT_ANNOTATION] == "1"
    assert labels["rekindle.dev/attempt"] == "2", "Rekindle's own labels stay"
    assert "kueue.x-k8s.io/queue-name" not in built["metadata"]["labels"], "a copy"
    kubernetes_validate.validate(pod, "1.33.0", strict=True)


def test_the_group_counts_the_whole_gang() -> None:
    group = kueue.pod_group(queued_job("q"), spec(), STARTED, size=4)
    assert group is not None
    assert group.total_count == 4
    pod = kueue.with_pod_group(pods.build_pod(job(), spec(), 1, CONFIG), group)
    assert pod["metadata"]["annotations"][kueue.GROUP_COUNT_ANNOTATION] == "4"


def test_the_group_keeps_its_name_for_every_attempt_of_a_run_and_changes_with_the_run() -> None:
    first = kueue.group_name("digits", UID, STARTED)
    assert kueue.group_name("digits", UID, STARTED) == first
    assert kueue.group_name("digits", UID, STARTED + timedelta(hours=1)) != first
    assert kueue.group_name("digits", "another-uid", STARTED) != first
    assert first.startswith("digits-")


def test_the_group_name_is_a_label_value_for_the_longest_job_name() -> None:
    name = kueue.group_name("j" * 51, UID, STARTED)
    assert len(name) <= 63
    assert LABEL_VALUE.match(name)


def test_only_a_pod_in_a_group_is_marked_to_finish_it() -> None:
    group = kueue.pod_group(queued_job("q"), spec(), STARTED)
    grouped = kueue.with_pod_group(pods.build_pod(job(), spec(), 1, CONFIG), group)
    assert kueue.finishing_annotations(grouped) == {kueue.RETRIABLE_ANNOTATION: "false"}
    assert kueue.finishing_annotations(pods.build_pod(job(), spec(), 1, CONFIG)) == {}


def test_the_queue_set_up_in_docs_kueue_md_fits_together() -> None:
    """docs/kueue.md: its TrainingJob is valid and names the LocalQueue it shows."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "kueue.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    documents = [d for block in blocks for d in yaml.safe_load_all(textwrap.dedent(block)) if d]
    by_kind = {d["kind"]: d for d in documents}
    assert set(by_kind) == {
        "Configuration",
        "ResourceFlavor",
        "ClusterQueue",
        "LocalQueue",
        "TrainingJob",
    }
    assert "pod" in by_kind["Configuration"]["integrations"]["frameworks"]
    manifest = validation.check(by_kind["TrainingJob"], "docs/kueue.md")
    local = by_kind["LocalQueue"]
    assert manifest.spec.queue_name == local["metadata"]["name"]
    assert manifest.namespace == local["metadata"]["namespace"]
    assert local["spec"]["clusterQueue"] == by_kind["ClusterQueue"]["metadata"]["name"]


def test_the_crd_reserves_every_kueue_key_rekindle_sets() -> None:
    spec = crd.version_schema(crd.load_crd())["properties"]["spec"]["properties"]
    rules = " ".join(
        r["rule"] for r in spec["template"]["properties"]["metadata"]["x-kubernetes-validations"]
    )
    for key in kueue.RESERVED_KEYS:
        assert f"'{key}' in self." in rules, key
