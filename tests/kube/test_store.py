"""The store: what the API server and its controllers do to objects (no HTTP here)."""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from tests.kube.emulator import ClusterEmulator
from tests.kube.resources import TRAINING_JOBS
from tests.kube.store import (
    NAMESPACES,
    PODS,
    PVCS,
    PVS,
    ApiError,
    DeleteOptions,
    Store,
)

CONFIGMAPS = kmock.resource("", "v1", "configmaps")
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


@pytest.fixture
def store() -> Store:
    return ClusterEmulator().store


def tj(name: str = "job", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": spec or {"epochs": 3},
    }


def pod(name: str = "p", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "main", "image": "img", "command": ["true"]}]},
    }


def owned_by(owner: dict[str, Any], *, block: bool = True) -> list[dict[str, Any]]:
    meta = owner["metadata"]
    return [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": block,
        }
    ]


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def test_create_sets_server_metadata(store: Store) -> None:
    first = store.create(TRAINING_JOBS, "default", tj("a"))
    second = store.create(TRAINING_JOBS, "default", tj("b"))
    meta = first["metadata"]
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert meta["uid"]
    assert meta["uid"] != second["metadata"]["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert rv(second) > rv(first)
    listed = store.list_body(TRAINING_JOBS, "default")
    assert int(listed["metadata"]["resourceVersion"]) == rv(second)
    assert listed["kind"] == "TrainingJobList"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a", "b"]


def test_create_existing_name_is_409_and_recreate_after_delete_gets_new_uid(store: Store) -> None:
    old = store.create(TRAINING_JOBS, "default", tj())
    with pytest.raises(ApiError) as info:
        store.create(TRAINING_JOBS, "default", tj())
    assert (info.value.status, info.value.reason) == (409, "AlreadyExists")
    store.delete(TRAINING_JOBS, "default", "job")
    new = store.create(TRAINING_JOBS, "default", tj())
    assert new["metadata"]["uid"] != old["metadata"]["uid"]


def test_generate_name(store: Store) -> None:
    made = store.create(CONFIGMAPS, "default", {"metadata": {"generateName": "cm-"}})
    assert made["metadata"]["name"].startswith("cm-")
    assert len(made["metadata"]["name"]) == len("cm-") + 5


@pytest.mark.parametrize(
    ("body", "namespace", "status", "match"),
    [
        ({"metadata": {"name": "Bad_Name"}}, "default", 422, "RFC 1123"),
        ({"metadata": {"name": "x", "labels": {"k": "v" * 64}}}, "default", 422, "63"),
        ({"metadata": {}}, "default", 422, "name or generateName is required"),
        ({"metadata": {"name": "x"}}, "nowhere", 404, 'namespaces "nowhere" not found'),
        ({"metadata": {"name": "x"}}, None, 400, "namespaced"),
        ({"metadata": {"name": "x", "namespace": "kube-system"}}, "default", 400, "does not match"),
    ],
)
def test_invalid_creates_are_rejected(
    store: Store, body: dict[str, Any], namespace: str | None, status: int, match: str
) -> None:
    with pytest.raises(ApiError, match=match) as info:
        store.create(CONFIGMAPS, namespace, body)
    assert info.value.status == status


def test_generation_counts_spec_changes_only(store: Store) -> None:
    created = store.create(TRAINING_JOBS, "default", tj())
    labelled = store.patch(
        TRAINING_JOBS, "default", "job", MERGE, {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1
    status = store.patch(
        TRAINING_JOBS, "default", "job", MERGE, {"status": {"phase": "Running"}}, "status"
    )
    assert status["metadata"]["generation"] == 1
    changed = store.patch(TRAINING_JOBS, "default", "job", MERGE, {"spec": {"epochs": 5}})
    assert changed["metadata"]["generation"] == 2
    assert rv(created) < rv(labelled) < rv(status) < rv(changed)
    same = store.patch(TRAINING_JOBS, "default", "job", MERGE, {"spec": {"epochs": 5}})
    assert rv(same) == rv(changed), "a no-op patch must not bump resourceVersion"


def test_status_subresource_is_written_apart(store: Store) -> None:
    created = store.create(TRAINING_JOBS, "default", {**tj(), "status": {"phase": "Forged"}})
    assert "status" not in created, "the status of a new object is the server's to set"
    main = store.patch(
        TRAINING_JOBS, "default", "job", MERGE, {"spec": {"epochs": 4}, "status": {"phase": "X"}}
    )
    assert main["spec"]["epochs"] == 4
    assert "status" not in main
    status = store.patch(
        TRAINING_JOBS,
        "default",
        "job",
        MERGE,
        {"spec": {"epochs": 9}, "status": {"phase": "Y"}},
        "status",
    )
    assert status["spec"]["epochs"] == 4
    assert status["status"] == {"phase": "Y"}
    body = {**tj(epochs=7), "status": {"phase": "Z"}}
    body["metadata"] = {
        **body["metadata"],
        "resourceVersion": status["metadata"]["resourceVersion"],
    }
    replaced = store.replace(TRAINING_JOBS, "default", "job", body)
    assert replaced["spec"] == {"epochs": 7}
    assert replaced["status"] == {"phase": "Y"}


def test_stale_resource_version_conflicts(store: Store) -> None:
    created = store.create(TRAINING_JOBS, "default", tj())
    stale = created["metadata"]["resourceVersion"]
    store.patch(TRAINING_JOBS, "default", "job", MERGE, {"spec": {"epochs": 4}})
    body = {"metadata": {"resourceVersion": stale}, "spec": {"epochs": 5}}
    with pytest.raises(ApiError) as info:
        store.patch(TRAINING_JOBS, "default", "job", MERGE, body)
    assert info.value.status == 409
    with pytest.raises(ApiError) as info:
        store.replace(
            TRAINING_JOBS,
            "default",
            "job",
            {**tj(epochs=6), "metadata": {"name": "job", "resourceVersion": stale}},
        )
    assert info.value.status == 409
    test_op = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": stale},
        {"op": "replace", "path": "/spec/epochs", "value": 9},
    ]
    with pytest.raises(ApiError) as info:
        store.patch(TRAINING_JOBS, "default", "job", JSON_PATCH, test_op)
    assert info.value.status == 422, "kopf expects 422 when its JSON-patch test op fails"


def test_strategic_merge_is_refused_for_custom_resources_only(store: Store) -> None:
    store.create(TRAINING_JOBS, "default", tj())
    with pytest.raises(ApiError) as info:
        store.patch(TRAINING_JOBS, "default", "job", STRATEGIC, {"spec": {"epochs": 2}})
    assert info.value.status == 415
    store.create(PODS, "default", pod())
    patched = store.patch(
        PODS,
        "default",
        "p",
        STRATEGIC,
        {"spec": {"containers": [{"name": "main", "image": "img:2"}]}},
    )
    assert patched["spec"]["containers"][0] == {
        **patched["spec"]["containers"][0],
        "image": "img:2",
        "command": ["true"],
    }


def test_finalizers_hold_deletion(store: Store) -> None:
    store.create(
        TRAINING_JOBS, "default", {**tj(), "metadata": {"name": "job", "finalizers": ["x/y"]}}
    )
    deleting = store.delete(TRAINING_JOBS, "default", "job")
    assert deleting["metadata"]["deletionTimestamp"]
    assert store.find(TRAINING_JOBS, "default", "job")["metadata"]["finalizers"] == ["x/y"]
    with pytest.raises(ApiError, match="no new finalizers"):
        store.patch(
            TRAINING_JOBS, "default", "job", MERGE, {"metadata": {"finalizers": ["x/y", "z"]}}
        )
    ops = [{"op": "remove", "path": "/metadata/finalizers/0"}]
    store.patch(TRAINING_JOBS, "default", "job", JSON_PATCH, ops)
    with pytest.raises(ApiError) as info:
        store.find(TRAINING_JOBS, "default", "job")
    assert info.value.status == 404
    assert [e.type for e in store.log if e.resource == TRAINING_JOBS] == [
        "ADDED",
        "MODIFIED",
        "MODIFIED",
        "DELETED",
    ]


def test_garbage_collection_background(store: Store) -> None:
    owner = store.create(TRAINING_JOBS, "default", tj())
    other = store.create(CONFIGMAPS, "default", {"metadata": {"name": "other"}})
    store.create(PODS, "default", pod("dep", ownerReferences=owned_by(owner)))
    store.create(
        CONFIGMAPS,
        "default",
        {
            "metadata": {
                "name": "two-owners",
                "ownerReferences": [*owned_by(owner), *owned_by(other)],
            }
        },
    )
    store.create(PVCS, "default", {"metadata": {"name": "users-own-claim"}, "spec": {}})
    store.delete(TRAINING_JOBS, "default", "job")
    # The owner is gone at once; its dependents wait for the garbage collector's pass.
    assert [p["metadata"]["name"] for p in store.select(PODS, "default")] == ["dep"]
    assert store.collect_garbage() == 2
    assert [p["metadata"]["name"] for p in store.select(PODS, "default")] == []
    survivor = store.find(CONFIGMAPS, "default", "two-owners")
    assert [r["name"] for r in survivor["metadata"]["ownerReferences"]] == ["other"]
    assert store.find(PVCS, "default", "users-own-claim")


def test_garbage_collection_orphan(store: Store) -> None:
    owner = store.create(TRAINING_JOBS, "default", tj())
    store.create(
        CONFIGMAPS, "default", {"metadata": {"name": "dep", "ownerReferences": owned_by(owner)}}
    )
    store.delete(TRAINING_JOBS, "default", "job", DeleteOptions(propagation_policy="Orphan"))
    orphaning = store.find(TRAINING_JOBS, "default", "job")
    assert orphaning["metadata"]["finalizers"] == ["orphan"]
    store.collect_garbage()
    assert "ownerReferences" not in store.find(CONFIGMAPS, "default", "dep")["metadata"]
    with pytest.raises(ApiError):
        store.find(TRAINING_JOBS, "default", "job")


def test_garbage_collection_foreground(store: Store) -> None:
    owner = store.create(TRAINING_JOBS, "default", tj())
    store.create(
        CONFIGMAPS,
        "default",
        {"metadata": {"name": "dep", "finalizers": ["hold"], "ownerReferences": owned_by(owner)}},
    )
    store.delete(TRAINING_JOBS, "default", "job", DeleteOptions(propagation_policy="Foreground"))
    waiting = store.find(TRAINING_JOBS, "default", "job")
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    assert "deletionTimestamp" not in store.find(CONFIGMAPS, "default", "dep")["metadata"]
    store.collect_garbage()
    assert store.find(CONFIGMAPS, "default", "dep")["metadata"]["deletionTimestamp"]
    store.collect_garbage()
    assert store.find(TRAINING_JOBS, "default", "job"), "blocked by a dependent still there"
    store.patch(CONFIGMAPS, "default", "dep", MERGE, {"metadata": {"finalizers": None}})
    store.collect_garbage()
    with pytest.raises(ApiError):
        store.find(TRAINING_JOBS, "default", "job")


def test_dependent_of_a_missing_owner_is_collected(store: Store) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "g", "uid": "no-such-uid"},
    }
    store.create(
        CONFIGMAPS, "default", {"metadata": {"name": "dep", "ownerReferences": owned_by(ghost)}}
    )
    store.collect_garbage()
    assert store.select(CONFIGMAPS, "default") == []


