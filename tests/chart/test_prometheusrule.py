"""The PrometheusRule (templates/prometheusrule.yaml): promtool checks and tests every alert.

Every alert about one TrainingJob names it (``namespace``, ``rekindle_job``);
every alert has a runbook under docs/runbooks/ that says what to do.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import rendering as r
from tests.support.deps import REPO_ROOT, need_tool

UNIT_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yaml"
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
RUNBOOK_BASE = "https://github.com/rekindle-dev/rekindle/blob/main/docs/runbooks"
#: Alert -> its values key and its runbook page.
ALERTS = {
    "RekindleJobFailed": ("jobFailed", "job-failed.md"),
    "RekindleRestartStorm": ("restartStorm", "restart-storm.md"),
    "RekindleJobPending": ("jobPending", "job-pending.md"),
    "RekindleCheckpointOverdue": ("checkpointOverdue", "checkpoint-overdue.md"),
    "RekindleTrainingStalled": ("trainingStalled", "training-stalled.md"),
    "RekindleOperatorDown": ("operatorDown", "operator-down.md"),
    "RekindleAPIErrors": ("apiErrors", "api-errors.md"),
}
#: Alerts about the operator rather than one TrainingJob.
OPERATOR_ALERTS = {"RekindleOperatorDown", "RekindleAPIErrors"}


def _rule(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rendered PrometheusRule with the rule (and the ServiceMonitor) enabled."""
    return r.one(r.objects(r.merge(r.RULES_ON, values or {})), "PrometheusRule")


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
    assert {alert for alert, _ in rules} == set(ALERTS)
    tested: set[tuple[str, str | None]] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check["exp_alerts"]:
                tested.add((check["alertname"], alert["exp_labels"].get("since")))
    assert rules == tested


def test_every_alert_has_a_quiet_unit_test() -> None:
    """Each alert is also evaluated where it must not fire (an empty ``exp_alerts``)."""
    quiet = {
        check["alertname"]
        for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for check in case.get("alert_rule_test", [])
        if not check["exp_alerts"]
    }
    assert quiet == set(ALERTS)


def test_each_alert_has_severity_summary_description_and_a_runbook() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        page = ALERTS[rule["alert"]][1]
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}/{page}"


def test_every_runbook_says_what_it_means_and_what_to_do() -> None:
    for alert, (_, page) in ALERTS.items():
        text = (RUNBOOKS / page).read_text()
        assert text.startswith(f"# {alert}\n"), page
        for section in ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation"):
            assert section in text, (page, section)
        assert "```" in text, f"{page}: no command to run"


def test_job_alerts_name_the_job_and_are_warnings_by_default() -> None:
    """Grouped by namespace and rekindle_job, so a route reaches the job's owners."""
    for rule in _rules():
        if rule["alert"] in OPERATOR_ALERTS:
            continue
        assert "by (namespace, rekindle_job)" in rule["expr"], rule["alert"]
        assert "$labels.rekindle_job" in rule["annotations"]["summary"], rule["alert"]
        assert rule["labels"]["severity"] == "warning", rule["alert"]


def test_runbook_base_url_from_values() -> None:
    values = {"monitoring": {"prometheusRule": {"runbookBaseURL": "https://wiki.example.com/rb/"}}}
    for rule in _rules(values):
        assert rule["annotations"]["runbook_url"].startswith("https://wiki.example.com/rb/")
        assert "//" not in rule["annotations"]["runbook_url"].removeprefix("https://")


def test_alerts_can_be_switched_off_one_by_one() -> None:
    for alert, (key, _) in ALERTS.items():
        values = {"monitoring": {"prometheusRule": {key: {"enabled": False}}}}
        names = {rule["alert"] for rule in _rules(values)}
        assert names == set(ALERTS) - {alert}


def test_operator_down_needs_the_service_monitor_that_names_the_operator() -> None:
    values = {"monitoring": {"prometheusRule": {"enabled": True}}}
    rule = r.one(r.objects(values), "PrometheusRule")
    names = {item["alert"] for group in rule["spec"]["groups"] for item in group["rules"]}
    assert names == set(ALERTS) - {"RekindleOperatorDown"}
    (down,) = [item for item in _rules() if item["alert"] == "RekindleOperatorDown"]
    service = r.one(r.objects({}), "Service")["metadata"]
    assert f'up{{job="{service["name"]}", namespace="{service["namespace"]}"}}' in down["expr"]


def test_thresholds_and_labels_come_from_values() -> None:
    values = {
        "monitoring": {
            "prometheusRule": {
                "alertLabels": {"team": "ml-platform", "severity": "ignored"},
                "labels": {"release": "kube-prometheus-stack"},
                "restartStorm": {"restarts": 5, "window": "30m"},
                "jobPending": {"afterSeconds": 600},
                "checkpointOverdue": {"afterSeconds": 7200, "severity": "critical"},
                "trainingStalled": {"afterSeconds": 900},
                "operatorDown": {"for": "2m"},
                "apiErrors": {"errors": 50, "window": "1h"},
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
    assert "[30m:1m]" in storm["expr"]
    assert by_alert["RekindleJobPending"][0]["for"] == "600s"
    assert by_alert["RekindleOperatorDown"][0]["for"] == "2m"
    errors = by_alert["RekindleAPIErrors"][0]
    assert errors["expr"].rstrip().endswith(">= 50")
    assert "[1h]" in errors["expr"]
    assert "offset 1h" in errors["expr"]
    overdue = by_alert["RekindleCheckpointOverdue"]
    assert "> 7200" in overdue[0]["expr"]
    assert overdue[1]["for"] == "7200s"
    assert {o["labels"]["severity"] for o in overdue} == {"critical"}
    stalled = by_alert["RekindleTrainingStalled"]
    assert "> 900" in stalled[0]["expr"]
    assert stalled[1]["for"] == stalled[2]["for"] == "900s"


@pytest.mark.parametrize("window", ["15", "1 h", "-5m"])
def test_bad_window_is_rejected_naming_the_field(window: str) -> None:
    values = {
        "monitoring": {"prometheusRule": {"enabled": True, "restartStorm": {"window": window}}}
    }
    with pytest.raises(Exception, match="restartStorm/window"):
        r.render(values)
