from __future__ import annotations

import orjson

from service.core.codec import decode_event
from service.core.model import (
    BatchInput,
    BatchTiming,
    ErrorInfo,
    InputOutcome,
    Rejection,
    Status,
    UpsertedRecord,
)
from service.core.records import (
    Topics,
    records_for_input,
    records_for_rejection,
    records_for_split_event,
)
from tests.unit.factories import LIMITS, event, raw

TOPICS = Topics(output="out", dlq="dlq")


def test_coalesced_events_name_the_carrying_input_and_the_last_carries_it() -> None:
    first, second = event("a", 1, x="1"), event("a", 2, x="2")
    item = BatchInput("a", "external_subscription_id", "merged-abc", {"x": "2"}, [first, second])
    outcome = InputOutcome(
        Status.UPSERTED,
        record=UpsertedRecord("77", True, "c", "u"),
        timing=BatchTiming("COMPLETE", None, "s", "e"),
    )
    per_event = records_for_input(item, outcome, TOPICS)
    absorbed, carrier = (orjson.loads(records[0].value or b"") for records in per_event)
    assert absorbed["coalescedInto"] == "merged-abc"
    assert absorbed["objectWriteTraceId"] == first.trace_id
    assert carrier["coalescedInto"] is None
    assert carrier["objectWriteTraceId"] == "merged-abc"
    assert carrier["hubspotId"] == "77" and carrier["new"] is True
    assert carrier["source"] == {"topic": "subscription-events", "partition": 0, "offset": 2}
    assert carrier["batch"]["status"] == "COMPLETE"
    assert all(len(records) == 1 for records in per_event)


def test_failed_input_gets_a_result_and_a_dead_letter_with_the_original_message() -> None:
    failing = event("a", 5, x="1")
    item = BatchInput("a", "external_subscription_id", failing.trace_id, {"x": "1"}, [failing])
    error = ErrorInfo("VALIDATION_ERROR", "Property x does not exist", 207)
    [[result, dead]] = records_for_input(item, InputOutcome(Status.FAILED, error=error), TOPICS)
    document = orjson.loads(result.value or b"")
    assert document["status"] == "failed"
    assert document["error"] == {
        "category": "VALIDATION_ERROR",
        "message": "Property x does not exist",
        "httpStatus": 207,
    }
    assert dead.topic == "dlq"
    assert dead.value == failing.raw.value
    headers = dict(dead.headers or [])
    assert headers["error.status"] == b"failed"
    assert headers["error.category"] == b"VALIDATION_ERROR"
    assert headers["source.offset"] == b"5"


def test_invalid_event_keeps_its_key_and_headers_in_the_dead_letter() -> None:
    message = raw(b"{broken", offset=3, key=b"sub-1")
    message = type(message)(message.topic, 0, 3, b"sub-1", b"{broken", [("trace", b"abc")])
    rejection = decode_event(message, LIMITS)
    assert isinstance(rejection, Rejection)
    result, dead = records_for_rejection(rejection, TOPICS)
    assert result.key == b"sub-1"
    assert orjson.loads(result.value or b"")["status"] == "invalid"
    assert dead.key == b"sub-1" and dead.value == b"{broken"
    assert ("trace", b"abc") in (dead.headers or [])
    assert dict(dead.headers or [])["error.status"] == b"invalid"


def test_an_event_of_a_split_input_shows_its_own_trace_id_and_no_carrier() -> None:
    first, second = event("a", 1, x="1"), event("a", 2, y="2")
    item = BatchInput("a", "p", "merged-abc", {"x": "1", "y": "2"}, [first, second])
    upserted = InputOutcome(Status.UPSERTED, record=UpsertedRecord("77", False, "c", "u"))
    [result] = records_for_split_event(item, second, upserted, TOPICS)
    document = orjson.loads(result.value or b"")
    assert document["objectWriteTraceId"] == second.trace_id
    assert document["coalescedInto"] is None and document["status"] == "upserted"
    assert document["source"]["offset"] == 2 and result.key == b"a"


def test_an_input_resent_without_properties_lists_each_events_own_dropped_ones() -> None:
    setter, other = event("a", 1, x="1", gone="v"), event("a", 2, y="2")
    item = BatchInput("a", "p", "merged-abc", {"x": "1", "y": "2"}, [setter, other])
    upserted = InputOutcome(
        Status.UPSERTED, record=UpsertedRecord("77", False, "c", "u"), dropped=("gone",)
    )
    absorbed, carrier = (
        orjson.loads(records[0].value or b"")
        for records in records_for_input(item, upserted, TOPICS)
    )
    assert absorbed["droppedProperties"] == ["gone"]
    assert "droppedProperties" not in carrier  # it did not set the property
    assert all(len(records) == 1 for records in records_for_input(item, upserted, TOPICS))
