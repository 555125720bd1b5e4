"""kopf peering objects (templates/peering.yaml) and their CRDs (crds/kopf-peering.yaml)."""

from __future__ import annotations

import yaml

from tests.chart import rendering as r


def test_cluster_scope_one_cluster_peering_named_like_the_flag() -> None:
    objs = r.objects({})
    peering = r.one(objs, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == r.RELEASE
    assert (
        f"--peering={r.RELEASE}"
        in r.one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_namespaced_scope_a_peering_in_each_watched_namespace() -> None:
    objs = r.objects(r.nested({"watch.scope": "namespaced", "operator.peeringName": "p"}))
    assert not r.of_kind(objs, "ClusterKopfPeering")
    peerings = r.of_kind(objs, "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings} == {
        (n, "p") for n in r.WATCHED
    }


def test_peering_create_false_leaves_them_out() -> None:
    kinds = {o["kind"] for o in r.objects({"peering": {"create": False}})}
    assert not {"KopfPeering", "ClusterKopfPeering"} & kinds


def test_peering_crds_are_shipped_for_both_scopes() -> None:
    docs = list(yaml.safe_load_all((r.CHART_DIR / "crds" / "kopf-peering.yaml").read_text()))
    scopes = {d["spec"]["names"]["kind"]: d["spec"]["scope"] for d in docs}
    assert scopes == {"ClusterKopfPeering": "Cluster", "KopfPeering": "Namespaced"}
    assert {d["spec"]["group"] for d in docs} == {"kopf.dev"}
