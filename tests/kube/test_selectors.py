"""Label and field selectors: parsing and matching, by table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube import selectors

POD: dict[str, Any] = {
    "metadata": {"name": "p1", "namespace": "ns", "labels": {"app": "web", "tier": "front"}},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("label_selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("app notin (web,db)", False),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app in (web,db),tier", True),
    ],
)
def test_label_selector(label_selector: str, expected: bool) -> None:
    labels = selectors.parse_label_selector(label_selector)
    assert selectors.matches(POD, labels=labels) is expected


@pytest.mark.parametrize(
    ("field_selector", "expected"),
    [
        ("metadata.name=p1", True),
        ("metadata.name==p1", True),
        ("metadata.name=p2", False),
        ("metadata.name!=p2", True),
        ("metadata.namespace=ns,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.nodeName=", True),  # absent fields compare as ""
        ("spec.nodeName!=", False),
    ],
)
def test_field_selector(field_selector: str, expected: bool) -> None:
    fields = selectors.parse_field_selector(field_selector)
    assert selectors.matches(POD, fields=fields) is expected


@pytest.mark.parametrize("bad", ["app in web", "a=b=c", "=x", "app in (web"])
def test_malformed_label_selector_names_the_term(bad: str) -> None:
    with pytest.raises(selectors.SelectorError, match="labelSelector"):
        selectors.parse_label_selector(bad)


def test_malformed_field_selector_names_the_term() -> None:
    with pytest.raises(selectors.SelectorError, match=r"fieldSelector: .*'metadata\.name'"):
        selectors.parse_field_selector("metadata.name")
