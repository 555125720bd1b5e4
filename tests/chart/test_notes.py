"""NOTES.txt: what to do next, for each mode."""

from __future__ import annotations

from tests.chart import rendering as r


def _notes(values: dict[str, object] | None = None) -> str:
    return next(text for path, text in r.render(values).items() if path.endswith("NOTES.txt"))


def test_default_notes_say_how_to_check_and_enable_monitoring() -> None:
    notes = _notes()
    assert "every namespace" in notes
    assert f"helm test {r.RELEASE}" in notes
    assert "monitoring.serviceMonitor.enabled=true" in notes
    assert "WARNING" not in notes


def test_namespaced_notes_list_the_namespaces() -> None:
    notes = _notes(r.nested({"watch.scope": "namespaced"}))
    assert ", ".join(r.WATCHED) in notes


def test_warns_when_monitors_carry_no_selector_labels() -> None:
    assert "WARNING" in _notes(r.ALL_ON)
    labelled = r.merge(r.ALL_ON, {"monitoring": {"serviceMonitor": {"labels": {"release": "kps"}}}})
    assert "WARNING" not in _notes(labelled)


def test_several_replicas_explain_peering_without_a_warning() -> None:
    notes = _notes({"replicaCount": 2})
    assert "2 operator replicas share the kopf peering" in notes
    assert "takes over once its peering entry expires" in notes
    assert "WARNING" not in notes
    assert "operator replicas share" not in _notes({})


def test_says_when_the_operator_down_alert_is_left_out() -> None:
    rules_only: dict[str, object] = {"monitoring": {"prometheusRule": {"enabled": True}}}
    assert "RekindleOperatorDown is left out" in _notes(rules_only)
    assert "RekindleOperatorDown is left out" not in _notes(r.ALL_ON)
