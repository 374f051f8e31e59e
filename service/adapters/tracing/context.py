"""W3C trace context between Kafka headers and OpenTelemetry.

Owns reading an event's producer context from its headers (`traceparent`, `tracestate`; the
official propagator decides what is valid, and anything it refuses is ignored: the event is
processed untraced), choosing a batch's parent among its events' contexts, writing a span's
context as record headers, and naming the current span in log lines.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.core.model import TraceHeaders
from service.core.tracing import TRACE_CONTEXT_HEADERS, TRACEPARENT, TRACESTATE

_PROPAGATOR = TraceContextTextMapPropagator()


def producer_context(headers: list[tuple[str, bytes]] | None) -> SpanContext | None:
    """The trace context an event's headers carry; None when none, or a malformed one."""
    if not headers:
        return None
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in TRACE_CONTEXT_HEADERS:
            try:
                carrier[name] = value.decode("ascii")
            except UnicodeDecodeError:
                return None
    if TRACEPARENT not in carrier:
        return None
    found = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def parent_of(contexts: list[SpanContext | None]) -> Context:
    """The parent for a span over these events: the first one's producer, when every event
    has a producer context and all of them are of one trace; else none (an empty context,
    whatever span is current on the thread)."""
    first = contexts[0] if contexts else None
    if first is None or any(c is None or c.trace_id != first.trace_id for c in contexts):
        return Context()
    return trace.set_span_in_context(NonRecordingSpan(first))


def trace_headers(span: Span) -> TraceHeaders:
    """`span`'s context as record headers: `traceparent`, then `tracestate` if it has one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    names = (TRACEPARENT, TRACESTATE)
    return tuple((name, carrier[name].encode()) for name in names if name in carrier)


def ids(found: SpanContext) -> dict[str, str]:
    """The trace and span ids in the W3C (lower-case hex) form."""
    return {"trace_id": f"{found.trace_id:032x}", "span_id": f"{found.span_id:016x}"}


def log_fields() -> dict[str, str] | None:
    """`trace_id` and `span_id` of the thread's current span, for log lines (None: none)."""
    found = trace.get_current_span().get_span_context()
    return ids(found) if found.is_valid else None
