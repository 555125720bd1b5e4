"""The Grafana dashboard ConfigMap (templates/dashboard-configmap.yaml) and its generated JSON."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.chart import queries as q
from tests.chart import rendering as r
from tests.support.deps import REPO_ROOT, need_tool

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


def test_cluster_namespace_and_job_variables() -> None:
    variables = {v["name"]: v for v in q.dashboard()["templating"]["list"]}
    assert list(variables) == ["datasource", "cluster", "namespace", "job"]
    assert variables["datasource"]["type"] == "datasource"
    cluster = variables["cluster"]
    assert cluster["query"] == "label_values(rekindle_build_info, cluster)"
    # "All" is the default and matches series without a cluster label too.
    assert cluster["includeAll"] is True
    assert cluster["allValue"] == ".*"
    assert cluster["current"]["value"] == "$__all"
    assert '$cluster"' in variables["namespace"]["query"]
    assert "namespace" in variables["namespace"]["query"]
    assert "$namespace" in variables["job"]["query"]
    assert "rekindle_job" in variables["job"]["query"]


def test_every_selector_follows_the_cluster_variable() -> None:
    """Each metric a query reads is selected with ``cluster=~"$cluster"`` (no bare names)."""
    for query in q.dashboard_queries():
        if query.title == "cluster":
            continue
        for name in q.metric_names(query.expr):
            for match in re.finditer(rf"\b{name}\b(\{{[^}}]*\}})?", query.expr):
                selector = match.group(1) or ""
                assert 'cluster=~"$cluster"' in selector, (query.title, match.group(0))


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


def test_resource_panels_read_gpus_and_containers_of_the_chosen_jobs_pods() -> None:
    queries = {query.title: query for query in q.dashboard_queries()}
    wanted = {
        "GPU utilisation": "DCGM_FI_DEV_GPU_UTIL",
        "GPU memory used": "DCGM_FI_DEV_FB_USED",
        "CPU": "container_cpu_usage_seconds_total",
        "Memory": "container_memory_working_set_bytes",
    }
    for title, metric in wanted.items():
        query = queries[title]
        assert q.metric_names(query.expr) == {metric}, title
        assert 'pod=~"$job-[0-9]+"' in query.expr, title
        assert 'namespace="$namespace"' in query.expr, title
    panels = {panel["title"]: panel for panel in q.dashboard()["panels"]}
    for title in wanted:
        assert panels[title]["fieldConfig"]["defaults"]["noValue"], title


# --------------------------------------------------------------------------
# The queries evaluated by Prometheus' own engine (promtool's expression tests).
# --------------------------------------------------------------------------

#: dcgm-exporter's series for pod digits-2 (two GPUs), scraped both ways: with honorLabels
#: (its own namespace/pod labels kept) and without (renamed exported_*); plus GPUs of other
#: pods that must not show: another job whose name starts the same, another namespace.
DCGM_SERIES = {
    'DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-a", Hostname="node-1", namespace="ml", '
    'pod="digits-2", container="trainer", job="gpu-operator/nvidia-dcgm-exporter"}': "87x10",
    'DCGM_FI_DEV_GPU_UTIL{gpu="1", UUID="GPU-b", Hostname="node-2", exported_namespace="ml", '
    'exported_pod="digits-2", exported_container="trainer", namespace="gpu-operator", '
    'pod="nvidia-dcgm-exporter-x1", job="nvidia-dcgm-exporter"}': "42x10",
    'DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-c", namespace="ml", pod="digits-extra-1", '
    'container="trainer"}': "99x10",
    'DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-d", namespace="other", pod="digits-2", '
    'container="trainer"}': "99x10",
    'DCGM_FI_DEV_FB_USED{gpu="0", UUID="GPU-a", namespace="ml", pod="digits-2", '
    'container="trainer"}': "1024x10",
    # cAdvisor: the trainer container, and the pod-level and pause-container series it also has.
    'container_cpu_usage_seconds_total{namespace="ml", pod="digits-2", container="trainer", '
    'id="/kubepods/a/b"}': "0+30x10",
    'container_cpu_usage_seconds_total{namespace="ml", pod="digits-2", container="", '
    'id="/kubepods/a"}': "0+31x10",
    'container_cpu_usage_seconds_total{namespace="ml", pod="digits-2", container="POD", '
    'id="/kubepods/a/p"}': "0+1x10",
    'container_memory_working_set_bytes{namespace="ml", pod="digits-2", container="trainer", '
    'id="/kubepods/a/b"}': "2e9x10",
    'container_memory_working_set_bytes{namespace="ml", pod="digits-2", container="", '
    'id="/kubepods/a"}': "3e9x10",
}
#: Panel -> the samples it must show for job digits in namespace ml at 10m.
EXPECTED: dict[str, list[tuple[str, float]]] = {
    "GPU utilisation": [
        ('{namespace="ml", pod="digits-2", gpu="0"}', 87),
        ('{namespace="ml", pod="digits-2", gpu="1"}', 42),
    ],
    "GPU memory used": [('{namespace="ml", pod="digits-2", gpu="0"}', 1024 * 1048576)],
    "CPU": [('{namespace="ml", pod="digits-2", container="trainer"}', 0.5)],
    "Memory": [('{namespace="ml", pod="digits-2", container="trainer"}', 2e9)],
}


#: An expression check: (PromQL, the samples it must give at 10m as (labels, value)).
Check = tuple[str, list[tuple[str, float]]]


def _promtool_expressions(tmp_path: Path, series: dict[str, str], checks: list[Check]) -> str:
    """promtool's expression tests of ``checks`` on ``series`` (name -> values); its output.

    Fails the calling test, with promtool's report, when an expression gives other samples.
    """
    case = {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "promql_expr_test": [
            {
                "expr": expr,
                "eval_time": "10m",
                "exp_samples": [{"labels": labels, "value": value} for labels, value in want],
            }
            for expr, want in checks
        ],
    }
    test_file = tmp_path / "dashboard_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": [case]})
    )
    result = subprocess.run(
        [need_tool("promtool"), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _panel_query(title: str, cluster: str = ".*") -> str:
    """The panel's query as Grafana sends it for job digits in namespace ml."""
    (query,) = [query for query in q.dashboard_queries() if query.title == title]
    return q.expand(query.expr, namespace="ml", job="digits", cluster=cluster)


