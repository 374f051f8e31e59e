"""The dashboard and the alert rules only name metrics the service exports, and the dashboard
has the structure the Grafana sidecar and operators rely on."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.observability.artifacts import (
    Query,
    alert_queries,
    exported_metric_names,
    load_dashboard,
    load_rules,
    panel_queries,
    referenced_metric_names,
    unknown_metric_names,
    variable_queries,
)

FILTER = ('namespace=~"$namespace"', 'pod=~"$pod"')
SELECTOR = re.compile(r"(?:subscription_upserter|process)_[a-z_]+\{([^}]*)\}")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The health row's stats, left to right: what on-call looks at first.
HEALTH = [
    "Ready replicas",
    "Consuming partitions",
    "Daily budget left",
    "Error ratio",
    "Oldest unfinished event",
]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def test_exported_names_include_suffixed_series_of_every_kind() -> None:
    exported = exported_metric_names()
    assert {
        "subscription_upserter_events_consumed_total",
        "subscription_upserter_results_total",
        "subscription_upserter_batch_inputs_bucket",
        "subscription_upserter_batch_inputs_count",
        "subscription_upserter_consumer_lag",
        "subscription_upserter_build_info",
    } <= exported
    assert "subscription_upserter_events_consumed" not in exported


def test_a_query_naming_an_unexported_metric_is_reported() -> None:
    queries = [
        Query("good", "rate(subscription_upserter_events_consumed_total[1m])"),
        Query("bad", "rate(subscription_upserter_events_processed_total[1m])"),
    ]
    assert unknown_metric_names(queries, exported_metric_names()) == {
        "bad": {"subscription_upserter_events_processed_total"}
    }


def test_dashboard_names_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    queries = panel_queries(dashboard) + variable_queries(dashboard)
    assert unknown_metric_names(queries, exported_metric_names()) == {}


def test_alert_rules_name_only_exported_metrics() -> None:
    assert unknown_metric_names(alert_queries(load_rules()), exported_metric_names()) == {}


def test_every_panel_and_alert_queries_some_service_metric(dashboard: dict[str, Any]) -> None:
    queries = panel_queries(dashboard) + alert_queries(load_rules())
    assert len(queries) > 20
    without = [
        q.origin
        for q in queries
        if not referenced_metric_names(q.expr) and not re.search(r"\bup\{", q.expr)
    ]
    assert without == []


def test_dashboard_has_a_stable_uid_and_recent_schema(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "subscription-upserter"
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["title"]


def test_dashboard_variables_pick_datasource_namespace_and_pod(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    namespace = variables["namespace"]["query"]["query"]
    pod = variables["pod"]["query"]["query"]
    assert namespace == "label_values(subscription_upserter_build_info, namespace)"
    assert pod.startswith("label_values(subscription_upserter_build_info{")
    assert pod.endswith(", pod)") and '"$namespace"' in pod
    for name in ("namespace", "pod"):
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"


def _charts(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that show data (rows only group them)."""
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_every_panel_has_a_description_a_unit_and_the_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in _charts(dashboard):
        title = panel["title"]
        assert panel.get("description", "").strip(), title
        assert panel["fieldConfig"]["defaults"].get("unit"), title
        assert panel["datasource"] == DATASOURCE, title
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, title


def test_every_metric_selector_in_the_panels_filters_by_namespace_and_pod(
    dashboard: dict[str, Any],
) -> None:
    for query in panel_queries(dashboard):
        selectors = SELECTOR.findall(query.expr)
        assert selectors, query.origin
        for labels in selectors:
            assert all(part in labels for part in FILTER), f"{query.origin}: {{{labels}}}"


def test_dashboard_covers_the_operators_questions(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(q.expr for q in panel_queries(dashboard))
    for metric in (
        "events_consumed_total",
        "results_total",
        "hubspot_ratelimit_max",
        "batch_inputs_bucket",
        "hubspot_request_duration_seconds_bucket",
        "hubspot_requests_total",
        "hubspot_rate_limited_total",
        "hubspot_retries_total",
        "consumer_lag",
        "dead_letters_total",
        "in_flight_batches",
        "buffered_events",
        "buffered_bytes",
        "paused_partitions",
        "end_to_end_latency_seconds_bucket",
        "hubspot_daily_remaining",
        "ready",
    ):
        assert f"subscription_upserter_{metric}{{" in exprs, metric
    for metric in ("cpu_seconds_total", "resident_memory_bytes", "start_time_seconds"):
        assert f"process_{metric}{{" in exprs, metric


def test_the_dashboard_opens_on_a_health_row(dashboard: dict[str, Any]) -> None:
    first, *rest = dashboard["panels"]
    assert first["type"] == "row" and first["title"] == "Health"
    assert first["gridPos"]["y"] == 0
    row_height = first["gridPos"]["h"]
    stats = [p for p in rest if p["gridPos"]["y"] == row_height]
    assert [p["title"] for p in sorted(stats, key=lambda p: p["gridPos"]["x"])] == HEALTH
    assert all(p["type"] == "stat" for p in stats)
    assert sum(p["gridPos"]["w"] for p in stats) == 24
    below = [p for p in rest if p not in stats]
    assert min(p["gridPos"]["y"] for p in below) >= row_height + stats[0]["gridPos"]["h"]


def test_process_panels_show_only_the_services_own_pods(dashboard: dict[str, Any]) -> None:
    # process_* series come from every Python (or Go) process in the namespace: each query
    # keeps those of pods that report the service's build info.
    process = [q for q in panel_queries(dashboard) if "process_" in q.expr]
    assert len(process) == 3
    for query in process:
        assert "and on (namespace, pod) subscription_upserter_build_info{" in query.expr


def test_the_request_latency_panel_shows_exemplars_linking_to_traces(
    dashboard: dict[str, Any],
) -> None:
    duration = "subscription_upserter_hubspot_request_duration_seconds_bucket{"
    latency = [
        panel
        for panel in dashboard["panels"]
        if any(duration in target.get("expr", "") for target in panel.get("targets", []))
    ]
    assert [panel["title"] for panel in latency] == ["HubSpot request latency"]
    assert all(target.get("exemplar") is True for target in latency[0]["targets"])
    assert "exemplar" in latency[0]["description"]
