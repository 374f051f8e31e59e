"""OpenTelemetry spans for the loop (the Tracing port of service/core/ports.py).

Owns what the spans say: names, kinds, attributes, links and events, after the OpenTelemetry
semantic conventions for messaging and HTTP clients. Uses the OpenTelemetry API only: the SDK
behind the tracer (sampler, exporter, resource, all from the OTEL_* variables) is built by
service/entry/otel.py.

- `process {topic}` (CONSUMER): one per batch, on its worker thread. A link to each event's
  producer context (a valid `traceparent` header; a malformed one is ignored, the event is
  processed untraced); when every event carries one and all are of one trace, the first is
  also its parent, so producer, batch and requests are one trace.
- `POST {url.template}` (CLIENT): one per HTTP attempt, child of its batch's span.
- `process {topic}` for an event that could not be read (service/loop/publisher.py says why).

No attribute, event or status carries a property value, a key, the token or a URL query:
what the spans say is counts, offsets, partitions, statuses and error categories.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from service.adapters.tracing.context import ids, parent_of, producer_context, trace_headers
from service.core.model import Batch, BatchOutcome, Event, RawMessage, Rejection, TraceHeaders

Attributes = dict[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class TracingTarget:
    """What every span of this process shares: where events come from, and where they go."""

    group: str  # the consumer group
    base_url: str  # HUBSPOT_BASE_URL
    path: str  # the upsert path
    object_type: str  # its {objectType} segment

    def url_template(self) -> str:
        """The upsert path with its object type as `{objectType}`."""
        prefix = self.path.removesuffix(f"/{self.object_type}/batch/upsert")
        return prefix + "/{objectType}/batch/upsert"

    def http_attributes(self) -> Attributes:
        """The client span's fixed attributes: no user info, no query, the path as a template."""
        url = urlsplit(self.base_url)
        host = url.hostname or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        shown_host = f"[{host}]" if ":" in host else host
        return {
            "http.request.method": "POST",
            "url.template": self.url_template(),
            "url.full": f"{url.scheme}://{shown_host}:{port}{url.path}{self.path}",
            "server.address": host,
            "server.port": port,
        }


class OtelTracing:
    """The Tracing port over an OpenTelemetry tracer."""

    def __init__(self, tracer: trace.Tracer, target: TracingTarget) -> None:
        self._tracer = tracer
        self._group = target.group
        self._http = target.http_attributes()
        self._http_name = f"POST {target.url_template()}"

    def batch(self, batch: Batch) -> OtelBatchSpan:
        events = [event for item in batch.inputs for event in item.events]
        contexts = [producer_context(event.raw.headers) for event in events]
        links = [
            Link(found, _position(event.raw))
            for event, found in zip(events, contexts, strict=True)
            if found is not None
        ]  # the SDK keeps OTEL_SPAN_LINK_COUNT_LIMIT of them (128 by default)
        topic = events[0].raw.topic if events else ""
        span = self._tracer.start_span(
            f"process {topic}",
            context=parent_of(contexts),
            kind=SpanKind.CONSUMER,
            attributes=self._batch_attributes(batch, events),
            links=links,
        )
        return OtelBatchSpan(self._tracer, span, self._http_name, self._http)

    def rejected(self, rejection: Rejection) -> TraceHeaders:
        raw = rejection.raw
        producer = producer_context(raw.headers)
        attributes = {**self._messaging(raw.topic), **_position(raw)}
        attributes["error.type"] = rejection.category
        span = self._tracer.start_span(
            f"process {raw.topic}",
            context=parent_of([producer]),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=[Link(producer)] if producer is not None else (),
        )
        span.set_status(trace.Status(trace.StatusCode.ERROR, rejection.category))
        span.end()
        return trace_headers(span)

    def _messaging(self, topic: str) -> Attributes:
        return {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": self._group,
        }

    def _batch_attributes(self, batch: Batch, events: list[Event]) -> Attributes:
        offsets: dict[int, list[int]] = {}
        for event in events:
            raw = event.raw
            offsets.setdefault(raw.partition, []).append(raw.offset)
        topic = events[0].raw.topic if events else ""
        attributes = self._messaging(topic)
        attributes["messaging.batch.message_count"] = len(events)
        attributes["subscription_upserter.batch.seq"] = batch.seq
        attributes["subscription_upserter.batch.inputs"] = len(batch.inputs)
        attributes["subscription_upserter.offsets"] = [
            f"{partition}:{min(found)}-{max(found)}" for partition, found in sorted(offsets.items())
        ]
        if len(offsets) == 1:
            attributes["messaging.destination.partition.id"] = str(next(iter(offsets)))
        return attributes


