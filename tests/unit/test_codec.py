from __future__ import annotations

import pytest

from service.core.codec import ValidationLimits, decode_event
from service.core.model import Event, RawMessage, Rejection
from tests.unit.factories import LIMITS, raw


def test_valid_event_keeps_its_fields_and_stringifies_scalars() -> None:
    message = raw(
        {
            "id": "sub-1",
            "properties": {"hs_name": "Gold", "amount": 12, "ratio": 1.5, "on": True, "gone": None},
            "idProperty": "ext_id",
            "objectWriteTraceId": "upstream-7",
        }
    )
    decoded = decode_event(message, LIMITS)
    assert isinstance(decoded, Event)
    assert decoded.id == "sub-1"
    assert decoded.id_property == "ext_id"
    assert decoded.trace_id == "upstream-7"
    assert decoded.properties == {
        "hs_name": "Gold",
        "amount": "12",
        "ratio": "1.5",
        "on": "true",
        "gone": "",
    }


def test_missing_id_property_and_trace_id_fall_back_to_defaults() -> None:
    decoded = decode_event(raw({"id": "sub-1", "properties": {}}, offset=42, partition=3), LIMITS)
    assert isinstance(decoded, Event)
    assert decoded.id_property == "external_subscription_id"
    assert decoded.trace_id == "subscription-events-3-42"


@pytest.mark.parametrize(
    ("value", "category"),
    [
        (b"\xff\xfe not utf-8", "NOT_UTF8"),
        (b"{not json", "NOT_JSON"),
        (b"[1, 2]", "NOT_AN_OBJECT"),
        ({"properties": {}}, "MISSING_ID"),
        ({"id": "", "properties": {}}, "INVALID_ID"),
        ({"id": 12, "properties": {}}, "INVALID_ID"),
        ({"id": True, "properties": {}}, "INVALID_ID"),
        ({"id": "a"}, "INVALID_PROPERTIES"),
        ({"id": "a", "properties": []}, "INVALID_PROPERTIES"),
        ({"id": "a", "properties": {"x": {"y": 1}}}, "NESTED_PROPERTY"),
        ({"id": "a", "properties": {"x": [1]}}, "NESTED_PROPERTY"),
        ({"id": "a", "properties": {"x": "v" * 65_537}}, "VALUE_TOO_LONG"),
        ({"id": "a", "properties": {}, "idProperty": ""}, "INVALID_ID_PROPERTY"),
        ({"id": "a", "properties": {}, "objectWriteTraceId": 5}, "INVALID_TRACE_ID"),
    ],
)
def test_bad_events_are_rejected_with_a_category(value: object, category: str) -> None:
    decoded = decode_event(raw(value, offset=9), LIMITS)
    assert isinstance(decoded, Rejection)
    assert decoded.category == category
    assert decoded.message
    assert decoded.trace_id == "subscription-events-0-9"


def test_tombstone_is_rejected() -> None:
    decoded = decode_event(RawMessage("t", 0, 1, b"k", None), LIMITS)
    assert isinstance(decoded, Rejection)
    assert decoded.category == "EMPTY_VALUE"


def test_too_many_properties_is_rejected() -> None:
    limits = ValidationLimits(default_id_property="p", max_properties=3)
    decoded = decode_event(raw({"id": "a", "properties": {str(n): "v" for n in range(4)}}), limits)
    assert isinstance(decoded, Rejection)
    assert decoded.category == "TOO_MANY_PROPERTIES"


def test_rejection_keeps_a_readable_id() -> None:
    decoded = decode_event(raw({"id": "sub-9", "properties": {"x": [1]}}), LIMITS)
    assert isinstance(decoded, Rejection)
    assert decoded.id == "sub-9"


def test_rejection_keeps_the_events_own_id_property_and_trace_id() -> None:
    value = {
        "id": "a",
        "idProperty": "ext_id",
        "objectWriteTraceId": "up-123",
        "properties": {"x": [1]},
    }
    decoded = decode_event(raw(value, offset=17), LIMITS)
    assert isinstance(decoded, Rejection)
    assert (decoded.id, decoded.id_property, decoded.trace_id) == ("a", "ext_id", "up-123")


@pytest.mark.parametrize(
    "number", [b"12345678901234567890123", b"18446744073709551616", b"-9223372036854775809"]
)
def test_an_integer_past_64_bits_is_rejected_not_sent_changed(number: bytes) -> None:
    value = b'{"id": "a", "properties": {"seats": ' + number + b', "plan": "pro"}}'
    decoded = decode_event(RawMessage("t", 0, 1, b"a", value), LIMITS)
    assert isinstance(decoded, Rejection)
    assert decoded.category == "NUMBER_OUT_OF_RANGE"
    assert "`seats`" in decoded.message


def test_numbers_carried_exactly_are_sent_as_their_text() -> None:
    value = b'{"id": "a", "properties": {"u64": 18446744073709551615, "f": 2.5, "e": 1e15}}'
    decoded = decode_event(RawMessage("t", 0, 1, b"a", value), LIMITS)
    assert isinstance(decoded, Event)
    assert decoded.properties == {
        "u64": "18446744073709551615",
        "f": "2.5",
        "e": "1000000000000000.0",
    }
