"""OpenAPI documents, field validation and server-side apply, as pure functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from tests.kube import apply, core_schemas, event_versions, fields, openapi, resources
from tests.kube.store import ApiError

CRD = yaml.safe_load(
    (Path(__file__).parents[2] / "charts/rekindle/crds/trainingjobs.rekindle.dev.yaml").read_text()
)
TJ = "dev.rekindle.v1alpha1.TrainingJob"


@pytest.fixture(scope="module")
def documents() -> dict[tuple[str, str], dict[str, Any]]:
    declared = kmock.ResourcesArray()
    resources.declare_defaults(declared)
    return openapi.documents(declared, [CRD])


def test_a_crd_version_is_published_as_the_api_server_names_it(
    documents: dict[tuple[str, str], dict[str, Any]],
) -> None:
    document = documents[("rekindle.dev", "v1alpha1")]
    schemas = document["components"]["schemas"]
    assert {TJ, f"{TJ}List", core_schemas.OBJECT_META} <= set(schemas)
    job = schemas[TJ]
    assert job["x-kubernetes-group-version-kind"] == [
        {"group": "rekindle.dev", "kind": "TrainingJob", "version": "v1alpha1"}
    ]
    assert job["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/" + core_schemas.OBJECT_META}
    ]
    assert "earlyStopping" in job["properties"]["spec"]["properties"]
    patch = document["paths"][
        "/apis/rekindle.dev/v1alpha1/namespaces/{namespace}/trainingjobs/{name}"
    ]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    # No strategic merge for a custom resource: kubectl then sends it a merge patch.
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]


def test_the_core_document_holds_pods_and_what_they_refer_to(
    documents: dict[tuple[str, str], dict[str, Any]],
) -> None:
    core = documents[("", "v1")]
    schemas = core["components"]["schemas"]
    assert {"io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.Container"} <= set(schemas)
    assert schemas["io.k8s.api.core.v1.Container"]["properties"]["name"]["type"] == "string"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    patch = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    index = openapi.v3_index(documents)["paths"]
    assert index["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")


def test_v2_is_swagger_with_v2_references_only(
    documents: dict[tuple[str, str], dict[str, Any]],
) -> None:
    v2 = openapi.v2_document(documents)
    assert v2["swagger"] == "2.0"
    job = v2["definitions"][TJ]
    assert job["properties"]["metadata"] == {"$ref": "#/definitions/" + core_schemas.OBJECT_META}
    assert "#/components/" not in yaml.safe_dump(v2)
    # As the API server publishes CRDs in v2: no CEL rules, no nullable.
    assert "x-kubernetes-validations" not in yaml.safe_dump(job)


def test_unknown_fields_are_named_by_path() -> None:
    definitions = core_schemas.definitions()
    pod_schema = definitions["io.k8s.api.core.v1.Pod"]
    pod = {
        "metadata": {"name": "p", "labels": {"any": "label"}, "nmae": "x"},
        "spec": {"containers": [{"name": "c", "imagePullPolicyy": "Never"}], "$patch": "x"},
    }
    found = list(fields.unknown_fields(pod, pod_schema, definitions))
    assert found == ["metadata.nmae", "spec.containers[0].imagePullPolicyy"]
    assert fields.check("Warn", "Pod", "v1", found) == [
        'unknown field "metadata.nmae"',
        'unknown field "spec.containers[0].imagePullPolicyy"',
    ]
    assert fields.check("Ignore", "Pod", "v1", found) == []
    with pytest.raises(ApiError, match=r'strict decoding error: unknown field "metadata\.nmae"'):
        fields.check("Strict", "Pod", "v1", found)
    with pytest.raises(ApiError, match="fieldValidation"):
        fields.directive({"fieldValidation": "Loose"})


def test_custom_resource_unknown_fields_respect_preserved_parts() -> None:
    structural = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema = openapi.custom_kind_schema(structural)
    job = {
        "metadata": {"name": "j"},
        "spec": {"training": {"hyperparameters": {"anything": 1}, "epochz": 2}},
    }
    found = list(fields.unknown_fields(job, schema, core_schemas.definitions()))
    assert found == ["spec.training.epochz"]


def test_server_side_apply_merges_and_forgets_what_it_stops_applying() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer"},
                    "b": {"type": "integer"},
                    "env": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object"},
                    },
                    "args": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
    live = {"metadata": {"name": "x"}, "spec": {"b": 9, "env": [{"name": "KEEP", "value": "1"}]}}
    first = {"spec": {"a": 1, "env": [{"name": "MINE", "value": "2"}], "args": ["x"]}}
    once = apply.applied_object(live, first, "me", schema, {}, "now")
    assert once["spec"] == {
        "a": 1,
        "b": 9,
        "env": [{"name": "KEEP", "value": "1"}, {"name": "MINE", "value": "2"}],
        "args": ["x"],
    }
    [entry] = once["metadata"]["managedFields"]
    assert entry["fieldsV1"]["f:spec"]["f:env"]['k:{"name":"MINE"}'] == {
        ".": {},
        "f:name": {},
        "f:value": {},
    }
    second = {"spec": {"args": ["y"]}}
    twice = apply.applied_object(once, second, "me", schema, {}, "later")
    # "a" and the MINE item are no longer applied: gone; others' fields stay.
    assert twice["spec"] == {"b": 9, "env": [{"name": "KEEP", "value": "1"}], "args": ["y"]}
    assert apply.paths_of(twice["metadata"]["managedFields"][0]["fieldsV1"]) == {
        ("f:spec", "f:args")
    }


def test_events_convert_between_the_groups_losslessly() -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "message": "hi",
        "reason": "Started",
        "source": {"component": "kubelet"},
        "count": 2,
        "reportingComponent": "kubelet",
    }
    viewed = event_versions.to_events_v1(core)
    assert viewed["apiVersion"] == "events.k8s.io/v1"
    assert (viewed["regarding"], viewed["note"], viewed["deprecatedCount"]) == (
        {"kind": "Pod", "name": "p"},
        "hi",
        2,
    )
    assert viewed["reportingController"] == "kubelet"
    assert event_versions.to_core(viewed) == core
