"""The emulated API over HTTP, through the official ``kubernetes`` client and raw requests."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes.client
import kubernetes.config
import kubernetes.watch
import pytest

from tests.kube.cluster import Cluster
from tests.kube.store import ApiError

#: The client's generated types want model objects; these tests send the plain dicts users write.
k8s: Any = kubernetes
ApiException = kubernetes.client.ApiException
GROUP, VERSION, PLURAL = "rekindle.dev", "v1alpha1", "trainingjobs"


@pytest.fixture
def api(kube_api: Cluster) -> Iterator[Any]:
    api_client = k8s.config.new_client_from_config(config_file=str(kube_api.kubeconfig))
    yield api_client
    api_client.close()


def get_json(cluster: Cluster, path: str) -> Any:
    with urllib.request.urlopen(cluster.url + path, timeout=10) as response:
        return json.loads(response.read())


def tj(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"image": "trainer:dev", "entrypoint": "m:f", "training": {"epochs": 1}},
    }


def test_discovery_lists_trainingjobs_as_kopf_reads_it(kube_api: Cluster) -> None:
    groups = get_json(kube_api, "/apis")["groups"]
    assert {"rekindle.dev", "kopf.dev", "events.k8s.io", "coordination.k8s.io"} <= {
        g["name"] for g in groups
    }
    listed = get_json(kube_api, f"/apis/{GROUP}/{VERSION}")["resources"]
    by_name = {r["name"]: r for r in listed}
    assert set(by_name) == {"trainingjobs", "trainingjobs/status"}
    main = by_name["trainingjobs"]
    assert main["kind"] == "TrainingJob"
    assert main["shortNames"] == ["tj"]
    assert main["namespaced"] is True
    assert {"list", "watch", "patch", "create", "delete"} <= set(main["verbs"])
    core = {r["name"] for r in get_json(kube_api, "/api/v1")["resources"]}
    assert {"pods", "pods/status", "events", "namespaces", "persistentvolumeclaims"} <= core


def test_namespace_paths(kube_api: Cluster, api: Any) -> None:
    core = k8s.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "team-a"}})
    names = {n.metadata.name for n in core.list_namespace().items}
    assert names == {"default", "kube-system", "team-a"}
    assert core.read_namespace("team-a").status.phase == "Active"
    assert get_json(kube_api, "/api/v1/namespaces/team-a/status")["metadata"]["name"] == "team-a"


def test_conflicting_create_is_409(api: Any) -> None:
    custom = k8s.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, tj("a"))
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, tj("a"))
    assert info.value.status == 409
    assert json.loads(info.value.body or "{}")["reason"] == "AlreadyExists"


def test_watch_from_a_version_replays_only_newer_changes(kube_api: Cluster, api: Any) -> None:
    custom = k8s.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, tj("before"))
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    version = listed["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, tj("after"))
    seen = [
        (event["type"], event["object"]["metadata"]["name"])
        for event in k8s.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            resource_version=version,
            timeout_seconds=1,
        )
    ]
    assert seen == [("ADDED", "after")]
    everything = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in k8s.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            timeout_seconds=1,
        )
    ]
    assert everything == [("ADDED", "before"), ("ADDED", "after")]


def test_watch_with_label_selector_sees_objects_enter_and_leave(
    kube_api: Cluster, api: Any
) -> None:
    custom = k8s.client.CustomObjectsApi(api)
    version = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["metadata"][
        "resourceVersion"
    ]

    def change() -> None:
        time.sleep(0.3)
        kube_api.create(tj("other", {"team": "b"}), "default")
        kube_api.create(tj("mine", {"team": "a"}), "default")
        kube_api.patch("tj", "default", "mine", {"spec": {"training": {"epochs": 2}}})
        kube_api.patch("tj", "default", "mine", {"metadata": {"labels": {"team": "b"}}})
        kube_api.patch("tj", "default", "other", {"metadata": {"labels": {"team": "a"}}})

    changer = threading.Thread(target=change)
    changer.start()
    seen = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in k8s.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            label_selector="team=a",
            resource_version=version,
            timeout_seconds=2,
        )
    ]
    changer.join()
    assert seen == [
        ("ADDED", "mine"),
        ("MODIFIED", "mine"),
        ("DELETED", "mine"),
        ("ADDED", "other"),
    ]


def test_list_by_label_and_field_selectors(kube_api: Cluster, api: Any) -> None:
    kube_api.create(tj("a", {"team": "x"}), "default")
    kube_api.create(tj("b", {"team": "y"}), "default")
    custom = k8s.client.CustomObjectsApi(api)

    def names(**selectors: str) -> list[str]:
        found = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, **selectors)
        return [o["metadata"]["name"] for o in found["items"]]

    assert names(label_selector="team in (x,z)") == ["a"]
    assert names(label_selector="team!=x") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    with pytest.raises(ApiException) as info:
        names(label_selector="team in x")
    assert info.value.status == 400


def test_watch_ends_after_timeout_seconds(kube_api: Cluster) -> None:
    started = time.monotonic()
    path = "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1&timeoutSeconds=1"
    with urllib.request.urlopen(kube_api.url + path, timeout=10) as response:
        assert response.read() == b""
    assert 0.9 < time.monotonic() - started < 5


def test_patch_formats_through_the_client(kube_api: Cluster, api: Any) -> None:
    core = k8s.client.CoreV1Api(api)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main", "image": "i:1"}]}}
    core.create_namespaced_pod("default", pod)
    patched = core.patch_namespaced_pod(
        "p", "default", {"spec": {"containers": [{"name": "main", "image": "i:2"}]}}
    )  # strategic merge: the container is merged by name
    assert [(c.name, c.image) for c in patched.spec.containers] == [("main", "i:2")]
    status = core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})
    assert status.status.phase == "Running"

    custom = k8s.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, tj("j"))
    merged = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "j", {"spec": {"training": {"epochs": 2}}}
    )
    assert merged["metadata"]["generation"] == 2
    status_only = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "j",
        {"status": {"phase": "Running"}, "spec": {"training": {"epochs": 9}}},
        _content_type="application/merge-patch+json",
    )
    assert (status_only["spec"]["training"]["epochs"], status_only["status"]["phase"]) == (
        2,
        "Running",
    )
    assert status_only["metadata"]["generation"] == 2

    strategic = urllib.request.Request(
        f"{kube_api.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/j",
        data=b'{"spec": {"training": {"epochs": 3}}}',
        method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:  # as a real API server does
        urllib.request.urlopen(strategic, timeout=10)
    assert info.value.code == 415


def test_events_are_accepted_and_listable(kube_api: Cluster, api: Any) -> None:
    job = kube_api.create(tj("j"), "default")
    core = k8s.client.CoreV1Api(api)
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"generateName": "j-"},
            "involvedObject": {
                "kind": "TrainingJob",
                "name": "j",
                "namespace": "default",
                "uid": job["metadata"]["uid"],
                "apiVersion": f"{GROUP}/{VERSION}",
            },
            "reason": "Started",
            "message": "attempt 1",
            "type": "Normal",
        },
    )
    found = core.list_namespaced_event("default", field_selector="involvedObject.name=j").items
    assert [e.reason for e in found] == ["Started"]
    assert [e["reason"] for e in kube_api.events_for(job)] == ["Started"]
    # One store, two groups (as in Kubernetes): events.k8s.io/v1 lists the same event, renamed.
    events_v1 = get_json(kube_api, "/apis/events.k8s.io/v1/namespaces/default/events")
    [same] = events_v1["items"]
    assert same["apiVersion"] == "events.k8s.io/v1"
    assert same["metadata"]["uid"] == found[0].metadata.uid
    assert (same["note"], same["regarding"]["uid"]) == ("attempt 1", job["metadata"]["uid"])
    assert "message" not in same
    assert "involvedObject" not in same


def test_created_crd_declares_its_resource(kube_api: Cluster, api: Any) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "shortNames": ["wd"],
            },
            "versions": [
                {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}
            ],
        },
    }
    k8s.client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    listed = get_json(kube_api, "/apis/example.com/v1")["resources"]
    assert {r["name"] for r in listed} == {"widgets", "widgets/status"}


def test_kmock_reactions_still_take_precedence(kube_api: Cluster) -> None:
    kube_api.emulator["get", "/api/v1/namespaces/default/pods/flaky"] << 503
    with pytest.raises(urllib.error.HTTPError) as info:
        get_json(kube_api, "/api/v1/namespaces/default/pods/flaky")
    assert info.value.code == 503


def test_create_from_file(kube_api: Cluster, tmp_path: Path) -> None:
    manifest = tmp_path / "things.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n"
    )
    created = kube_api.create_from_file(manifest, "default")
    assert [c["metadata"]["name"] for c in created] == ["one", "two"]
    assert len(kube_api.list("configmaps", "default")) == 2


def test_chart_crds_are_installed_and_agree_with_the_builtin_declaration(
    kube_api: Cluster,
) -> None:
    from tests.kube import resources

    crds = {c["metadata"]["name"] for c in kube_api.list("customresourcedefinitions")}
    assert "trainingjobs.rekindle.dev" in crds
    declared = kube_api.emulator.resources[resources.TRAINING_JOBS]
    builtin = kmock.ResourcesArray()
    resources.declare_defaults(builtin)
    fallback = builtin[resources.TRAINING_JOBS]
    assert (declared.kind, declared.singular, declared.namespaced) == (
        fallback.kind,
        fallback.singular,
        fallback.namespaced,
    )
    assert declared.shortnames == fallback.shortnames
    assert declared.subresources == fallback.subresources
    assert declared.categories == fallback.categories


def test_get_table_prints_the_crd_columns(kube_api: Cluster) -> None:
    kube_api.create(tj("b"), "default")
    kube_api.create(tj("a"), "default")
    kube_api.patch("tj", "default", "a", {"status": {"phase": "Running"}}, subresource="status")
    table = kube_api.get_table("tj", "default")
    assert [row["Name"] for row in table] == ["a", "b"]
    assert (table[0]["Phase"], table[1]["Phase"]) == ("Running", None)
    assert table[0]["Age"].endswith("s")
    assert "Reason" not in table[0]
    assert "Reason" in kube_api.get_table("tj", "default", wide=True)[0]


def test_custom_resources_are_pruned_defaulted_and_validated(kube_api: Cluster) -> None:
    job = tj("schema")
    job["spec"]["unknownField"] = "dropped"
    created = kube_api.create(job, "default")
    assert "unknownField" not in created["spec"], "unknown fields are pruned, as a real API does"
    assert created["spec"]["training"]["batchSize"] == 32, "the CRD's defaults are applied"
    status = kube_api.patch(
        "tj",
        "default",
        "schema",
        {"status": {"phase": "Running", "notInSchema": 1}},
        subresource="status",
    )
    assert status["status"] == {"phase": "Running"}

    missing = tj("bad")
    del missing["spec"]["image"]
    with pytest.raises(ApiError) as info:
        kube_api.create(missing, "default")
    assert info.value.status == 422
    assert "'image' is a required property" in info.value.message

    both = tj("both")
    both["spec"]["command"] = ["python", "train.py"]
    with pytest.raises(ApiError, match=r"exactly one of spec\.entrypoint") as info:
        kube_api.create(both, "default")
    assert info.value.status == 422, "x-kubernetes-validations (CEL) rules are enforced"

    with pytest.raises(ApiError) as info:
        kube_api.patch("tj", "default", "schema", {"spec": {"training": {"epochs": "many"}}})
    assert info.value.status == 422


def test_put_of_a_custom_resource_needs_a_resource_version(kube_api: Cluster, api: Any) -> None:
    custom = k8s.client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, tj("a"))
    unconditional = tj("a")
    unconditional["spec"]["training"]["epochs"] = 2
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "a", unconditional
        )
    assert caught.value.status == 422
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in str(
        caught.value.body
    )
    unconditional["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    replaced = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "a", unconditional
    )
    assert replaced["spec"]["training"]["epochs"] == 2
    # A built-in kind may be replaced unconditionally (the server takes its current version).
    core = k8s.client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"k": "1"}})
    core.replace_namespaced_config_map(
        "c", "default", {"metadata": {"name": "c"}, "data": {"k": "2"}}
    )
    assert core.read_namespaced_config_map("c", "default").data == {"k": "2"}