def test_pod_on_a_node_is_deleted_gracefully(store: Store) -> None:
    store.create(PODS, "default", pod("unbound"))
    store.delete(PODS, "default", "unbound")
    assert store.select(PODS, "default") == [], "an unscheduled pod goes at once"
    store.create(PODS, "default", pod("bound"))
    store.bind_pod("default", "bound", {"target": {"name": "node-1"}})
    deleting = store.delete(PODS, "default", "bound", DeleteOptions(grace_period_seconds=5))
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 5
    assert store.find(PODS, "default", "bound"), "the kubelet removes it after the grace period"
    store.delete(PODS, "default", "bound", DeleteOptions(grace_period_seconds=0))
    assert store.select(PODS, "default") == []


def test_binding_twice_conflicts(store: Store) -> None:
    store.create(PODS, "default", pod())
    store.bind_pod("default", "p", {"target": {"name": "n1"}})
    with pytest.raises(ApiError) as info:
        store.bind_pod("default", "p", {"target": {"name": "n2"}})
    assert info.value.status == 409


def test_eviction_marks_disruption_then_deletes(store: Store) -> None:
    store.create(PODS, "default", pod())
    store.bind_pod("default", "p", {"target": {"name": "n1"}})
    store.evict_pod("default", "p", {})
    evicted = store.find(PODS, "default", "p")
    assert evicted["metadata"]["deletionTimestamp"]
    conditions = {c["type"]: c for c in evicted["status"]["conditions"]}
    assert conditions["DisruptionTarget"]["reason"] == "EvictionByEvictionAPI"


