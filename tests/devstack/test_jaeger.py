"""The local Jaeger: takes spans over OTLP (gRPC and HTTP) from the OpenTelemetry SDK, and
the query helper reads back their shape: parents, links, kinds, attributes, events, status."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from devstack.jaeger import JaegerEndpoints, LocalJaeger, Span, SpanLink, Trace
from devstack.proc import DevstackError
from tests.devstack.procfs import listening_addresses


@pytest.fixture
def service_name() -> str:
    """A service name unique to the test, so queries by service see only its traces."""
    return f"devstack-test-{uuid.uuid4().hex[:12]}"


def _provider(exporter: SpanExporter, service_name: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def grpc_provider(jaeger: JaegerEndpoints, service_name: str) -> Iterator[TracerProvider]:
    """A tracer provider exporting each span as it ends over OTLP gRPC; shut down after."""
    provider = _provider(GrpcExporter(endpoint=jaeger.otlp_grpc, insecure=True), service_name)
    yield provider
    provider.shutdown()


def _hex(context: SpanContext) -> tuple[str, str]:
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def test_a_linked_batch_trace_comes_back_with_its_shape(
    jaeger: JaegerEndpoints, grpc_provider: TracerProvider, service_name: str
) -> None:
    tracer = grpc_provider.get_tracer("devstack.test")
    with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as producer:
        producer_ids = _hex(producer.get_span_context())
    batch_attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.batch.message_count": 1,
    }
    with tracer.start_as_current_span(
        "process",
        kind=SpanKind.CONSUMER,
        links=[Link(producer.get_span_context())],
        attributes=batch_attributes,
    ) as batch:
        batch.add_event("rate_limit.wait", {"wait_ms": 25})
        with tracer.start_as_current_span(
            "POST", kind=SpanKind.CLIENT, attributes={"http.response.status_code": 200}
        ):
            pass
    trace_id, batch_id = _hex(batch.get_span_context())

    trace = jaeger.query().wait_for_trace(trace_id, spans=2)

    process, post = trace.span("process"), trace.span("POST")
    assert process.span_id == batch_id
    assert trace.roots() == [process]
    assert trace.children(process) == [post]
    assert process.links == (SpanLink(*producer_ids),)  # into the producer's own trace
    assert (process.kind, post.kind) == ("consumer", "client")
    assert {k: process.tags[k] for k in batch_attributes} == batch_attributes
    assert post.tags["http.response.status_code"] == 200
    assert [(e.name, dict(e.attributes)) for e in process.events] == [
        ("rate_limit.wait", {"wait_ms": 25})
    ]
    assert {span.service for span in trace.spans} == {service_name}
    assert process.resource["telemetry.sdk.language"] == "python"
    assert 0 <= process.start_us <= post.start_us
    assert process.duration_us >= post.duration_us


def test_traces_by_service_and_services(
    jaeger: JaegerEndpoints, grpc_provider: TracerProvider, service_name: str
) -> None:
    tracer = grpc_provider.get_tracer("devstack.test")
    ids = set()
    for name in ("first", "second"):
        with tracer.start_as_current_span(name) as span:
            ids.add(_hex(span.get_span_context())[0])

    traces = jaeger.query().wait_for_traces(service_name, count=2)

    assert {trace.trace_id for trace in traces} == ids
    assert service_name in jaeger.query().services()
    only_second = jaeger.query().traces(service_name, operation="second")
    assert [[span.name for span in trace.spans] for trace in only_second] == [["second"]]


def test_a_span_over_otlp_http_keeps_its_error_status(
    jaeger: JaegerEndpoints, service_name: str
) -> None:
    provider = _provider(HttpExporter(endpoint=jaeger.otlp_http + "/v1/traces"), service_name)
    try:
        with provider.get_tracer("devstack.test").start_as_current_span("call") as span:
            span.set_status(Status(StatusCode.ERROR, "HubSpot answered 503"))
    finally:
        provider.shutdown()

    trace = jaeger.query().wait_for_trace(_hex(span.get_span_context())[0])

    tags = trace.span("call").tags
    assert tags["otel.status_code"] == "ERROR"
    assert tags["otel.status_description"] == "HubSpot answered 503"
    assert tags["error"] is True


def test_unknown_traces_and_services_are_empty_answers(jaeger: JaegerEndpoints) -> None:
    query = jaeger.query()
    assert query.trace(uuid.uuid4().hex) is None
    assert query.traces(f"never-{uuid.uuid4().hex}") == []
    with pytest.raises(DevstackError, match=r"no trace [0-9a-f]{32} with 1 span\(s\) after 0.3s"):
        query.wait_for_trace(uuid.uuid4().hex, timeout_s=0.3)


def test_the_local_jaeger_listens_on_loopback_only(local_jaeger: LocalJaeger | None) -> None:
    if local_jaeger is None:
        pytest.skip("an external Jaeger's sockets are not ours to inspect")
    assert local_jaeger.pid is not None
    ports = local_jaeger.ports
    assert listening_addresses(local_jaeger.pid) == {
        ("127.0.0.1", port)
        for port in (ports.otlp_grpc, ports.otlp_http, ports.query_http, ports.query_grpc)
    }


def _span(name: str, span_id: str, parent_id: str | None) -> Span:
    return Span(
        trace_id="t",
        span_id=span_id,
        name=name,
        service="s",
        parent_id=parent_id,
        links=(),
        tags={},
        events=(),
        resource={},
        start_us=0,
        duration_us=0,
    )


def test_a_missing_or_repeated_span_name_is_a_lookup_error_naming_the_spans() -> None:
    trace = Trace("t", (_span("a", "1", None), _span("b", "2", "1"), _span("b", "3", "1")))
    with pytest.raises(LookupError, match=r"0 spans named 'c' in trace t: \['a', 'b', 'b'\]"):
        trace.span("c")
    with pytest.raises(LookupError, match="2 spans named 'b'"):
        trace.span("b")
    assert [span.span_id for span in trace.children(trace.span("a"))] == ["2", "3"]
