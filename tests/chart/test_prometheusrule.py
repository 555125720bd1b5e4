"""The PrometheusRule (templates/prometheusrule.yaml): promtool checks and tests every alert."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import rendering as r
from tests.support.deps import need_tool

UNIT_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yaml"
ALERTS = {
    "RekindleJobFailed",
    "RekindleRestartStorm",
    "RekindleCheckpointOverdue",
    "RekindleTrainingStalled",
}


def _rule(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rendered PrometheusRule with the rule enabled."""
    base = {"monitoring": {"prometheusRule": {"enabled": True}}}
    return r.one(r.objects(r.merge(base, values or {})), "PrometheusRule")


def _rules(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [rule for group in _rule(values)["spec"]["groups"] for rule in group["rules"]]


def _promtool_test(
    tmp_path: Path, values: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the unit tests against the rules rendered with ``values``."""
    promtool = need_tool("promtool")
    rules_file = tmp_path / "rekindle-rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": _rule(values)["spec"]["groups"]}))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return subprocess.run(
        [promtool, "test", "rules", str(tmp_path / UNIT_TESTS.name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_check_rules_passes_without_lint_findings(tmp_path: Path) -> None:
    promtool = need_tool("promtool")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": _rule()["spec"]["groups"]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "duplicate" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    result = _promtool_test(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """The unit tests are sensitive: a storm threshold of 100 must break them."""
    values = {"monitoring": {"prometheusRule": {"restartStorm": {"restarts": 100}}}}
    result = _promtool_test(tmp_path, values)
    assert result.returncode != 0
    assert "RekindleRestartStorm" in result.stdout + result.stderr


def test_every_rule_has_a_firing_unit_test() -> None:
    """Each rule (alert name plus its `since` label) is expected to fire in some case."""
    rules = {(rule["alert"], rule["labels"].get("since")) for rule in _rules()}
    assert {alert for alert, _ in rules} == ALERTS
    tested: set[tuple[str, str | None]] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check["exp_alerts"]:
                tested.add((check["alertname"], alert["exp_labels"].get("since")))
    assert rules == tested


def test_each_alert_has_severity_summary_and_description() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_alerts_can_be_switched_off_one_by_one() -> None:
    keys = {
        "jobFailed": "RekindleJobFailed",
        "restartStorm": "RekindleRestartStorm",
        "checkpointOverdue": "RekindleCheckpointOverdue",
        "trainingStalled": "RekindleTrainingStalled",
    }
    for key, alert in keys.items():
        values = {"monitoring": {"prometheusRule": {key: {"enabled": False}}}}
        names = {rule["alert"] for rule in _rules(values)}
        assert names == ALERTS - {alert}


def test_thresholds_and_labels_come_from_values() -> None:
    values = {
        "monitoring": {
            "prometheusRule": {
                "alertLabels": {"team": "ml-platform", "severity": "ignored"},
                "labels": {"release": "kube-prometheus-stack"},
                "restartStorm": {"restarts": 5, "window": "30m"},
                "checkpointOverdue": {"afterSeconds": 7200, "severity": "critical"},
                "trainingStalled": {"afterSeconds": 900},
            }
        }
    }
    rule = _rule(values)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for item in _rules(values):
        by_alert.setdefault(item["alert"], []).append(item)
        assert item["labels"]["team"] == "ml-platform"
        assert item["labels"]["severity"] != "ignored"
    storm = by_alert["RekindleRestartStorm"][0]
    assert storm["expr"].rstrip().endswith(">= 5")
    assert "[30m]" in storm["expr"]
    assert "offset 30m" in storm["expr"]
    overdue = by_alert["RekindleCheckpointOverdue"]
    assert "> 7200" in overdue[0]["expr"]
    assert overdue[1]["for"] == "7200s"
    assert {o["labels"]["severity"] for o in overdue} == {"critical"}
    stalled = by_alert["RekindleTrainingStalled"]
    assert "> 900" in stalled[0]["expr"]
    assert stalled[1]["for"] == "900s"


@pytest.mark.parametrize("window", ["15", "1 h", "-5m"])
def test_bad_window_is_rejected_naming_the_field(window: str) -> None:
    values = {
        "monitoring": {"prometheusRule": {"enabled": True, "restartStorm": {"window": window}}}
    }
    with pytest.raises(Exception, match="restartStorm/window"):
        r.render(values)
