"""The OpenTelemetry SDK the service exports its spans with, built from the OTEL_* variables.

Imported only when tracing is on (service/entry/tracing.py decides). The SDK reads the
environment itself: the sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) in the
TracerProvider, the resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) in
Resource.create, the endpoint, headers, timeout, TLS and compression in the OTLP exporter,
the export batching in the BatchSpanProcessor (OTEL_BSP_*) and the span limits in SpanLimits
(OTEL_SPAN_*_LIMIT). What this module adds: the exporter of the chosen protocol, and the
service's name and version when the environment names none.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from service import __version__
from service.adapters.tracing import OtelTracing, TracingTarget, log_fields
from service.entry.settings import Settings
from service.entry.tracing import StartedTracing

SERVICE_NAME = "subscription-upserter"


def start(settings: Settings, protocol: str) -> StartedTracing:
    """A tracer provider exporting over OTLP `protocol`, and the Tracing port over it."""
    provider = TracerProvider(resource=resource(), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(_exporter(protocol)))
    tracer = provider.get_tracer(SERVICE_NAME, __version__)
    target = TracingTarget(
        group=settings.kafka_group_id,
        base_url=settings.hubspot_base_url,
        path=settings.upsert_path,
        object_type=settings.hubspot_object_type,
    )
    described = f"otlp {protocol}, sampler {provider.sampler.get_description()}"
    return StartedTracing(OtelTracing(tracer, target), log_fields, provider.shutdown, described)


def resource() -> Resource:
    """The environment's resource; named `subscription-upserter` and given the service's
    version unless the environment says otherwise."""
    detected = Resource.create()
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        detected = detected.merge(Resource({"service.name": SERVICE_NAME}))
    return Resource({"service.version": __version__}).merge(detected)


def _exporter(protocol: str) -> SpanExporter:
    if protocol == "http/protobuf":
        return HttpExporter()
    return GrpcExporter()
