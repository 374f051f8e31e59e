"""The chart's alert rules, as rendered for a release: valid Prometheus rules whose promtool
unit tests pass, each carrying what an operator needs (severity, summary, description, a
runbook section, a `for`), and each selecting and aggregating by the release's namespace and
job, so two releases in one namespace never mix."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.artifacts import (
    ALERT_TESTS,
    JOB,
    NAMESPACE,
    REPO,
    load_rules,
    write_rule_file,
)

RUNBOOK = "https://github.com/example/subscription-upserter/blob/main/docs/runbook.md#"
DURATION = re.compile(r"^(\d+)([smh])$")
SELECTOR = re.compile(r"\b(up|subscription_upserter_[a-z_]+)\{([^}]*)\}")
AGGREGATION = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")
# The severities that mean action (the chart's defaults).
SEVERITIES = {
    "SubscriptionUpserterDown": "warning",  # one replica down, the others consume
    "SubscriptionUpserterAbsent": "critical",  # none up: nothing consumes
    "SubscriptionUpserterNotReady": "critical",  # none ready for 15 minutes
    "SubscriptionUpserterNoProgress": "critical",
    "SubscriptionUpserterLagGrowing": "warning",
    "SubscriptionUpserterAuthFailing": "critical",
    "SubscriptionUpserterDailyLimitNear": "warning",
    "SubscriptionUpserterDailyLimitReached": "warning",  # nothing lost; resumes at the reset
    "SubscriptionUpserterHubSpotErrorRate": "warning",
    "SubscriptionUpserterDeadLetters": "warning",
    "SubscriptionUpserterRateLimited": "warning",
}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required under CI (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus); CI requires it")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _unit_tests_against_rendered_rules(directory: Path) -> Path:
    """alerts_test.yaml, pointed at the rules the chart renders for release `upserter`."""
    write_rule_file(directory / "rendered-alerts.yaml")  # the name alerts_test.yaml uses
    tests = directory / "alerts_test.yaml"
    shutil.copyfile(ALERT_TESTS, tests)
    return tests


def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    result = _run(_promtool(), "check", "rules", str(write_rule_file(tmp_path / "rules.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_promtool_tests_expect(tmp_path: Path) -> None:
    result = _run(_promtool(), "test", "rules", str(_unit_tests_against_rendered_rules(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_cover_every_alert_firing_and_quiet() -> None:
    document = yaml.safe_load(ALERT_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in document["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in load_rules()}
    assert alerts - firing == set(), "alerts without a firing test"
    assert alerts - quiet == set(), "alerts without a quiet test"


def test_promtool_unit_tests_expect_each_alerts_severity() -> None:
    document = yaml.safe_load(ALERT_TESTS.read_text())
    seen: dict[str, set[str]] = {}
    for group in document["tests"]:
        for case in group["alert_rule_test"]:
            for alert in case["exp_alerts"]:
                seen.setdefault(case["alertname"], set()).add(alert["exp_labels"]["severity"])
    assert seen == {name: {severity} for name, severity in SEVERITIES.items()}


def test_the_default_severities_mean_action() -> None:
    assert {rule["alert"]: rule["labels"]["severity"] for rule in load_rules()} == SEVERITIES


def test_every_alert_has_severity_annotations_runbook_and_a_for_of_minutes() -> None:
    rules = load_rules()
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("SubscriptionUpserter"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert "${" not in rule["expr"] + annotations["description"], f"{name}: unfilled"
        assert annotations["runbook_url"] == RUNBOOK + name.lower(), name
        match = DURATION.match(rule["for"])
        assert match, name
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
        assert seconds >= 120, f"{name}: `for` of {rule['for']} is too short to be trusted"


def test_every_selector_and_aggregation_keeps_the_releases_namespace_and_job() -> None:
    for rule in load_rules():
        name, expr = rule["alert"], rule["expr"]
        selectors = SELECTOR.findall(expr)
        assert selectors, name
        for metric, labels in selectors:
            assert f'namespace="{NAMESPACE}"' in labels, f"{name}: {metric}{{{labels}}}"
            assert f'job="{JOB}"' in labels, f"{name}: {metric}{{{labels}}}"
        for grouping in AGGREGATION.findall(expr):
            kept = {label.strip() for label in grouping.split(",")}
            assert {"namespace", "job"} <= kept, f"{name}: by/on ({grouping})"


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (REPO / "docs" / "runbook.md").read_text()
    for rule in load_rules():
        assert f"\n## {rule['alert']}\n" in runbook, f"no runbook section for {rule['alert']}"
