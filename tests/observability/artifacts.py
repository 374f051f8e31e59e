"""The observability artifacts (dashboard, alert rules) loaded for tests, and the metric names
the service exports, so tests compare what operators query with what the service serves.

The alert rules are the chart's: rendered with `helm template` (the PrometheusRule of a
release RELEASE in NAMESPACE, required values from the chart's ci/default-values.yaml), as a
cluster would get them.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from tests.packaging.helm_tool import ensure_helm, required_tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "subscription-upserter"
CHART_FILES = CHART / "files"
DASHBOARD = CHART_FILES / "dashboard.json"
ALERT_TESTS = Path(__file__).resolve().parent / "alerts_test.yaml"
METRIC_NAME = re.compile(r"subscription_upserter_[a-z_]+")
# The release the promtool tests' series belong to: its job label is the full name.
RELEASE = "upserter"
NAMESPACE = "prod"
JOB = "upserter-subscription-upserter"

_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "summary": ("_sum", "_count", "_created", ""),
}


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from (a panel target or an alert)."""

    origin: str
    expr: str


def exported_metric_names() -> set[str]:
    """Every series name `Metrics` can export, labelled children or not."""
    registry = CollectorRegistry()
    Metrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES[family.type])
    return names


def referenced_metric_names(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


def unknown_metric_names(queries: list[Query], exported: set[str]) -> dict[str, set[str]]:
    """Per query origin, the metric names it uses that the service does not export."""
    unknown: dict[str, set[str]] = {}
    for query in queries:
        missing = referenced_metric_names(query.expr) - exported
        if missing:
            unknown.setdefault(query.origin, set()).update(missing)
    return unknown


def load_dashboard() -> dict[str, Any]:
    document = json.loads(DASHBOARD.read_text())
    assert isinstance(document, dict)
    return document


@functools.cache
def rendered_rule_groups(namespace: str = NAMESPACE, *settings: str) -> dict[str, Any]:
    """The `spec` (rule groups) of the chart's PrometheusRule for release RELEASE in
    `namespace`; `settings` are extra values, `key=<JSON>` (helm's --set-json)."""
    helm = required_tool(ensure_helm, "helm")
    overrides = [arg for setting in settings for arg in ("--set-json", setting)]
    result = subprocess.run(
        [str(helm), "template", RELEASE, str(CHART), "--namespace", namespace,
         "--values", str(CHART / "ci" / "default-values.yaml"),
         "--set", "prometheusRule.enabled=true", *overrides,
         "--show-only", "templates/prometheusrule.yaml", "--kube-version", "1.33.0"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    spec: dict[str, Any] = yaml.safe_load(result.stdout)["spec"]
    return spec


def write_rule_file(path: Path, namespace: str = NAMESPACE) -> Path:
    """The rendered rule groups as a Prometheus rule file at `path`."""
    path.write_text(yaml.safe_dump(rendered_rule_groups(namespace), sort_keys=False))
    return path


def load_rules(namespace: str = NAMESPACE, *settings: str) -> list[dict[str, Any]]:
    document = rendered_rule_groups(namespace, *settings)
    return [rule for group in document["groups"] for rule in group["rules"]]


def panel_queries(dashboard: dict[str, Any]) -> list[Query]:
    return [
        Query(f"panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[Query]:
    return [
        Query(f"variable {variable['name']}", variable["query"]["query"])
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]


def alert_queries(rules: list[dict[str, Any]]) -> list[Query]:
    return [Query(f"alert {rule['alert']}", rule["expr"]) for rule in rules if "alert" in rule]
