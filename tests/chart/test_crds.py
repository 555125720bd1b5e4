"""The CRDs the chart ships (crds/) and the pre-upgrade hook that updates them (crd-upgrade.yaml).

Helm creates ``crds/`` on the first install only. The hook objects render on
``helm upgrade`` alone; their ConfigMap must carry exactly the CRDs of
``crds/``, and the script they run is tested against the emulated API server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import rendering as r
from tests.kube.cluster import Cluster

CRD_FOLDER = r.CHART_DIR / "crds"
SCRIPT = r.CHART_DIR / "files" / "hooks" / "rekindle_hooks.py"
HOOK_KINDS = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Job"]


def _chart_crds() -> dict[str, dict[str, Any]]:
    """Every CRD in crds/, by name, as kubectl would read the files."""
    return {
        doc["metadata"]["name"]: doc
        for path in sorted(CRD_FOLDER.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }


def _hooks(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects of the CRD upgrade hook in an upgrade render."""
    objs = r.objects(values, upgrade=True)
    return [o for o in objs if o["_template"].endswith("crd-upgrade.yaml")]


def test_trainingjobs_are_not_in_the_all_category() -> None:
    """`kubectl delete all --all` must not delete jobs (and with them their pods and claims)."""
    categories = _chart_crds()["trainingjobs.rekindle.dev"]["spec"]["names"]["categories"]
    assert "all" not in categories
    assert categories == ["rekindle"]


def test_install_renders_no_hook_helm_creates_crds_itself() -> None:
    assert not [o for o in r.objects({}) if o["_template"].endswith("crd-upgrade.yaml")]


def test_upgrade_renders_pre_upgrade_hooks_that_clean_up_after_success() -> None:
    hooks = _hooks()
    assert [o["kind"] for o in hooks] == HOOK_KINDS
    for obj in hooks:
        annotations = obj["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-upgrade", obj["kind"]
        policy = annotations["helm.sh/hook-delete-policy"].split(",")
        assert set(policy) == {"before-hook-creation", "hook-succeeded"}, obj["kind"]
    weights = {o["kind"]: int(o["metadata"]["annotations"]["helm.sh/hook-weight"]) for o in hooks}
    assert all(weights[kind] < weights["Job"] for kind in HOOK_KINDS[:-1]), weights


def test_upgrade_hook_can_be_switched_off() -> None:
    assert not _hooks({"crds": {"upgrade": False}})


def test_configmap_carries_exactly_the_crds_of_the_crds_folder_and_the_script() -> None:
    hooks = {o["kind"]: o for o in _hooks()}
    data = hooks["ConfigMap"]["data"]
    assert data.pop("rekindle_hooks.py") == SCRIPT.read_text().rstrip("\n")
    crds = {key.removesuffix(".json"): json.loads(text) for key, text in data.items()}
    assert crds == _chart_crds()


def test_the_hook_may_only_read_and_replace_the_charts_crds() -> None:
    hooks = {o["kind"]: o for o in _hooks()}
    (rule,) = hooks["ClusterRole"]["rules"]
    assert rule == {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "resourceNames": sorted(_chart_crds()),
        "verbs": ["get", "update"],
    }
    account = hooks["ServiceAccount"]["metadata"]
    assert hooks["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    assert (
        hooks["ClusterRoleBinding"]["roleRef"]["name"] == hooks["ClusterRole"]["metadata"]["name"]
    )
    pod = hooks["Job"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]
    assert pod["volumes"] == [
        {"name": "crds", "configMap": {"name": hooks["ConfigMap"]["metadata"]["name"]}}
    ]
    (container,) = pod["containers"]
    mount = container["volumeMounts"][0]["mountPath"]
    assert container["command"] == ["python3", f"{mount}/rekindle_hooks.py", "upgrade-crds", mount]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_upgrade_objects_validate_strictly() -> None:
    problems = r.validate_all(r.objects(r.ALL_ON, upgrade=True))
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# The script, against the emulated API server.
# --------------------------------------------------------------------------


def _run_script(cluster: Cluster, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REKINDLE_API_URL": cluster.url}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "upgrade-crds", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _hook_folder(tmp_path: Path) -> Path:
    """The ConfigMap's CRD files as the hook pod sees them mounted."""
    folder = tmp_path / "mounted"
    folder.mkdir()
    data = {o["kind"]: o for o in _hooks()}["ConfigMap"]["data"]
    for key, text in data.items():
        (folder / key).write_text(text)
    return folder


def _install_old_crds(cluster: Cluster, tmp_path: Path) -> None:
    """The chart's CRDs as an older chart had them: one printer column fewer; a user's label."""
    old = tmp_path / "old-crds"
    old.mkdir()
    for name, crd in _chart_crds().items():
        if name == "trainingjobs.rekindle.dev":
            crd["spec"]["versions"][0]["additionalPrinterColumns"].pop(1)
            crd["metadata"]["labels"]["team"] = "ml-platform"
        (old / f"{name}.yaml").write_text(yaml.safe_dump(crd))
    cluster.install_crds(old)


def test_script_replaces_the_spec_and_keeps_labels_others_set(tmp_path: Path) -> None:
    with Cluster(tmp_path / "cluster") as cluster:
        _install_old_crds(cluster, tmp_path)
        result = _run_script(cluster, _hook_folder(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "CRD trainingjobs.rekindle.dev: updated" in result.stdout
        live = cluster.get("customresourcedefinitions", None, "trainingjobs.rekindle.dev")
        chart = _chart_crds()["trainingjobs.rekindle.dev"]
        assert live["spec"] == chart["spec"]
        assert live["metadata"]["labels"] == {**chart["metadata"]["labels"], "team": "ml-platform"}


def test_script_fails_on_an_empty_folder(tmp_path: Path) -> None:
    with Cluster(tmp_path / "cluster") as cluster:
        result = _run_script(cluster, tmp_path)
    assert result.returncode == 1
    assert f"no CRD (*.json) in {tmp_path}" in result.stderr


def test_script_stops_the_upgrade_with_the_fix_when_a_crd_is_missing(tmp_path: Path) -> None:
    folder = _hook_folder(tmp_path)
    with Cluster(tmp_path / "cluster") as cluster:
        result = _run_script(cluster, folder)
    assert result.returncode == 1
    assert "is not installed" in result.stderr
    assert "crds.upgrade=false" in result.stderr


@pytest.mark.parametrize("argv", [[], ["upgrade-crds"], ["upgrade-crds", "a", "b"]])
def test_script_usage(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "usage" in result.stderr
