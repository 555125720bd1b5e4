"""The Grafana dashboard ConfigMap (templates/dashboard-configmap.yaml) and its generated JSON."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

from tests.chart import queries as q
from tests.chart import rendering as r
from tests.support.deps import REPO_ROOT

BUILDER = REPO_ROOT / "scripts" / "build_dashboard.py"


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", BUILDER)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _configmap(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    base = {"monitoring": {"dashboard": {"enabled": True}}}
    return r.one(r.objects(r.merge(base, extra or {})), "ConfigMap")


def test_committed_json_is_what_the_builder_makes() -> None:
    assert _builder().render() == q.DASHBOARD_FILE.read_text(), (
        "the dashboard JSON is stale: run .venv/bin/python scripts/build_dashboard.py"
    )


def test_builder_check_mode_detects_a_stale_file(tmp_path: Any) -> None:
    stale = tmp_path / "rekindle.json"
    stale.write_text("{}\n")
    assert _builder().main(["--check", "--output", str(stale)]) == 1
    assert _builder().main(["--output", str(stale)]) == 0
    assert _builder().main(["--check", "--output", str(stale)]) == 0


def test_configmap_is_labelled_for_the_grafana_sidecar_and_holds_the_json() -> None:
    configmap = _configmap()
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["rekindle.json"]) == q.dashboard()


def test_configmap_namespace_labels_and_annotations_from_values() -> None:
    extra = {
        "monitoring": {
            "dashboard": {
                "namespace": "monitoring",
                "labels": {"grafana_dashboard": "0", "team": "ml"},
                "annotations": {"grafana_folder": "Training"},
            }
        }
    }
    configmap = _configmap(extra)
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["team"] == "ml"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Training"}


def test_namespace_and_job_variables() -> None:
    variables = {v["name"]: v for v in q.dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert "namespace" in variables["namespace"]["query"]
    assert "$namespace" in variables["job"]["query"]
    assert "rekindle_job" in variables["job"]["query"]


def test_per_job_panels_follow_the_chosen_job() -> None:
    """Trainer series and the operator's per-job series are always read for the chosen job."""
    per_job = ("rekindle_trainer_", "rekindle_operator_job_")
    for query in q.dashboard_queries():
        if query.source == "variable":
            continue
        names = q.metric_names(query.expr)
        if any(n.startswith(per_job) for n in names):
            assert 'namespace="$namespace"' in query.expr, query
            assert 'rekindle_job="$job"' in query.expr, query


def test_job_results_come_from_the_operator_not_the_exiting_trainer() -> None:
    """The early-stop results are read from series that outlive the trainer's pod."""
    queries = {query.title: query for query in q.dashboard_queries()}
    for title in ("Early stop epoch", "Epochs saved by early stopping", "Early stop"):
        names = q.metric_names(queries[title].expr)
        assert names, title
        assert all(n.startswith("rekindle_operator_job_") for n in names), (title, names)
    for variable in ("namespace", "job"):
        assert q.metric_names(queries[variable].expr) == {"rekindle_operator_job_phase"}


def test_the_panels_the_issue_asks_for_exist() -> None:
    titles = {query.title for query in q.dashboard_queries()}
    wanted = {
        "Loss by epoch",
        "Validation metrics by epoch",
        "Restarts by cause",
        "Work lost on resume",
        "Epochs saved by early stopping",
        "Checkpoint save duration",
        "Jobs by phase",
        "Reaction time",
        "Checkpoint saved",
        "Early stop",
    }
    assert wanted <= titles, wanted - titles


def test_stat_panels_show_the_last_value() -> None:
    """Grafana reduces a stat's series by ``calcs``; an empty list shows nothing useful."""
    stats = [panel for panel in q.dashboard()["panels"] if panel["type"] == "stat"]
    assert stats
    for panel in stats:
        assert panel["options"]["reduceOptions"]["calcs"] == ["lastNotNull"], panel["title"]


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in q.dashboard()["panels"]]
    assert len(ids) == len(set(ids))
