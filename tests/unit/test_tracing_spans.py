"""What the spans of a batch say, with the real SDK in memory: the `process` span's parent,
links and messaging attributes, one client span per HTTP attempt under it, the rate-limit
wait, retries, errors, and which span's context each outcome carries."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from service.core.clock import FakeClock
from service.core.errors import TransientHubSpotError
from service.core.model import Batch, BatchInput, BatchOutcome, Event
from service.core.ratelimit import RateLimiter
from tests.unit.factories import event
from tests.unit.fakes import FakeTransport, make_caller, ok_for, reply
from tests.unit.tracing_support import (
    hex_ids,
    producer,
    traced,
    traceparent,
    with_headers,
)

PRODUCER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C


def _traced_event(event_id: str, offset: int, span_id: int, partition: int = 0) -> Event:
    found = event(event_id, offset, partition, hs_name=f"name of {event_id}")
    context = producer(PRODUCER_TRACE, span_id)
    found.raw = with_headers(found.raw, ("traceparent", traceparent(context)))
    return found


def _batch(*events: Event) -> Batch:
    inputs = [
        BatchInput(e.id, e.id_property, f"trace-{e.raw.offset}", e.properties, [e]) for e in events
    ]
    return Batch(7, inputs, 0.0)


def _traceparent_of(outcome: BatchOutcome) -> set[bytes]:
    return {dict(result.trace_headers)["traceparent"] for result in outcome.by_trace_id.values()}


def test_a_batch_of_one_producer_trace_is_its_child_links_every_event_and_says_where() -> None:
    events = [_traced_event("a", 10, 0x11), _traced_event("b", 11, 0x12)]
    with traced() as spans:
        caller, _, _ = make_caller(FakeTransport(ok_for), tracing=spans.tracing)
        outcome = caller.execute(_batch(*events))
        process, post = spans.one("process"), spans.one("POST")

    assert process.name == "process subscription-events"
    assert process.kind is SpanKind.CONSUMER
    assert process.parent is not None
    assert (process.parent.trace_id, process.parent.span_id) == (PRODUCER_TRACE, 0x11)
    assert process.context.trace_id == PRODUCER_TRACE
    linked = [(link.context.span_id, dict(link.attributes or {})) for link in process.links]
    assert linked == [
        (0x11, {"messaging.destination.partition.id": "0", "messaging.kafka.offset": 10}),
        (0x12, {"messaging.destination.partition.id": "0", "messaging.kafka.offset": 11}),
    ]
    attributes = dict(process.attributes or {})
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.destination.name"] == "subscription-events"
    assert attributes["messaging.destination.partition.id"] == "0"
    assert attributes["messaging.consumer.group.name"] == "upserters"
    assert attributes["messaging.batch.message_count"] == 2
    assert attributes["subscription_upserter.offsets"] == ("0:10-11",)
    assert attributes["subscription_upserter.results.upserted"] == 2
    assert post.parent is not None and post.parent.span_id == process.context.span_id
    assert post.kind is SpanKind.CLIENT
    assert post.name == "POST /crm/v3/objects/{objectType}/batch/upsert"
    assert dict(post.attributes or {})["http.response.status_code"] == 200
    assert "http.request.resend_count" not in (post.attributes or {})
    assert _traceparent_of(outcome) == {traceparent(post.context)}


def test_events_of_several_traces_make_a_root_span_linking_each_producer() -> None:
    first = _traced_event("a", 1, 0x21)
    other = event("b", 2, 1)
    other.raw = with_headers(other.raw, ("traceparent", traceparent(producer(0xBEEF, 0x22))))
    with traced() as spans:
        caller, _, _ = make_caller(FakeTransport(ok_for), tracing=spans.tracing)
        caller.execute(_batch(first, other))
        process = spans.one("process")

    assert process.parent is None
    assert [(link.context.trace_id, link.context.span_id) for link in process.links] == [
        (PRODUCER_TRACE, 0x21),
        (0xBEEF, 0x22),
    ]
    attributes = dict(process.attributes or {})
    assert "messaging.destination.partition.id" not in attributes  # two partitions
    assert attributes["subscription_upserter.offsets"] == ("0:1-1", "1:2-2")


def test_a_retried_request_is_two_client_spans_and_the_outcome_names_the_second() -> None:
    transport = FakeTransport(lambda _: reply(503, {"message": "busy"}), ok_for)
    with traced() as spans:
        caller, _, _ = make_caller(transport, tracing=spans.tracing)
        outcome = caller.execute(_batch(_traced_event("a", 1, 0x31)))
        process = spans.one("process")
        failed, passed = spans.spans("POST")

    assert {failed.parent.span_id, passed.parent.span_id} == {process.context.span_id}  # type: ignore[union-attr]
    assert dict(failed.attributes or {})["http.response.status_code"] == 503
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "503"
    assert dict(passed.attributes or {})["http.request.resend_count"] == 1
    assert passed.status.status_code is StatusCode.UNSET
    assert _traceparent_of(outcome) == {traceparent(passed.context)}


def test_a_transport_failure_names_its_cause_and_keeps_the_message() -> None:
    timeout = TransientHubSpotError("request timed out (ReadTimeout)")
    timeout.__cause__ = httpx.ReadTimeout("timed out")
    with traced() as spans:
        caller, _, _ = make_caller(FakeTransport(timeout, ok_for), tracing=spans.tracing)
        caller.execute(_batch(_traced_event("a", 1, 0x41)))
        failed = spans.spans("POST")[0]

    assert dict(failed.attributes or {})["error.type"] == "ReadTimeout"
    assert "http.response.status_code" not in (failed.attributes or {})
    assert failed.status.description == "request timed out (ReadTimeout)"


def test_the_rate_limit_wait_is_an_event_of_the_attempt_that_waited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 10.0, clock)
    with traced() as spans:
        caller, _, _ = make_caller(FakeTransport(ok_for), clock, limiter, tracing=spans.tracing)
        caller.execute(_batch(_traced_event("a", 1, 0x51)))
        caller.execute(_batch(_traced_event("b", 2, 0x52)))
        first, second = spans.spans("POST")

    assert first.events == ()
    [wait] = second.events
    assert wait.name == "rate_limit.wait"
    assert 9.0 <= float((wait.attributes or {})["wait_s"]) <= 10.5  # type: ignore[arg-type]


def test_the_request_duration_carries_the_sampled_attempts_trace_id_as_exemplar() -> None:
    with traced() as spans:
        caller, metrics, _ = make_caller(FakeTransport(ok_for), tracing=spans.tracing)
        caller.execute(_batch(_traced_event("a", 1, 0x61)))
        post = spans.one("POST")

    exemplars = [
        sample.exemplar.labels
        for family in metrics.registry.collect()
        if family.name == "subscription_upserter_hubspot_request_duration_seconds"
        for sample in family.samples
        if sample.exemplar is not None
    ]
    trace_id, span_id = hex_ids(post.context)
    assert exemplars == [{"trace_id": trace_id, "span_id": span_id}]


def test_unsampled_outcomes_still_carry_a_traceparent_but_no_exemplar() -> None:
    with traced(ALWAYS_OFF) as spans:
        caller, metrics, _ = make_caller(FakeTransport(ok_for), tracing=spans.tracing)
        outcome = caller.execute(_batch(event("a", 1)))
        assert spans.spans() == []

    [parent] = _traceparent_of(outcome)
    assert parent.startswith(b"00-")
    assert int(parent[-2:], 16) & 1 == 0  # the sampled flag is off
    samples = [
        sample
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.exemplar is not None
    ]
    assert samples == []


def test_an_error_escaping_the_batch_is_named_by_its_type_only() -> None:
    with traced() as spans:
        secret = RuntimeError("value of hs_name leaked into an error")
        caller, _, _ = make_caller(FakeTransport(secret), tracing=spans.tracing)
        with pytest.raises(RuntimeError):
            caller.execute(_batch(event("a", 1)))
        process, post = spans.one("process"), spans.one("POST")

    for span in (process, post):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "RuntimeError"
        assert dict(span.attributes or {})["error.type"] == "RuntimeError"
        assert span.events == ()
