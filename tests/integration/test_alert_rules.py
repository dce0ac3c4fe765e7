"""The shipped alert rules, proved by `promtool test rules` (Debian's `prometheus` package;
.ci/services installs it): each alert fires when it should, and a rule that stopped firing
fails its test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "prometheus"


def alert_names() -> list[str]:
    groups = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"]]


def promtool_test(directory: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's prometheus package (.ci/services does)"
    return subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=directory,
                          capture_output=True, text=True, timeout=60)


def test_every_alert_fires_when_it_should():
    result = promtool_test(RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test():
    tests = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]
              if case["exp_alerts"]}
    assert set(alert_names()) <= tested


@pytest.mark.parametrize("alert", alert_names())
def test_a_rule_that_never_fires_fails_its_test(alert, tmp_path):
    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == alert:
                rule["expr"] = "vector(1) > 2"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(RULES_DIR / "alerts_test.yml", tmp_path)
    result = promtool_test(tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}," in result.stdout + result.stderr
