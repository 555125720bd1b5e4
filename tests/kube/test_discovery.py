"""Discovery as kubectl reads it: the core groupVersion, subresources, preferred versions."""

from __future__ import annotations

import kmock
import pytest

from tests.kube import discovery, resources


@pytest.fixture
def declared() -> kmock.ResourcesArray:
    array = kmock.ResourcesArray()
    resources.declare_defaults(array)
    return array


def test_the_core_group_reports_group_version_v1(declared: kmock.ResourcesArray) -> None:
    listed = discovery.resource_list(declared, "", "v1")
    assert listed is not None
    assert listed["groupVersion"] == "v1"  # kmock 0.8 wrote "/v1": kubectl saw no core group
    names = {r["name"] for r in listed["resources"]}
    assert {"pods", "pods/log", "persistentvolumeclaims", "events"} <= names


def test_subresources_have_their_own_verbs_and_no_short_names(
    declared: kmock.ResourcesArray,
) -> None:
    listed = discovery.resource_list(declared, "rekindle.dev", "v1alpha1")
    assert listed is not None
    by_name = {r["name"]: r for r in listed["resources"]}
    main, status = by_name["trainingjobs"], by_name["trainingjobs/status"]
    assert (main["shortNames"], main["categories"]) == (["tj"], ["rekindle"])
    assert "shortNames" not in status
    assert "categories" not in status
    assert status["verbs"] == ["get", "patch", "update"]
    pods = {r["name"]: r for r in (discovery.resource_list(declared, "", "v1") or {})["resources"]}
    assert pods["pods/log"]["verbs"] == ["get"]
    assert (pods["pods/eviction"]["group"], pods["pods/eviction"]["kind"]) == ("policy", "Eviction")


def test_preferred_version_is_the_highest_by_kubernetes_priority(
    declared: kmock.ResourcesArray,
) -> None:
    assert sorted(
        ["v1beta1", "v1", "v2", "v1alpha1", "v2beta2"], key=discovery.version_priority
    ) == [
        "v2",
        "v1",
        "v2beta2",
        "v1beta1",
        "v1alpha1",
    ]
    group = discovery.api_group(declared, "autoscaling")
    assert group is not None
    assert group["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    assert discovery.api_group(declared, "nothing.example") is None
    assert discovery.resource_list(declared, "nothing.example", "v1") is None
