"""The chart's PrometheusRule: valid for promtool, and each alert fires when (and only when) it
should, per tests/deploy/alerts_test.yaml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import render_chart, tool

ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
RULE_VALUES = {"metrics": {"prometheusRule": {"enabled": True}}}


def rule_spec(values: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = render_chart(values or RULE_VALUES).one("PrometheusRule")["spec"]
    return spec


def alerts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_spec(), sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    return tmp_path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules(rules_dir: Path) -> None:
    result = promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


def test_alerts_fire_as_the_unit_tests_expect(rules_dir: Path) -> None:
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_broken_alert(rules_dir: Path) -> None:
    """Without the probe exclusion, a draining pod's /readyz 503s would page: the tests see it."""
    rules = (rules_dir / "rules.yaml").read_text()
    broken = rules.replace(',route!~"/healthz|/readyz|/metrics"', "")
    assert broken != rules
    (rules_dir / "rules.yaml").write_text(broken)
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=rules_dir)
    assert result.returncode != 0
    assert "ChatkitBackendHTTP5xx" in result.stdout + result.stderr


def test_every_alert_has_a_firing_unit_test() -> None:
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    silent = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if not check.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alerts(rule_spec())}
    assert names == {
        "ChatkitBackendErrorBudgetBurnFast",
        "ChatkitBackendErrorBudgetBurnSlow",
        "ChatkitBackendTimeToFirstTokenHigh",
        "ChatkitBackendNoReadyPods",
        "ChatkitBackendTargetsDown",
        "ChatkitBackendProviderErrors",
        "ChatkitBackendProviderMisconfigured",
        "ChatkitBackendProviderRateLimited",
        "ChatkitBackendHTTP5xx",
    }
    assert fired == names
    # Most also have a case where they must stay silent.
    assert len(silent & names) >= 6


def test_every_alert_carries_severity_summary_and_description() -> None:
    spec = rule_spec(
        {
            "metrics": {
                "prometheusRule": {
                    "enabled": True,
                    "alertLabels": {"team": "platform"},
                    "runbookUrl": "https://runbooks.example.com/chatkit#",
                }
            }
        }
    )
    for rule in alerts(spec):
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["labels"]["team"] == "platform"
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert rule["annotations"]["runbook_url"] == (
            f"https://runbooks.example.com/chatkit#{rule['alert']}"
        )


def test_thresholds_come_from_values() -> None:
    spec = rule_spec(
        {
            "metrics": {
                "prometheusRule": {
                    "enabled": True,
                    "turnSuccessObjective": 0.995,
                    "timeToFirstTokenP99Seconds": 30,
                    "http5xxRatio": 0.02,
                }
            }
        }
    )
    by_name = {rule["alert"]: rule["expr"] for rule in alerts(spec)}
    assert "(14.4 * (1 - 0.995))" in by_name["ChatkitBackendErrorBudgetBurnFast"]
    assert ") > 30\n" in by_name["ChatkitBackendTimeToFirstTokenHigh"]
    assert by_name["ChatkitBackendHTTP5xx"].rstrip().endswith("> 0.02")


def test_rules_select_only_this_release() -> None:
    spec = rule_spec()
    for group in spec["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            name = rule.get("alert") or rule.get("record")
            if name == "ChatkitBackendNoReadyPods":
                assert 'namespace="chatkit",deployment="chatkit-backend"' in expr
            else:
                assert 'namespace="chatkit",job="chatkit-backend"' in expr, name
