"""values.yaml and values.schema.json: documented, closed, in step, and strict about bad input."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.chart import rendering as r

VALUES_FILE = r.CHART_DIR / "values.yaml"
SCHEMA_FILE = r.CHART_DIR / "values.schema.json"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9_]*):")


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return schema


def test_every_value_has_a_comment_block_above_it() -> None:
    lines = VALUES_FILE.read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if not match:
            continue
        above = lines[number - 1] if number else ""
        if not above.strip().startswith("#") or not above.startswith(match["indent"] + "#"):
            undocumented.append(f"values.yaml:{number + 1}: {match['key']}")
    assert not undocumented, "values without a comment block above them:\n" + "\n".join(
        undocumented
    )


def _object_schemas(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every sub-schema that declares properties, with its path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append((path or "<root>", schema))
        for key, value in schema.items():
            found += _object_schemas(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _object_schemas(value, f"{path}/{index}")
    return found


def test_schema_objects_are_closed() -> None:
    open_objects = [
        path
        for path, sub in _object_schemas(_schema())
        if sub.get("type") == "object" and sub.get("additionalProperties") is not False
    ]
    assert not open_objects, f"objects without additionalProperties: false: {open_objects}"


def test_passthrough_objects_are_marked_as_such() -> None:
    """Open objects are only Kubernetes types passed through (Kubernetes validates them)."""
    for path, node in r.walk(_schema()):
        if isinstance(node, dict) and node.get("type") == "object" and "properties" not in node:
            if "additionalProperties" in node and node["additionalProperties"] is not True:
                continue  # a map of strings (labels, annotations)
            assert "passed through" in node.get("$comment", "") or path == "properties.global", path


def _missing(values: Any, schema: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str]]:
    """(keys in values.yaml but not the schema, keys in the schema but not values.yaml).

    Descends only where the schema declares properties; maps of user data
    (labels, resources, Kubernetes types passed through) are leaves.
    """
    props: dict[str, Any] = schema.get("properties", {})
    if not props or not isinstance(values, dict):
        return set(), set()
    extra = {f"{prefix}{key}" for key in values if key not in props}
    missing = {f"{prefix}{key}" for key in props if key not in values and key != "global"}
    for key, sub in props.items():
        if key in values:
            more_extra, more_missing = _missing(values[key], sub, f"{prefix}{key}.")
            extra |= more_extra
            missing |= more_missing
    return extra, missing


def test_schema_and_values_describe_the_same_keys() -> None:
    extra, missing = _missing(yaml.safe_load(VALUES_FILE.read_text()), _schema())
    assert not extra, f"in values.yaml but not in the schema: {sorted(extra)}"
    assert not missing, f"in the schema but not in values.yaml: {sorted(missing)}"


def test_defaults_validate_against_the_schema() -> None:
    r.chart().validate_schema(yaml.safe_load(VALUES_FILE.read_text()))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"imagee": {"tag": "x"}}, "imagee"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"watch": {"scope": "everywhere"}}, "/watch/scope"),
        ({"watch": {"scope": "namespaced"}}, "/watch/namespaces"),
        ({"watch": {"scope": "namespaced", "namespaces": ["Bad_Name"]}}, "/watch/namespaces/0"),
        ({"operator": {"metricsPort": 70000}}, "/operator/metricsPort"),
        (
            {"monitoring": {"serviceMonitor": {"interval": "often"}}},
            "/monitoring/serviceMonitor/interval",
        ),
        ({"monitoring": {"prometheusRule": {"jobFailed": {"severity": "page"}}}}, "severity"),
        ({"monitoring": {"podMonitor": {"enable": True}}}, "enable"),
        ({"networkPolicy": {"apiServerCIDRs": ["10.0.0.1"]}}, "/networkPolicy/apiServerCIDRs/0"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(Exception, match=re.escape(field)):
        r.render(values)


def test_namespaced_scope_without_namespaces_fails_with_the_fix_even_without_schema() -> None:
    """The template guard names the field and the fix (for charts vendored without the schema)."""
    text = (r.CHART_DIR / "templates" / "_helpers.tpl").read_text()
    assert "watch.namespaces: list at least one namespace" in text
