"""OpenTelemetry for the loop: the Tracing port of service/core/ports.py over the OpenTelemetry
API (spans.py), and the W3C trace context read from Kafka headers and written into records
(context.py). The SDK behind the tracer is built by service/entry/otel.py, only when tracing
is on; nothing here is imported otherwise (docs/tracing.md)."""

from service.adapters.tracing.context import log_fields, producer_context, trace_headers
from service.adapters.tracing.spans import OtelTracing, TracingTarget

__all__ = ["OtelTracing", "TracingTarget", "log_fields", "producer_context", "trace_headers"]
