"""The alert rules are valid Prometheus rules, their unit tests pass, and each alert carries
what an operator needs (severity, summary, description, runbook link, a `for`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.observability.artifacts import ALERT_TESTS, ALERTS, REPO, load_rules

RUNBOOK = "https://github.com/example/subscription-upserter/blob/main/README.md#"
DURATION = re.compile(r"^(\d+)([smh])$")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required under CI (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus); CI requires it")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_rule_file() -> None:
    result = _run(_promtool(), "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_promtool_tests_expect() -> None:
    result = _run(_promtool(), "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_cover_every_alert_firing_and_quiet() -> None:
    import yaml

    document = yaml.safe_load(ALERT_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in document["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in load_rules()}
    assert alerts - firing == set(), "alerts without a firing test"
    assert alerts - quiet == set(), "alerts without a quiet test"


def test_every_alert_has_severity_annotations_runbook_and_a_for_of_minutes() -> None:
    rules = load_rules()
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("SubscriptionUpserter"), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == RUNBOOK + name.lower(), name
        match = DURATION.match(rule["for"])
        assert match, name
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
        assert seconds >= 120, f"{name}: `for` of {rule['for']} is too short to be trusted"


def test_every_alert_has_a_runbook_section() -> None:
    texts = [
        path.read_text()
        for path in (REPO / "README.md", REPO / "docs" / "observability.md")
        if path.exists()
    ]
    for rule in load_rules():
        heading = f"### {rule['alert']}\n"
        assert any(heading in text for text in texts), f"no runbook heading for {rule['alert']}"
