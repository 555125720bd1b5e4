"""The PromQL the chart ships: dashboard panels, annotations, variables and alert rules.

Shared by the static name check and the real-Prometheus test, so that both
look at exactly the same queries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rekindle_operator.core.metric_names import OPERATOR_METRICS
from rekindle_trainer.contract import TRAINER_METRICS
from tests.chart import rendering as r

DASHBOARD_FILE = r.CHART_DIR / "files" / "dashboards" / "rekindle.json"
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
#: Series Prometheus makes itself for every scrape target.
PROMETHEUS_SERIES = frozenset({"up"})
#: Other exporters' series the dashboard reads when they are there: NVIDIA's dcgm-exporter
#: (GPU utilisation and memory) and the kubelet's cAdvisor (container CPU and memory).
EXTERNAL_SERIES = frozenset(
    {
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
    }
)
#: What Grafana puts in for its interval macros over a short time range.
MACROS = {"$__rate_interval": "5m", "$__interval": "1m"}


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it came from.

    Attributes:
        source: ``panel``, ``annotation``, ``variable`` or ``alert``.
        title: the panel title, annotation name, variable name or alert name.
        expr: the expression (Grafana variables still in it).
        labels: labels every returned series must carry.
    """

    source: str
    title: str
    expr: str
    labels: frozenset[str]


def dashboard() -> dict[str, Any]:
    """The committed dashboard JSON."""
    doc: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return doc


def _grouping(expr: str) -> frozenset[str]:
    """Labels of the outermost ``by (...)`` clause (the first one, which wraps the rest)."""
    match = re.search(r"\bby \(([^)]*)\)", expr)
    if not match:
        return frozenset()
    return frozenset(label.strip() for label in match.group(1).split(",") if label.strip() != "le")


def dashboard_queries() -> list[Query]:
    """Every query of every panel, annotation and query variable."""
    doc = dashboard()
    found: list[Query] = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            labels = frozenset(legend_labels | _grouping(target["expr"]))
            found.append(Query("panel", panel["title"], target["expr"], labels))
    for annotation in doc["annotations"]["list"]:
        found.append(Query("annotation", annotation["name"], annotation["expr"], frozenset()))
    for variable in doc["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert match, f"variable {variable['name']}: unsupported query {variable['query']}"
        found.append(
            Query("variable", variable["name"], match.group(1), frozenset({match.group(2)}))
        )
    return found


def alert_queries(values: dict[str, Any] | None = None) -> list[Query]:
    """Every alert expression of the rendered PrometheusRule (with the ServiceMonitor's)."""
    rule = r.one(r.objects(r.merge(r.RULES_ON, values or {})), "PrometheusRule")
    return [
        Query("alert", item["alert"], item["expr"], _grouping(item["expr"]))
        for group in rule["spec"]["groups"]
        for item in group["rules"]
    ]


def expand(expr: str, *, namespace: str, job: str, cluster: str = ".*") -> str:
    """A query as Grafana sends it: macros and the dashboard's variables filled in.

    ``cluster`` defaults to what the variable's "All" stands for.
    """
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    for name, value in (("cluster", cluster), ("namespace", namespace), ("job", job)):
        expr = re.sub(rf"\${name}\b", value, expr)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (without a PromQL parser)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        after = text[match.end() :].lstrip()
        if after.startswith("(") or name.lower() in KEYWORDS or name.startswith("$"):
            continue
        if match.start() > 0 and text[match.start() - 1] in "$0123456789.":
            continue  # a Grafana variable or a number's suffix such as 1e3
        names.add(name)
    return names


def exported_names() -> set[str]:
    """Every series name the trainer and the operator can export."""
    names = set(TRAINER_METRICS) | set(OPERATOR_METRICS)
    histograms = {n + s for n in names if not n.endswith("_total") for s in HISTOGRAM_SUFFIXES}
    return names | histograms