def test_claims_bind_to_a_new_volume(store: Store) -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    assert store.create(PVCS, "default", claim)["status"]["phase"] == "Pending"
    created = store.find(PVCS, "default", "data")
    assert created["status"]["phase"] == "Bound"
    volume = store.find(PVS, None, created["spec"]["volumeName"])
    assert volume["spec"]["claimRef"]["uid"] == created["metadata"]["uid"]
    assert created["status"]["capacity"] == {"storage": "2Gi"}
    phases = [e.object.get("status", {}).get("phase") for e in store.log if e.resource == PVCS]
    assert phases == ["Pending", "Bound"], "a watcher sees the claim created Pending, then Bound"


def test_deleting_a_namespace_deletes_its_objects(store: Store) -> None:
    store.create(NAMESPACES, None, {"metadata": {"name": "gone"}})
    store.create(CONFIGMAPS, "gone", {"metadata": {"name": "c"}})
    store.create(CONFIGMAPS, "default", {"metadata": {"name": "c"}})
    store.delete(NAMESPACES, None, "gone")
    assert [o["metadata"]["namespace"] for o in store.select(CONFIGMAPS)] == ["default"]


def test_events_since_a_version_are_only_the_newer_ones(store: Store) -> None:
    first = store.create(TRAINING_JOBS, "default", tj("a"))
    store.create(TRAINING_JOBS, "default", tj("b"))
    store.patch(TRAINING_JOBS, "default", "a", MERGE, {"spec": {"epochs": 9}})
    newer = store.events_since(rv(first), TRAINING_JOBS)
    assert [(e.type, e.object["metadata"]["name"]) for e in newer] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
    ]
    assert newer[1].old is not None
    assert newer[1].old["spec"] == {"epochs": 3}
