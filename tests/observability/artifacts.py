"""The observability artifacts (dashboard, alert rules) loaded for tests, and the metric names
the service exports, so tests compare what operators query with what the service serves."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics

REPO = Path(__file__).resolve().parents[2]
CHART_FILES = REPO / "helm" / "subscription-upserter" / "files"
DASHBOARD = CHART_FILES / "dashboard.json"
ALERTS = CHART_FILES / "alerts.yaml"
ALERT_TESTS = Path(__file__).resolve().parent / "alerts_test.yaml"
METRIC_NAME = re.compile(r"subscription_upserter_[a-z_]+")

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


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
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
