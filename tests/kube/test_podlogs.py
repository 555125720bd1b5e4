"""The pods/log rules: PodLogOptions as the API server reads them, and the tail it cuts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube import podlogs
from tests.kube.store import ApiError


def pod(*containers: str, init: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [{"name": c} for c in containers],
            "initContainers": [{"name": c} for c in init],
        },
    }


@pytest.mark.parametrize(
    ("text", "lines", "expected"),
    [
        ("a\nb\nc\n", None, "a\nb\nc\n"),
        ("a\nb\nc\n", 2, "b\nc\n"),
        ("a\nb\nc", 1, "c"),  # a last line without newline counts
        ("a\nb\n", 5, "a\nb\n"),
        ("a\nb\n", 0, ""),
        ("a\rx\nb\n", 1, "b\n"),  # only newlines end lines
        ("a\rx\nb\n", 2, "a\rx\nb\n"),
        ("", 3, ""),
    ],
)
def test_tail(text: str, lines: int | None, expected: str) -> None:
    assert podlogs.tail(text, lines) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, podlogs.LogOptions("main", False, None)),
        ({"container": "main", "tailLines": "3"}, podlogs.LogOptions("main", False, 3)),
        ({"previous": "true"}, podlogs.LogOptions("main", True, None)),
        ({"previous": "False", "tailLines": "0"}, podlogs.LogOptions("main", False, 0)),
        ({"follow": "false", "timestamps": "0"}, podlogs.LogOptions("main", False, None)),
        ({"follow": "true"}, podlogs.LogOptions("main", False, None, follow=True)),
    ],
)
def test_options(params: dict[str, str], expected: podlogs.LogOptions) -> None:
    assert podlogs.parse_options(pod("main"), params) == expected


@pytest.mark.parametrize(
    ("containers", "params", "status", "message"),
    [
        (("main",), {"tailLines": "x"}, 400, "tailLines: invalid value 'x'"),
        (("main",), {"tailLines": "-1"}, 422, "must be greater than or equal to 0"),
        (("main",), {"previous": "yes"}, 400, "previous: invalid value 'yes'"),
        (("main",), {"container": "other"}, 400, "container other is not valid for pod p"),
        (("a", "b"), {}, 400, "a container name must be specified for pod p, choose one of: [a b]"),
        (("main",), {"timestamps": "true"}, 400, "timestamps=true on pods/log is not emulated"),
        (("main",), {"sinceSeconds": "10"}, 400, "sinceSeconds on pods/log is not emulated"),
    ],
)
def test_bad_options(
    containers: tuple[str, ...], params: dict[str, str], status: int, message: str
) -> None:
    with pytest.raises(ApiError) as caught:
        podlogs.parse_options(pod(*containers), params)
    assert caught.value.status == status
    assert message in caught.value.message


def test_a_named_container_of_several_or_an_init_container() -> None:
    assert podlogs.parse_options(pod("a", "b"), {"container": "b"}).container == "b"
    assert podlogs.parse_options(pod("a", init=("setup",)), {"container": "setup"}).container == (
        "setup"
    )
