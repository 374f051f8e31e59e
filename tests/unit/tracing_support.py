"""The real OpenTelemetry SDK with an in-memory exporter, for unit tests of what the spans
say (the Jaeger end-to-end test checks the same shape as a real backend stores it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.trace import SpanContext, TraceFlags

from service.adapters.tracing import OtelTracing, TracingTarget
from service.core.model import RawMessage

TARGET = TracingTarget(
    group="upserters",
    base_url="https://api.hubapi.com",
    path="/crm/v3/objects/subscriptions/batch/upsert",
    object_type="subscriptions",
)


@dataclass
class Traced:
    tracing: OtelTracing
    exporter: InMemorySpanExporter

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(self.exporter.get_finished_spans())
        return [span for span in found if name is None or span.name.startswith(name)]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.spans(name)
        return span


@contextmanager
def traced(sampler: Sampler = ALWAYS_ON) -> Iterator[Traced]:
    """OtelTracing over a provider that keeps every finished span in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield Traced(OtelTracing(provider.get_tracer("test"), TARGET), exporter)
    finally:
        provider.shutdown()


def producer(trace_id: int, span_id: int, sampled: bool = True) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)


def traceparent(context: SpanContext) -> bytes:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}".encode()


def with_headers(raw: RawMessage, *headers: tuple[str, bytes]) -> RawMessage:
    return raw._replace(headers=list(headers))


def hex_ids(context: SpanContext) -> tuple[str, str]:
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