def test_every_query_parses_and_evaluates(tmp_path: Path) -> None:
    """Prometheus' engine accepts every panel, annotation and variable query as Grafana sends it."""
    checks: list[Check] = [
        (q.expand(query.expr, namespace="ml", job="digits"), []) for query in q.dashboard_queries()
    ]
    assert "SUCCESS" in _promtool_expressions(tmp_path, {'unrelated{a="b"}': "1x10"}, checks)


def test_resource_panels_show_the_jobs_gpus_and_containers(tmp_path: Path) -> None:
    checks = [(_panel_query(title), want) for title, want in EXPECTED.items()]
    assert "SUCCESS" in _promtool_expressions(tmp_path, DCGM_SERIES, checks)


def test_the_cluster_variable_picks_one_clusters_gpus(tmp_path: Path) -> None:
    series = {
        'DCGM_FI_DEV_GPU_UTIL{cluster="prod", gpu="0", namespace="ml", pod="digits-2"}': "80x10",
        'DCGM_FI_DEV_GPU_UTIL{cluster="dev", gpu="0", namespace="ml", pod="digits-2"}': "10x10",
    }
    want = [('{namespace="ml", pod="digits-2", gpu="0"}', 80.0)]
    checks = [(_panel_query("GPU utilisation", cluster="prod"), want)]
    assert "SUCCESS" in _promtool_expressions(tmp_path, series, checks)


def test_expression_tests_would_catch_a_wrong_expectation(tmp_path: Path) -> None:
    """The promtool runs above can fail: a wrong value is reported."""
    want = [('{namespace="ml", pod="digits-2", container="trainer"}', 9.0)]
    with pytest.raises(AssertionError, match="FAILED"):
        _promtool_expressions(tmp_path, DCGM_SERIES, [(_panel_query("CPU"), want)])


def test_the_goodput_row_shows_the_jobs_share_and_its_badput_by_cause(tmp_path: Path) -> None:
    job = 'namespace="ml", rekindle_job="digits"'
    series = {
        f"rekindle_operator_job_goodput_seconds{{{job}}}": "300x10",
        f"rekindle_operator_job_wall_seconds{{{job}}}": "400x10",
        f'rekindle_operator_job_badput_seconds{{{job}, cause="startup"}}': "60x10",
        f'rekindle_operator_job_badput_seconds{{{job}, cause="queued"}}': "40x10",
        f'rekindle_operator_job_badput_seconds{{{job}, cause="restore"}}': "0x10",
        f'rekindle_operator_job_gpu_seconds{{{job}, kind="lost_to_interruptions"}}': "320x10",
        f'rekindle_operator_job_gpu_seconds{{{job}, kind="saved_by_early_stopping"}}': "900x10",
        # Another job of the namespace must not show.
        'rekindle_operator_job_goodput_seconds{namespace="ml", rekindle_job="digits-2"}': "1x10",
        'rekindle_operator_job_wall_seconds{namespace="ml", rekindle_job="digits-2"}': "9x10",
    }
    one = '{namespace="ml", rekindle_job="digits"}'
    checks: list[Check] = [
        (_panel_query("Goodput"), [(one, 0.75)]),
        (_panel_query("Productive time"), [(one, 300)]),
        (_panel_query("Badput"), [(one, 100)]),
        (_panel_query("Wall time accounted"), [(one, 400)]),
        (_panel_query("GPU-seconds lost to interruptions"), [(one, 320)]),
        (_panel_query("GPU-seconds saved by early stopping"), [(one, 900)]),
        (
            _panel_query("Badput by cause"),
            [
                (f'{{namespace="ml", rekindle_job="digits", cause="{cause}"}}', value)
                for cause, value in (("startup", 60), ("queued", 40), ("restore", 0))
            ],
        ),
    ]
    assert "SUCCESS" in _promtool_expressions(tmp_path, series, checks)
