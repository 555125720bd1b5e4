"""The CRD is a structural schema that teaches itself (descriptions), with the promised extras."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from rekindle_operator.core import job_spec
from rekindle_operator.resources import crd, validation

CRD = crd.load_crd()
SCHEMA = crd.version_schema(CRD)


def _nodes(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node below ``schema`` with its dotted path."""
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), Mapping):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from _nodes(schema["additionalProperties"], f"{path}.*")


NODES = list(_nodes(SCHEMA, ""))


def test_the_crd_is_a_valid_kubernetes_object() -> None:
    kubernetes_validate.validate(CRD, kubernetes_validate.latest_version(), strict=True)


def test_names_short_name_and_categories() -> None:
    names = CRD["spec"]["names"]
    assert CRD["metadata"]["name"] == f"{job_spec.PLURAL}.{job_spec.API_GROUP}"
    assert CRD["spec"]["group"] == job_spec.API_GROUP
    assert names["kind"] == job_spec.KIND
    assert names["plural"] == job_spec.PLURAL
    assert names["singular"] == job_spec.SINGULAR
    assert names["shortNames"] == [job_spec.SHORT_NAME]
    assert job_spec.CATEGORY in names["categories"]
    assert CRD["spec"]["scope"] == "Namespaced"


def test_one_served_storage_version_with_the_status_subresource() -> None:
    (version,) = CRD["spec"]["versions"]
    assert version["name"] == job_spec.API_VERSION
    assert version["served"]
    assert version["storage"]
    assert version["subresources"] == {"status": {}}


def test_printer_columns_point_at_status_fields() -> None:
    (version,) = CRD["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert [
        c["name"] for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0
    ] == [
        "Phase",
        "Epoch",
        "Best",
        "Saved",
        "Restarts",
        "Workers",
        "Age",
    ]
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
    for column in columns.values():
        path = column["jsonPath"]
        if not path.startswith(".status."):
            continue
        node: Mapping[str, Any] = SCHEMA["properties"]["status"]
        for part in path.removeprefix(".status.").split("."):
            node = node["properties"][part]
        kinds = {"integer": "integer", "number": "number", "string": "string"}
        if node.get("format") == "date-time":
            kinds["string"] = "date"  # kubectl prints its age
        assert kinds[node["type"]] == column["type"], column


@pytest.mark.parametrize(("path", "node"), NODES, ids=[p or "(root)" for p, _ in NODES])
def test_every_node_is_structural_and_described(path: str, node: Mapping[str, Any]) -> None:
    if not (node.get("x-kubernetes-int-or-string") or path.endswith(".*")):
        assert node.get("type"), f"{path}: no type"
    if path.endswith(".*") or node.get("x-kubernetes-int-or-string"):
        return  # map values are described by their map
    if path.endswith("[]") and node.get("type") != "object":
        return  # a list of strings is described by the list
    assert str(node.get("description", "")).strip(), f"{path or '(root)'}: no description"
    assert not ("properties" in node and "additionalProperties" in node), path


@pytest.mark.parametrize(("path", "node"), [(p, n) for p, n in NODES if "default" in n], ids=str)
def test_every_default_is_valid_for_its_field(path: str, node: Mapping[str, Any]) -> None:
    converted = validation._to_json_schema(node)
    jsonschema.Draft202012Validator(converted).validate(node["default"])


def test_every_cel_rule_compiles_and_has_a_message() -> None:
    rules = [r for _, n in NODES for r in n.get("x-kubernetes-validations", [])]
    assert len(rules) >= 10
    assert validation.prepare() == len(rules)
    for rule in rules:
        assert rule.get("message"), rule
        assert rule.get("reason", "FieldValueInvalid") in {
            "FieldValueInvalid",
            "FieldValueForbidden",
            "FieldValueRequired",
            "FieldValueDuplicate",
        }


def test_enums_are_typed_strings() -> None:
    for path, node in NODES:
        if "enum" in node:
            assert node["type"] == "string", path
