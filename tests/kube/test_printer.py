"""kubectl-style tables from a CRD's printer columns, by table."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.kube import printer

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
CRD: dict[str, Any] = {
    "spec": {
        "versions": [
            {
                "name": "v1",
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {
                        "name": "Reason",
                        "type": "string",
                        "jsonPath": ".status.reason",
                        "priority": 1,
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            },
            {"name": "v0"},
        ],
    },
}


def test_columns_and_rows() -> None:
    obj = {
        "metadata": {"name": "job", "creationTimestamp": "2026-01-02T03:00:05Z"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Scheduled", "status": "True"},
                {"type": "Ready", "status": "False"},
            ],
        },
    }
    cols = printer.columns(CRD, "v1")
    assert [c.name for c in cols] == ["Name", "Phase", "Ready", "Age"]
    assert printer.rows([obj], cols, NOW) == [
        {"Name": "job", "Phase": "Running", "Ready": "False", "Age": "4m"}
    ]
    wide = printer.columns(CRD, "v1", wide=True)
    assert printer.rows([obj], wide, NOW)[0]["Reason"] is None


def test_a_version_without_columns_shows_age() -> None:
    assert [c.name for c in printer.columns(CRD, "v0")] == ["Name", "Age"]
    with pytest.raises(KeyError, match="no version 'v9'"):
        printer.columns(CRD, "v9")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".a.b", 1),
        (".a.missing", None),
        (".items[1].x", "y"),
        (".items[5].x", None),
        ('.items[?(@.x=="y")].n', 2),
        ('.items[?(@.x=="none")].n', None),
    ],
)
def test_jsonpath(path: str, expected: Any) -> None:
    doc = {"a": {"b": 1}, "items": [{"x": "w", "n": 1}, {"x": "y", "n": 2}]}
    assert printer.jsonpath(doc, path) == expected


def test_unsupported_jsonpath_is_named() -> None:
    with pytest.raises(printer.JsonPathError, match=r"\.\.deep"):
        printer.jsonpath({}, "..deep")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (7199, "119m"),
        (10800, "3h"),
        (12000, "3h20m"),
        (86400, "24h"),
        (2 * 86400 + 5 * 3600, "2d5h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
    ],
)
def test_age(seconds: int, expected: str) -> None:
    then = NOW - datetime.timedelta(seconds=seconds)
    assert printer.age(then.strftime("%Y-%m-%dT%H:%M:%SZ"), NOW) == expected
