"""Trace context read from Kafka headers: a malformed `traceparent` is ignored (the event is
processed, untraced), and nothing a span says quotes the token, a property value or an id."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.adapters.tracing import producer_context
from service.core.clock import FakeClock
from service.core.codec import decode_event
from service.core.model import Batch, BatchInput, Event, RawMessage, Rejection, Status
from service.core.offsets import OffsetTracker
from service.core.records import Topics
from service.loop.publisher import OutcomePublisher
from tests.unit.factories import LIMITS, event, raw
from tests.unit.fake_kafka import FakeSink
from tests.unit.fakes import FakeTransport, make_caller, ok_for
from tests.unit.tracing_support import producer, traced, traceparent, with_headers

VALID = traceparent(producer(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7))
MALFORMED = [
    b"",
    b"garbage",
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
    b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case
    b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
    b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # 00 with more
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\xff",  # not ASCII
    b"00-" + b"a" * 600,  # too long
]


def _input(n: int, found: Event) -> BatchInput:
    return BatchInput(found.id, found.id_property, f"t-{n}", found.properties, [found])


@pytest.mark.parametrize("header", MALFORMED)
def test_a_malformed_traceparent_reads_as_no_context(header: bytes) -> None:
    assert producer_context([("traceparent", header)]) is None


def test_a_valid_traceparent_is_read_with_its_tracestate() -> None:
    found = producer_context([("traceparent", VALID), ("tracestate", b"vendor=x")])
    assert found is not None
    assert (found.trace_id, found.span_id, found.is_remote) == (
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        True,
    )
    assert found.trace_state.to_header() == "vendor=x"
    assert producer_context([("tracestate", b"vendor=x")]) is None
    assert producer_context(None) is None


def test_events_with_malformed_traceparents_are_upserted_and_only_the_valid_one_links() -> None:
    events = []
    for offset, header in enumerate([*MALFORMED, VALID]):
        found = event(f"id-{offset}", offset, hs_name="x")
        found.raw = with_headers(found.raw, ("traceparent", header))
        events.append(found)
    inputs = [_input(n, e) for n, e in enumerate(events)]
    with traced() as spans:
        caller, _, _ = make_caller(FakeTransport(ok_for), tracing=spans.tracing)
        outcome = caller.execute(Batch(1, inputs, 0.0))
        process = spans.one("process")

    assert all(result.status is Status.UPSERTED for result in outcome.by_trace_id.values())
    assert len(outcome.by_trace_id) == len(events)
    assert [link.context.span_id for link in process.links] == [0x00F067AA0BA902B7]
    assert process.parent is None  # not every event has a producer context
    assert all(result.trace_headers for result in outcome.by_trace_id.values())


TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
VALUES = ("Platinum Plan With A Distinctive Name", "premium-tier-7781", "4242")


def _secretive_event(offset: int) -> Event:
    body = {"id": f"sub-secret-{offset}", "properties": dict(zip("abc", VALUES, strict=True))}
    found = decode_event(raw(body, offset, key=f"sub-secret-{offset}".encode()), LIMITS)
    assert isinstance(found, Event)
    found.raw = with_headers(found.raw, ("traceparent", VALID), ("authorization", TOKEN.encode()))
    return found


def _everything_said(spans: list[ReadableSpan]) -> str:
    """Each span as the SDK would export it: name, attributes, events, links, status, resource."""
    return "\n".join(span.to_json() for span in spans)


def test_no_span_quotes_the_token_a_property_value_an_id_or_a_key() -> None:
    events = [_secretive_event(1), _secretive_event(2)]
    inputs = [_input(n, e) for n, e in enumerate(events)]
    bad = RawMessage("subscription-events", 0, 3, b"sub-secret-3", orjson.dumps({"id": VALUES[0]}))
    rejection = decode_event(with_headers(bad, ("traceparent", VALID)), LIMITS)
    assert isinstance(rejection, Rejection)
    with traced() as spans:
        caller, _, _ = make_caller(FakeTransport(ok_for), tracing=spans.tracing)
        caller.execute(Batch(1, inputs, 0.0))
        spans.tracing.rejected(rejection)
        said = _everything_said(spans.spans())

    assert "process subscription-events" in said and "POST" in said  # what was looked at
    for secret in (TOKEN, *VALUES, "sub-secret"):
        assert secret not in said, secret


def test_an_unreadable_event_gets_a_failed_process_span_under_its_producer() -> None:
    bad = with_headers(raw(b"{not json", 5, key=b"k"), ("traceparent", VALID))
    rejection = decode_event(bad, LIMITS)
    assert isinstance(rejection, Rejection)
    sink = FakeSink()
    with traced() as spans:
        publisher = OutcomePublisher(
            sink=sink,
            tracker=OffsetTracker(),
            metrics=Metrics(CollectorRegistry()),
            clock=FakeClock(),
            topics=Topics("out", "dlq"),
            in_offset_order=False,
            tracing=spans.tracing,
        )
        publisher.rejection(rejection)
        span = spans.one("process")

    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7
    assert span.status.description == rejection.category
    assert dict(span.attributes or {})["messaging.kafka.offset"] == 5
    result, dead_letter = sink.records
    ours = traceparent(span.context)
    assert dict(result.headers or [])["traceparent"] == ours
    assert [value for name, value in dead_letter.headers or [] if name == "traceparent"] == [ours]
