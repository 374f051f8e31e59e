"""Hostile input against the pure codec and record builders: random bytes, invalid UTF-8,
deep nesting, huge strings, thousands of properties, odd id types, duplicate keys and
unusual Unicode never raise, and every outcome is an Event or a Rejection with a reason;
every result record is valid JSON with the contract's fields."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.codec import MAX_VALUE_LENGTH, ValidationLimits, decode_event
from service.core.model import (
    BatchInput,
    ErrorInfo,
    Event,
    InputOutcome,
    RawMessage,
    Rejection,
    Status,
    UpsertedRecord,
)
from service.core.records import Topics, records_for_input, records_for_rejection

LIMITS = ValidationLimits(default_id_property="external_subscription_id")
TOPICS = Topics(output="results", dlq="dlq")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RESULT_FIELDS = {
    "status",
    "id",
    "idProperty",
    "objectWriteTraceId",
    "hubspotId",
    "new",
    "createdAt",
    "updatedAt",
    "error",
    "source",
    "coalescedInto",
    "batch",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ids = st.one_of(
    st.text(max_size=30),
    st.just(""),
    st.just("   "),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=3), max_size=2),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20),
)
headers = st.one_of(
    st.none(),
    st.lists(st.tuples(st.text(min_size=1, max_size=10), st.binary(max_size=20)), max_size=4),
)


def _raw(
    value: bytes | None, key: bytes | None = b"k", hdrs: list[tuple[str, bytes]] | None = None
) -> RawMessage:
    return RawMessage(
        topic="events", partition=2, offset=41, key=key, value=value, headers=hdrs, timestamp_ms=1
    )


def _assert_sane(outcome: Event | Rejection) -> None:
    assert isinstance(outcome, Event | Rejection)
    if isinstance(outcome, Rejection):
        assert outcome.category and outcome.category.isupper()
        assert outcome.message
        _assert_rejection_records_valid(outcome)
    else:
        assert outcome.id.strip() and outcome.id_property and outcome.trace_id
        assert all(isinstance(v, str) for v in outcome.properties.values())
        assert len(outcome.properties) <= LIMITS.max_properties


def _assert_result_document(value: bytes | None, status: str) -> dict[str, object]:
    document = json.loads(value or b"")  # the standard library: a strict second opinion
    assert set(document) == RESULT_FIELDS
    assert document["status"] == status
    assert document["source"] == {"topic": "events", "partition": 2, "offset": 41}
    return dict(document)


def _assert_rejection_records_valid(rejection: Rejection) -> None:
    result, dead = records_for_rejection(rejection, TOPICS)
    document = _assert_result_document(result.value, "invalid")
    error = document["error"]
    assert isinstance(error, dict) and error["category"] == rejection.category
    assert (
        dead.topic == "dlq" and dead.key == rejection.raw.key and dead.value == rejection.raw.value
    )
    assert dead.headers is not None
    original = list(rejection.raw.headers or [])
    assert dead.headers[: len(original)] == original
    added = dict(dead.headers[len(original) :])
    assert added["error.status"] == b"invalid"
    assert added["error.category"] == rejection.category.encode()
    assert added["error.message"]
    assert added["source.offset"] == b"41"


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(value: bytes) -> None:
    _assert_sane(decode_event(_raw(value), LIMITS))


@FAST
@given(st.binary(min_size=1, max_size=50).filter(lambda b: not _is_utf8(b)))
def test_invalid_utf8_is_rejected_as_not_utf8(value: bytes) -> None:
    outcome = decode_event(_raw(b'{"id": "a", "properties": {"x": "' + value + b'"}}'), LIMITS)
    assert isinstance(outcome, Rejection)
    assert outcome.category == "NOT_UTF8"
    _assert_sane(outcome)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@FAST
@given(st.integers(min_value=1, max_value=5_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_rejected_without_recursion_errors(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    value = f'{{"id": "a", "properties": {{"x": {nested}}}}}'.encode()
    outcome = decode_event(_raw(value), LIMITS)
    assert isinstance(outcome, Rejection)
    assert outcome.category in {"NESTED_PROPERTY", "NOT_JSON"}
    _assert_sane(outcome)


@FAST
@given(ids, st.dictionaries(st.text(max_size=12), json_values, max_size=8), headers)
def test_arbitrary_documents_give_an_event_or_a_reasoned_rejection(
    event_id: object, properties: dict[str, object], hdrs: list[tuple[str, bytes]] | None
) -> None:
    value = json.dumps({"id": event_id, "properties": properties}).encode()  # big ints too
    outcome = decode_event(_raw(value, hdrs=hdrs), LIMITS)
    _assert_sane(outcome)
    if not isinstance(event_id, str):
        assert isinstance(outcome, Rejection)
        assert outcome.category in {"INVALID_ID", "MISSING_ID", "NOT_JSON"}  # NaN, Infinity


@FAST
@given(st.integers(min_value=0, max_value=3_000))
def test_property_counts_over_the_limit_are_too_many_properties(count: int) -> None:
    value = orjson.dumps({"id": "a", "properties": {f"p{n}": n for n in range(count)}})
    outcome = decode_event(_raw(value), LIMITS)
    if count > LIMITS.max_properties:
        assert isinstance(outcome, Rejection) and outcome.category == "TOO_MANY_PROPERTIES"
        assert str(LIMITS.max_properties) in outcome.message
    else:
        assert isinstance(outcome, Event) and len(outcome.properties) == count


@FAST
@given(
    st.integers(min_value=MAX_VALUE_LENGTH - 2, max_value=MAX_VALUE_LENGTH + 2),
    st.text(max_size=200),
)
def test_values_over_65536_characters_are_value_too_long(length: int, name: str) -> None:
    value = orjson.dumps({"id": "a", "properties": {name or "n": "é" * length}})
    outcome = decode_event(_raw(value), LIMITS)
    if not (name or "n").strip():
        assert isinstance(outcome, Rejection) and outcome.category == "INVALID_PROPERTIES"
    elif length > MAX_VALUE_LENGTH:
        assert isinstance(outcome, Rejection) and outcome.category == "VALUE_TOO_LONG"
        assert len(outcome.message) < 300
    else:
        assert isinstance(outcome, Event)
    _assert_sane(outcome)


@FAST
@given(st.text(min_size=1, max_size=10), st.text(min_size=1, max_size=10))
def test_duplicate_keys_take_one_value_and_never_raise(first: str, second: str) -> None:
    value = b'{"id": %s, "id": %s, "properties": {"x": 1, "x": {"nested": true}}}' % (
        orjson.dumps(first),
        orjson.dumps(second),
    )
    outcome = decode_event(_raw(value), LIMITS)
    _assert_sane(outcome)
    assert isinstance(outcome, Rejection)  # the last `x` (nested) wins
    assert outcome.category in {"NESTED_PROPERTY", "INVALID_ID"}


@FAST
@given(
    st.sampled_from([r"\ud800", r"\udfff", r"\ud83d", r"\ude00x", r"\ud800\ud800"]),
    st.sampled_from(["id", "property-name", "property-value"]),
)
def test_lone_surrogate_escapes_are_rejected_not_raised(escape: str, where: str) -> None:
    templates = {
        "id": '{"id": "a%s", "properties": {}}',
        "property-name": '{"id": "a", "properties": {"n%s": "v"}}',
        "property-value": '{"id": "a", "properties": {"n": "v%s"}}',
    }
    outcome = decode_event(_raw((templates[where] % escape).encode()), LIMITS)
    _assert_sane(outcome)
    assert isinstance(outcome, Rejection) and outcome.category == "NOT_JSON"


@FAST
@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
    )
)
def test_unusual_unicode_ids_and_values_round_trip_into_result_keys(text: str) -> None:
    value = orjson.dumps({"id": text, "properties": {text: text}})
    outcome = decode_event(_raw(value), LIMITS)
    _assert_sane(outcome)
    if isinstance(outcome, Event):
        item = BatchInput(
            outcome.id, outcome.id_property, outcome.trace_id, outcome.properties, [outcome]
        )
        for status in Status:
            written = status in (Status.UPSERTED, Status.UNCHANGED)  # no dead letter then
            error = None if written else ErrorInfo("X", "because " + text, 400)
            record = UpsertedRecord("1", True, "c", "u") if written else None
            [records] = records_for_input(
                item, InputOutcome(status, error=error, record=record), TOPICS
            )
            document = _assert_result_document(records[0].value, status.value)
            assert records[0].key == text.encode()
            assert document["id"] == text
            assert len(records) == (1 if written else 2)


def test_a_huge_unreadable_id_does_not_blow_up_the_result_record() -> None:
    """An id over the length limit is rejected; the result must not copy 900 KB into key and value
    (it would exceed the broker's message size and the refused delivery stops the service)."""
    value = orjson.dumps({"id": "x" * 900_000, "properties": {}})
    outcome = decode_event(_raw(value), LIMITS)
    assert isinstance(outcome, Rejection) and outcome.category == "INVALID_ID"
    result, _ = records_for_rejection(outcome, TOPICS)
    assert len(result.value or b"") + len(result.key or b"") < 10_000


def test_tombstones_and_empty_values_are_rejected_with_a_reason() -> None:
    for value, category in [(None, "EMPTY_VALUE"), (b"", "NOT_JSON"), (b"null", "NOT_AN_OBJECT")]:
        outcome = decode_event(_raw(value), LIMITS)
        assert isinstance(outcome, Rejection) and outcome.category == category
        _assert_sane(outcome)
