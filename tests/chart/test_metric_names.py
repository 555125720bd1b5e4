"""No dashboard or alert query names a metric that the trainer or the operator does not export."""

from __future__ import annotations

import pytest

from tests.chart import queries as q


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('max by (a, b) (foo{x="y", z=~"w|v"})', {"foo"}),
        ("sum by (le) (rate(bar_bucket[$__rate_interval]))", {"bar_bucket"}),
        ("time() - max by (n) (baz > 0) > 3600", {"baz"}),
        ("(a unless a offset 10m) or increase(b[10m]) >= 3", {"a", "b"}),
        ('foo{a="$x"} * 1e3 + bar_count', {"foo", "bar_count"}),
    ],
)
def test_name_extraction(expr: str, names: set[str]) -> None:
    assert q.metric_names(expr) == names


def test_every_query_names_only_exported_metrics() -> None:
    exported = q.exported_names() | q.PROMETHEUS_SERIES | q.EXTERNAL_SERIES
    queries = q.dashboard_queries() + q.alert_queries()
    assert len(queries) > 20
    unknown = {
        f"{query.source} {query.title!r}: {name}"
        for query in queries
        for name in q.metric_names(query.expr)
        if name not in exported
    }
    assert not unknown, "queries name metrics nobody exports:\n" + "\n".join(sorted(unknown))


def test_every_query_names_some_metric() -> None:
    for query in q.dashboard_queries() + q.alert_queries():
        assert q.metric_names(query.expr), query


def test_counters_are_only_read_through_functions_or_by_attempt() -> None:
    """A counter resets with each attempt: read it via rate, increase or per attempt."""
    for query in q.dashboard_queries():
        for name in q.metric_names(query.expr):
            if name.endswith("_total") and "attempt" not in query.labels:
                assert any(f in query.expr for f in ("rate(", "increase(", "changes(")), query
