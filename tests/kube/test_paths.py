"""URL parsing, including the Namespace paths that kmock 0.8 misreads."""

from __future__ import annotations

import pytest

from tests.kube.paths import ApiPath, parse_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/version", ApiPath()),
        ("/api", ApiPath(group="")),
        ("/apis", ApiPath(group="")),
        ("/api/v1", ApiPath(group="", version="v1")),
        ("/apis/rekindle.dev", ApiPath(group="rekindle.dev")),
        ("/apis/rekindle.dev/v1alpha1", ApiPath(group="rekindle.dev", version="v1alpha1")),
        ("/api/v1/pods", ApiPath("", "v1", "pods")),
        ("/api/v1/namespaces", ApiPath("", "v1", "namespaces")),
        ("/api/v1/namespaces/ns1", ApiPath("", "v1", "namespaces", None, "ns1")),
        ("/api/v1/namespaces/ns1/status", ApiPath("", "v1", "namespaces", None, "ns1", "status")),
        ("/api/v1/namespaces/ns1/pods", ApiPath("", "v1", "pods", "ns1")),
        ("/api/v1/namespaces/ns1/pods/p", ApiPath("", "v1", "pods", "ns1", "p")),
        ("/api/v1/namespaces/ns1/pods/p/status", ApiPath("", "v1", "pods", "ns1", "p", "status")),
        ("/api/v1/namespaces/status/pods", ApiPath("", "v1", "pods", "status")),
        (
            "/apis/rekindle.dev/v1alpha1/namespaces/n/trainingjobs/j/status",
            ApiPath("rekindle.dev", "v1alpha1", "trainingjobs", "n", "j", "status"),
        ),
        (
            "/apis/kopf.dev/v1/clusterkopfpeerings/x",
            ApiPath("kopf.dev", "v1", "clusterkopfpeerings", None, "x"),
        ),
    ],
)
def test_parse_path(path: str, expected: ApiPath) -> None:
    assert parse_path(path) == expected
