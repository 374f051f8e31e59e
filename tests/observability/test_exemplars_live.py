"""The dashboard's request-latency panel links to traces: a real Prometheus (exemplar storage
on) scraping the real service with tracing on keeps exemplars of the request-duration
histogram, and each exemplar's trace id is a trace Jaeger holds, with the request's span."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from devstack.jaeger import JaegerEndpoints
from tests.integration.support import (
    TOKEN,
    event_bytes,
    new_topics,
    produce,
    running_service,
    service_env,
    wait_until,
)
from tests.observability.test_prometheus_live import Prometheus

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BUCKETS = "subscription_upserter_hubspot_request_duration_seconds_bucket"


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    running = start_in_thread(EmulatorConfig(tokens=frozenset({TOKEN}), latency_ms=20, seed=3))
    try:
        yield running
    finally:
        running.stop()


def _exemplars(prometheus: Prometheus) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{prometheus.url}/api/v1/query_exemplars",
        params={"query": BUCKETS, "start": "0", "end": "9999999999"},
        timeout=10,
    ).json()
    return [item for series in reply.get("data") or [] for item in series["exemplars"]]


def test_prometheus_keeps_trace_id_exemplars_of_request_durations_that_open_their_traces(
    kafka_bootstrap: str, emulator: RunningEmulator, jaeger: JaegerEndpoints, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap)
    name = f"upserter-{uuid.uuid4().hex[:8]}"
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_grpc,
        OTEL_SERVICE_NAME=name,
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    with running_service(env, tmp_path / "service.log") as service:
        prometheus = Prometheus(tmp_path, f"127.0.0.1:{env['HTTP_PORT']}", "exemplar-storage")
        try:
            wait_until(lambda: prometheus.value("up") == 1, 30, "the first scrape")
            produce(
                kafka_bootstrap,
                topics.input,
                [event_bytes(f"sub-{n}", hs_name="x") for n in range(20)],
            )
            wait_until(lambda: bool(_exemplars(prometheus)), 60, "an exemplar scraped")
            [first, *_] = _exemplars(prometheus)
        finally:
            prometheus.stop()
        assert service.stop() == 0

    trace_id = first["labels"]["trace_id"]
    trace = jaeger.query().wait_for_trace(trace_id, spans=2, timeout_s=30)
    [request] = [span for span in trace.spans if span.span_id == first["labels"]["span_id"]]
    assert request.name == "POST /crm/v3/objects/{objectType}/batch/upsert"
    assert request.service == name