class OtelBatchSpan:
    """A batch's `process` span, current on its worker thread between enter and exit."""

    def __init__(
        self, tracer: trace.Tracer, span: Span, http_name: str, http: Mapping[str, AttributeValue]
    ) -> None:
        self._tracer, self._span = tracer, span
        self._http_name, self._http = http_name, http
        self._requests = 0
        self._token: Token[Context] | None = None
        self._headers = trace_headers(span)

    def __enter__(self) -> OtelBatchSpan:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _close(self._span, self._token, error)

    def request(self, inputs: int, waited_s: float) -> OtelRequestSpan:
        attributes: Attributes = {**self._http, "subscription_upserter.request.inputs": inputs}
        if self._requests:
            attributes["http.request.resend_count"] = self._requests
        self._requests += 1
        span = self._tracer.start_span(
            self._http_name,
            context=trace.set_span_in_context(self._span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        if waited_s > 0:
            span.add_event("rate_limit.wait", {"wait_s": waited_s})
        return OtelRequestSpan(span)

    def finished(self, outcome: BatchOutcome) -> None:
        statuses = [result.status.value for result in outcome.by_trace_id.values()]
        for per_event in outcome.per_event.values():
            statuses += [result.status.value for _, result in per_event if result is not None]
        counts: Attributes = {
            f"subscription_upserter.results.{status}": statuses.count(status)
            for status in sorted(set(statuses))
        }
        counts["subscription_upserter.deferred"] = len(outcome.deferred)
        counts["subscription_upserter.handed_over"] = len(outcome.handed_over)
        self._span.set_attributes(counts)

    def headers(self) -> TraceHeaders:
        return self._headers


class OtelRequestSpan:
    """One HTTP attempt's client span, current on its thread between enter and exit."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: Token[Context] | None = None

    def __enter__(self) -> OtelRequestSpan:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _close(self._span, self._token, error)

    def replied(self, status: int) -> None:
        self._span.set_attribute("http.response.status_code", status)
        if status >= 400:
            _errored(self._span, str(status))

    def failed(self, error: BaseException) -> None:
        """The transport's failure: its cause's type (e.g. ReadTimeout) and its message,
        which the HubSpot adapter keeps free of secrets."""
        _errored(self._span, type(error.__cause__ or error).__name__, str(error))

    def exemplar(self) -> dict[str, str] | None:
        found = self._span.get_span_context()
        if not found.trace_flags.sampled:
            return None
        return ids(found)

    def headers(self) -> TraceHeaders:
        return trace_headers(self._span)


def _close(span: Span, token: Token[Context] | None, error: BaseException | None) -> None:
    """End `span`, no longer current; an error escaping it is named by its type only (its
    message could quote anything)."""
    if error is not None:
        _errored(span, type(error).__name__)
    if token is not None:
        otel_context.detach(token)
    span.end()


def _errored(span: Span, error_type: str, description: str | None = None) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(trace.Status(trace.StatusCode.ERROR, description or error_type))


def _position(raw: RawMessage) -> Attributes:
    return {
        "messaging.destination.partition.id": str(raw.partition),
        "messaging.kafka.offset": raw.offset,
    }
