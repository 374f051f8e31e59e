"""One event followed from its producer to HubSpot and back, on the real broker, the HubSpot
emulator and a real Jaeger: the producer's span context goes in the events' headers, and
Jaeger then holds one trace in which the batch's `process` span is the producer span's child
and links to it, the HubSpot requests are the batch span's children (the retried one shows
both attempts), an unreadable event has a failed span of its own under the producer, and
every result record's `traceparent` belongs to that trace. No span, and no log line, quotes
the token or a property value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from devstack.emulator import RunningEmulator
from devstack.jaeger import JaegerEndpoints, Span, SpanLink, Trace
from tests.integration.support import (
    TOKEN,
    Consumed,
    new_topics,
    read_all,
    run_until_results,
    service_env,
)

pytestmark = [pytest.mark.kafka]

VALUES = ("Gold Plan Nine Hundred", "Silver Plan Eleven")
POST = "POST /crm/v3/objects/{objectType}/batch/upsert"


@pytest.fixture
def producer_tracer(jaeger: JaegerEndpoints) -> Iterator[TracerProvider]:
    """The upstream producer's own tracing, exporting each span as it ends."""
    resource = Resource.create({"service.name": f"upstream-{uuid.uuid4().hex[:8]}"})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=jaeger.otlp_grpc, insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def _produce_in_a_span(provider: TracerProvider, bootstrap: str, topic: str) -> str:
    """Two events and an unreadable one, produced inside one PRODUCER span whose context goes
    in their headers; returns the trace id."""
    messages = [
        (f"sub-{n}".encode(), orjson.dumps({"id": f"sub-{n}", "properties": {"hs_name": v}}))
        for n, v in enumerate(VALUES)
    ]
    messages.append((b"sub-bad", b"{not json"))
    tracer = provider.get_tracer("upstream")
    with tracer.start_as_current_span(f"publish {topic}", kind=SpanKind.PRODUCER) as span:
        carrier: dict[str, str] = {}
        inject(carrier)
        headers: list[tuple[str, str | bytes]] = [(k, v.encode()) for k, v in carrier.items()]
        client = Producer({"bootstrap.servers": bootstrap})
        for key, value in messages:
            client.produce(topic, key=key, value=value, headers=headers)
        assert client.flush(30) == 0
    return f"{span.get_span_context().trace_id:032x}"


def test_one_trace_from_the_producer_through_the_batch_and_its_requests_to_the_results(
    kafka_bootstrap: str,
    emulator: RunningEmulator,
    jaeger: JaegerEndpoints,
    producer_tracer: TracerProvider,
    tmp_path: Path,
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    service_name = f"upserter-{uuid.uuid4().hex[:8]}"
    trace_id = _produce_in_a_span(producer_tracer, kafka_bootstrap, topics.input)
    emulator.control.fault_next("503")
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_grpc,
        OTEL_SERVICE_NAME=service_name,
        # Sampling nothing of its own: the producer's sampled decision carries the trace.
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    log = run_until_results(env, tmp_path / "service.log", expected=3)

    trace = jaeger.query().wait_for_trace(trace_id, spans=5, timeout_s=30)
    producer = trace.span(f"publish {topics.input}")
    processing = trace.named(f"process {topics.input}")
    [batch] = [span for span in processing if span.tags.get("otel.status_code") != "ERROR"]
    [rejected] = [span for span in processing if span.tags.get("otel.status_code") == "ERROR"]
    for span in (batch, rejected):  # Jaeger's v1 API shows a parent also linked as the link
        assert span.links == (SpanLink(trace_id, producer.span_id),)
    stored = _as_stored(jaeger, trace_id)
    assert stored[batch.span_id]["parentSpanId"] == producer.span_id
    assert [_link(link) for link in stored[batch.span_id]["links"]] == [
        (producer.span_id, {"messaging.destination.partition.id": "0",
                            "messaging.kafka.offset": offset})
        for offset in (0, 1)
    ]  # fmt: skip
    assert stored[rejected.span_id]["parentSpanId"] == producer.span_id
    assert (batch.service, batch.kind) == (service_name, "consumer")
    assert batch.tags["messaging.system"] == "kafka"
    assert batch.tags["messaging.destination.name"] == topics.input
    assert batch.tags["messaging.batch.message_count"] == 2
    first, retry = sorted(trace.children(batch), key=lambda span: span.start_us)
    assert {first.name, retry.name} == {POST}
    assert (first.tags["http.response.status_code"], first.tags["error.type"]) == (503, "503")
    assert retry.tags["http.response.status_code"] == 200
    assert retry.tags["http.request.resend_count"] == 1
    assert rejected.tags["error.type"] == "NOT_JSON"

    results = read_all(kafka_bootstrap, topics.output)
    _assert_each_result_names_its_deciding_span(results, trace_id, retry, rejected)
    _assert_nothing_quotes_a_secret(trace, log, trace_id, batch)


def _as_stored(jaeger: JaegerEndpoints, trace_id: str) -> dict[str, dict[str, Any]]:
    """The trace's spans by id as Jaeger's /api/v3 keeps them (OTLP JSON): the parent and
    every link with its attributes, which /api/traces merges or leaves out."""
    reply = httpx.get(f"{jaeger.query_url}/api/v3/traces/{trace_id}", timeout=10)
    reply.raise_for_status()
    return {
        span["spanId"]: span
        for resource in reply.json()["result"]["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    }


def _link(link: dict[str, Any]) -> tuple[str, dict[str, object]]:
    values = {item["key"]: item["value"] for item in link.get("attributes", [])}
    return link["spanId"], {
        key: value.get("stringValue", int(value.get("intValue", -1)))
        for key, value in values.items()
    }


def _assert_each_result_names_its_deciding_span(
    results: list[Consumed], trace_id: str, retry: Span, rejected: Span
) -> None:
    deciding: dict[str, set[str]] = {}
    for record in results:
        version, found_trace, span_id, _flags = record.headers["traceparent"].decode().split("-")
        assert (version, found_trace) == ("00", trace_id)
        deciding.setdefault(str(record.json()["status"]), set()).add(span_id)
    assert deciding == {"upserted": {retry.span_id}, "invalid": {rejected.span_id}}


def _assert_nothing_quotes_a_secret(trace: Trace, log: str, trace_id: str, batch: Span) -> None:
    said = json.dumps(
        [[span.name, dict(span.tags), [dict(e.attributes) for e in span.events]]
         for span in trace.spans if span.service == batch.service]
    )  # fmt: skip
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    for secret in (TOKEN, *VALUES):
        assert secret not in said and secret not in log, secret
    [starting] = [line for line in lines if line["message"] == "starting"]
    assert str(starting["tracing"]).startswith("otlp grpc, sampler ParentBased{root:TraceIdRatio")
    retried = [line for line in lines if str(line["message"]).startswith("transient failure")]
    assert [(line["trace_id"], line["span_id"]) for line in retried] == [(trace_id, batch.span_id)]
