"""/metrics answers in OpenMetrics when the scraper asks for it, with the request-duration
histogram's exemplars (a trace id a Grafana panel links to), and in the Prometheus text
format otherwise; both parse, every collector of the service's included."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from service.adapters.http_endpoints import HttpEndpoints
from service.adapters.prometheus import Metrics
from service.core.clock import FakeClock
from service.core.health import Health

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
DURATION = "subscription_upserter_hubspot_request_duration_seconds"


@pytest.fixture
def endpoint() -> Iterator[str]:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.request_seconds.observe(0.042, {"trace_id": TRACE_ID, "span_id": "00f067aa0ba902b7"})
    metrics.request_seconds.observe(0.7)
    metrics.end_to_end_seconds.observe_many([0.2, 0.3])
    metrics.ratelimit_max.set(190, 60)
    metrics.results.labels("upserted").inc()
    server = HttpEndpoints("127.0.0.1", 0, Health(FakeClock()), registry)
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.close()


def test_openmetrics_is_served_on_request_with_the_trace_id_exemplar(endpoint: str) -> None:
    reply = httpx.get(endpoint, headers={"Accept": OPENMETRICS})
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    parsed = text_string_to_metric_families(reply.text)  # type: ignore[no-untyped-call]
    families = {family.name: family for family in parsed}
    buckets = [s for s in families[DURATION].samples if s.name.endswith("_bucket")]
    exemplars = [s.exemplar for s in buckets if s.exemplar is not None]
    assert [(e.labels["trace_id"], e.value) for e in exemplars] == [(TRACE_ID, 0.042)]
    assert exemplars[0].timestamp is not None
    served = {"end_to_end_latency_seconds", "ready", "build", "results", "hubspot_ratelimit_max"}
    assert {f"subscription_upserter_{name}" for name in served} <= families.keys()


def test_the_text_format_stays_the_default_and_carries_no_exemplar(endpoint: str) -> None:
    reply = httpx.get(endpoint)
    assert reply.headers["content-type"].startswith("text/plain")
    assert "# {" not in reply.text
    names = {family.name for family in text_families(reply.text)}
    assert DURATION in names
