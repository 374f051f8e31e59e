"""The trace context outcome records carry (pure core): with tracing on, a result carries the
deciding span's `traceparent` (and `tracestate`) and its event's `baggage`; a dead letter
keeps its event's headers but with the deciding span's context in place of the producer's;
with tracing off, nothing changes."""

from __future__ import annotations

from service.core.batch_run import BatchRun
from service.core.model import (
    Batch,
    BatchInput,
    BatchOutcome,
    ErrorInfo,
    InputOutcome,
    Rejection,
    Status,
)
from service.core.records import (
    DEAD_LETTER_HEADERS,
    Topics,
    records_for_input,
    records_for_rejection,
)
from service.entry.redrive import republished_headers
from tests.unit.factories import event, raw

TOPICS = Topics("results", "dlq")
DECIDED = (("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"), ("tracestate", b"us=1"))
PRODUCER = b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"
EVENT_HEADERS = [
    ("traceparent", PRODUCER),
    ("tracestate", b"them=2"),
    ("baggage", b"tenant=acme"),
    ("origin", b"billing"),
]


def _input() -> BatchInput:
    found = event("sub-1", 4, hs_name="x")
    found.raw = found.raw._replace(headers=list(EVENT_HEADERS))
    return BatchInput(found.id, found.id_property, "t-1", found.properties, [found])


def test_a_result_carries_the_deciding_span_and_its_events_baggage() -> None:
    outcome = InputOutcome(Status.UPSERTED, trace_headers=DECIDED)
    [[result]] = records_for_input(_input(), outcome, TOPICS)
    assert result.headers == [*DECIDED, ("baggage", b"tenant=acme")]


def test_a_dead_letter_takes_the_deciding_context_in_place_of_the_producers() -> None:
    error = ErrorInfo("VALIDATION_ERROR", "no", 400)
    outcome = InputOutcome(Status.FAILED, error=error, trace_headers=DECIDED)
    [[_, dead_letter]] = records_for_input(_input(), outcome, TOPICS)
    headers = dead_letter.headers or []
    names = [name for name, _ in headers]
    assert headers[:4] == [("baggage", b"tenant=acme"), ("origin", b"billing"), *DECIDED]
    assert names.count("traceparent") == 1 and names.count("tracestate") == 1
    assert names[4 : 4 + len(DEAD_LETTER_HEADERS)] == list(DEAD_LETTER_HEADERS)


def test_with_tracing_off_results_have_no_headers_and_dead_letters_keep_the_producers() -> None:
    error = ErrorInfo("VALIDATION_ERROR", "no", 400)
    [[result, dead_letter]] = records_for_input(
        _input(), InputOutcome(Status.FAILED, error=error), TOPICS
    )
    assert result.headers is None
    assert (dead_letter.headers or [])[: len(EVENT_HEADERS)] == EVENT_HEADERS


def test_an_invalid_events_records_carry_the_span_that_rejected_it() -> None:
    bad = raw(b"{not json", 9, key=b"k")._replace(headers=list(EVENT_HEADERS))
    rejection = Rejection(bad, "NOT_JSON", "not JSON")
    result, dead_letter = records_for_rejection(rejection, TOPICS, DECIDED)
    assert result.headers == [*DECIDED, ("baggage", b"tenant=acme")]
    assert [v for n, v in dead_letter.headers or [] if n == "traceparent"] == [DECIDED[0][1]]
    off_result, off_dead_letter = records_for_rejection(rejection, TOPICS)
    assert off_result.headers is None
    assert (off_dead_letter.headers or [])[: len(EVENT_HEADERS)] == EVENT_HEADERS


def test_settled_outcomes_take_the_context_of_the_span_deciding_them() -> None:
    first, second = _input(), _input()
    second.trace_id = "t-2"
    run = BatchRun(BatchOutcome(Batch(1, [first, second], 0.0)))
    run.settle(first, InputOutcome(Status.UPSERTED))
    run.trace_headers = DECIDED
    run.settle(second, InputOutcome(Status.UPSERTED))
    assert run.outcome.by_trace_id["t-1"].trace_headers == ()
    assert run.outcome.by_trace_id["t-2"].trace_headers == DECIDED


def test_each_event_of_a_split_input_takes_the_context_it_was_settled_under() -> None:
    one, two = event("sub-1", 1, hs_name="a"), event("sub-1", 2, hs_name="b")
    merged = BatchInput("sub-1", one.id_property, "m", {"hs_name": "b"}, [one, two])
    run = BatchRun(BatchOutcome(Batch(1, [merged], 0.0)))
    assert run.split(merged)
    for n in (1, 2):
        [[derived]] = run.schedule_derived()
        run.trace_headers = ((f"traceparent-{n}", b"x"),)
        run.settle(derived, InputOutcome(Status.UPSERTED))
    outcomes = run.outcome.per_event["m"]
    assert [result.trace_headers for _, result in outcomes if result] == [
        (("traceparent-1", b"x"),),
        (("traceparent-2", b"x"),),
    ]


def test_a_redriven_dead_letter_goes_back_with_the_context_of_the_span_that_failed_it() -> None:
    error = ErrorInfo("VALIDATION_ERROR", "no", 400)
    outcome = InputOutcome(Status.FAILED, error=error, trace_headers=DECIDED)
    [[_, dead_letter]] = records_for_input(_input(), outcome, TOPICS)
    again = republished_headers(dead_letter.headers or [])
    assert again[:4] == [("baggage", b"tenant=acme"), ("origin", b"billing"), *DECIDED]
    assert [name for name, _ in again[4:]] == ["redrive.count"]
