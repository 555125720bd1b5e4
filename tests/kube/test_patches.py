"""The three patch formats, by table; inputs are never mutated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.kube import patches

BASE: dict[str, Any] = {
    "metadata": {"name": "p", "finalizers": ["a"], "labels": {"x": "1"}},
    "spec": {
        "containers": [{"name": "main", "image": "i:1", "env": [{"name": "A", "value": "1"}]}],
        "tolerations": [{"key": "t1"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}


@pytest.mark.parametrize(
    ("patch", "expected_metadata"),
    [
        (
            {"metadata": {"labels": {"y": "2"}}},
            {"name": "p", "finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
        ),
        ({"metadata": {"labels": {"x": None}}}, {"name": "p", "finalizers": ["a"], "labels": {}}),
        (
            {"metadata": {"finalizers": ["b"]}},
            {"name": "p", "finalizers": ["b"], "labels": {"x": "1"}},
        ),
        ({"metadata": {"finalizers": None}}, {"name": "p", "labels": {"x": "1"}}),
    ],
)
def test_merge_patch(patch: dict[str, Any], expected_metadata: dict[str, Any]) -> None:
    before = copy.deepcopy(BASE)
    result = patches.merge_patch(BASE, patch)
    assert before == BASE
    assert result["metadata"] == expected_metadata
    assert result["spec"] == BASE["spec"]


def test_json_patch_ops() -> None:
    ops = [
        {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "i:2"},
        {"op": "remove", "path": "/metadata/labels/x"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"},
        {"op": "move", "from": "/spec/tolerations", "path": "/spec/moved"},
        {"op": "test", "path": "/metadata/name", "value": "p"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "c"}},
        {"op": "add", "path": "/metadata/annotations/x~1y", "value": "escaped"},
    ]
    result = patches.json_patch(BASE, ops)
    assert result["metadata"]["finalizers"] == ["a", "b"]
    assert result["spec"]["containers"][0]["image"] == "i:2"
    assert result["metadata"]["labels"] == {"name": "p"}
    assert result["spec"]["moved"] == [{"key": "t1"}]
    assert "tolerations" not in result["spec"]
    assert result["metadata"]["annotations"] == {"a/b": "c", "x/y": "escaped"}
    assert BASE["metadata"]["finalizers"] == ["a"]


@pytest.mark.parametrize(
    ("ops", "error", "match"),
    [
        ([{"op": "test", "path": "/metadata/name", "value": "q"}], patches.PatchError, "test"),
        ([{"op": "remove", "path": "/metadata/nope"}], patches.PatchError, "does not exist"),
        ([{"op": "replace", "path": "/nope/x", "value": 1}], patches.PatchError, "does not exist"),
        ([{"op": "add", "path": "/spec/containers/5", "value": 1}], patches.PatchError, "range"),
        ([{"op": "jump", "path": "/x"}], patches.PatchFormatError, "unknown op"),
        ([{"op": "add", "path": "/x"}], patches.PatchFormatError, "needs 'value'"),
        ({"op": "add"}, patches.PatchFormatError, "list of operations"),
        ([{"op": "add", "path": "x", "value": 1}], patches.PatchFormatError, "start with '/'"),
    ],
)
def test_json_patch_errors(ops: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        patches.json_patch(BASE, ops)


def test_strategic_merge_merges_keyed_lists() -> None:
    patch = {
        "metadata": {"finalizers": ["b"]},
        "spec": {
            "containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}],
            "tolerations": [{"key": "t2"}],
        },
        "status": {"conditions": [{"type": "DisruptionTarget", "status": "True"}]},
    }
    result = patches.strategic_merge_patch(BASE, patch)
    container = result["spec"]["containers"][0]
    assert container["image"] == "i:1"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert result["spec"]["tolerations"] == [{"key": "t2"}]  # no merge key: replaced
    assert result["metadata"]["finalizers"] == ["a", "b"]  # primitive list: union
    assert [c["type"] for c in result["status"]["conditions"]] == ["Ready", "DisruptionTarget"]


def test_strategic_merge_directives() -> None:
    patch = {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {"containers": [{"name": "main", "$patch": "delete"}]},
        "status": {"$patch": "replace", "phase": "Running"},
    }
    result = patches.strategic_merge_patch(BASE, patch)
    assert result["metadata"]["finalizers"] == []
    assert result["spec"]["containers"] == []
    assert result["status"] == {"phase": "Running"}


def test_strategic_merge_item_without_its_key_is_rejected() -> None:
    with pytest.raises(patches.PatchFormatError, match="merged by 'name'"):
        patches.strategic_merge_patch(BASE, {"spec": {"containers": [{"image": "x"}]}})


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/merge-patch+json", {"spec": {"x": 1}}),
        ("application/merge-patch+json; charset=utf-8", {"spec": {"x": 1}}),
        ("application/strategic-merge-patch+json", {"spec": {"x": 1}}),
        ("application/json-patch+json", [{"op": "add", "path": "/spec/x", "value": 1}]),
    ],
)
def test_apply_dispatches_on_content_type(content_type: str, body: Any) -> None:
    assert patches.apply(content_type, BASE, body)["spec"]["x"] == 1


def test_apply_rejects_unknown_content_type() -> None:
    with pytest.raises(patches.PatchFormatError, match="unsupported patch Content-Type"):
        patches.apply("application/json", BASE, {})
