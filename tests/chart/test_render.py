"""Every toggle combination renders, lints clean and validates strictly.

Kubernetes objects are validated with kubernetes-validate in strict mode
(unknown fields are errors) for the oldest and newest supported Kubernetes;
custom resources against their CRD schemas closed the same way. A render
snapshot catches unintended changes to the default output.
"""

from __future__ import annotations

import copy
import itertools
import os
from typing import Any

import helm_python as helm
import pytest

from tests.chart import rendering as r
from tests.support.deps import REPO_ROOT

SNAPSHOTS = REPO_ROOT / "tests" / "chart" / "snapshots"
#: Kinds a toggle adds: toggle path -> kinds that appear only when it is on.
TOGGLED_KINDS = {
    "monitoring.serviceMonitor.enabled": {"ServiceMonitor"},
    "monitoring.podMonitor.enabled": {"PodMonitor"},
    "monitoring.prometheusRule.enabled": {"PrometheusRule"},
    "networkPolicy.enabled": {"NetworkPolicy"},
    "serviceAccount.create": {"ServiceAccount"},
}


def _combinations() -> list[dict[str, Any]]:
    """Every combination of every toggle, as flat dotted values."""
    paths = [path for path, _ in r.TOGGLES]
    choices = [options for _, options in r.TOGGLES]
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*choices)]


@pytest.mark.slow
def test_every_toggle_combination_renders_lints_and_validates() -> None:
    distinct: dict[str, dict[str, Any]] = {}
    combos = _combinations()
    assert len(combos) == 2 ** (len(r.TOGGLES) - 1) * 2
    for flat in combos:
        values = r.nested(flat)
        objs = r.objects(values)
        kinds = {o["kind"] for o in r.installed(objs)}
        for toggle, toggled in TOGGLED_KINDS.items():
            assert (toggled <= kinds) == bool(flat[toggle]), (flat, toggle, kinds)
        dashboards = [o for o in r.of_kind(objs, "ConfigMap") if "rekindle.json" in o["data"]]
        assert bool(dashboards) == flat["monitoring.dashboard.enabled"], flat
        rbac_kinds = {"ClusterRole", "Role"} & kinds
        assert bool(rbac_kinds) == flat["rbac.create"], flat
        report = helm.lint(r.CHART_DIR, values, strict=True, kube_version="v1.27.0")
        errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        # The only strict-mode finding allowed is lint's advice to add an icon.
        errors = [m for m in errors if not (isinstance(m, dict) and "icon" in m["error"])]
        assert not errors, (flat, errors)
        for obj in objs:
            distinct.setdefault(r.canonical(obj), obj)
    problems = r.validate_all(list(distinct.values()))
    assert not problems, "\n".join(problems)


def test_default_and_all_on_objects_validate() -> None:
    for values in ({}, r.ALL_ON, r.merge(r.ALL_ON, r.nested({"watch.scope": "namespaced"}))):
        problems = r.validate_all(r.objects(values))
        assert not problems, "\n".join(problems)


def test_strict_validation_rejects_unknown_fields() -> None:
    """The validators above would catch a typo: prove it on a broken copy of each kind."""
    objs = r.objects(r.ALL_ON)
    crds = {**r.prometheus_operator_validators(), **r.chart_crd_validators()}
    for obj in objs:
        broken = copy.deepcopy(obj)
        broken.setdefault("spec", {})["notAField"] = 1
        if (obj["apiVersion"], obj["kind"]) in crds:
            if obj["kind"].endswith("KopfPeering"):
                continue  # kopf's peering CRD keeps no spec schema: anything goes there.
            assert r.crd_errors(broken, crds), obj["kind"]
        elif obj["kind"] not in {"ConfigMap", "ServiceAccount", "ClusterRole", "Role"}:
            assert r.kube_errors(broken, r.KUBE_VERSIONS[0]), obj["kind"]


def test_duplicate_keys_are_caught_by_the_loader() -> None:
    with pytest.raises(Exception, match="duplicate key"):
        r.parse({"t.yaml": "metadata:\n  labels:\n    a: b\n    a: c\n"})


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("default", {}),
        ("all-on-namespaced", r.merge(r.ALL_ON, r.nested({"watch.scope": "namespaced"}))),
    ],
)
def test_render_matches_snapshot(name: str, values: dict[str, Any]) -> None:
    """Set REKINDLE_UPDATE_SNAPSHOTS=1 to accept an intended change."""
    rendered = r.render(values)
    text = "".join(
        f"# Source: {path}\n{rendered[path].strip()}\n---\n" for path in sorted(rendered)
    )
    snapshot = SNAPSHOTS / f"{name}.yaml"
    if os.environ.get("REKINDLE_UPDATE_SNAPSHOTS") == "1":
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(text)
    assert snapshot.exists(), f"{snapshot} missing: run with REKINDLE_UPDATE_SNAPSHOTS=1"
    assert text == snapshot.read_text(), (
        f"render differs from {snapshot}; review and rerun with REKINDLE_UPDATE_SNAPSHOTS=1"
    )
