"""The operator's ServiceAccount (templates/serviceaccount.yaml)."""

from __future__ import annotations

import pytest

from tests.chart import rendering as r


def test_created_with_annotations() -> None:
    objs = r.installed(
        r.objects({"serviceAccount": {"annotations": {"iam.example.com/role": "r"}}})
    )
    account = r.one(objs, "ServiceAccount")
    assert account["metadata"]["namespace"] == r.NAMESPACE
    assert account["metadata"]["annotations"] == {"iam.example.com/role": "r"}


def test_custom_name() -> None:
    objs = r.installed(r.objects({"serviceAccount": {"name": "operator"}}))
    assert r.one(objs, "ServiceAccount")["metadata"]["name"] == "operator"


def test_existing_account_requires_a_name() -> None:
    with pytest.raises(Exception, match=r"serviceAccount\.name"):
        r.render({"serviceAccount": {"create": False}})
