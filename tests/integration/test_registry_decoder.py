"""The registry formats' decoder (service/adapters/schema_registry) against the real registry.

Records written by confluent-kafka's own serializers (Avro, Protobuf, JSON Schema; two schema
versions each) are read back by a decoder with a fresh client, so every writer schema comes
from the registry; each way a record can be unreadable gets its category; and every way the
registry can fail to give a schema is "unavailable", never a category of the record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from devstack.examples.billing import Subscription, avro_serializers, subscription_events
from devstack.examples.formats import json_schema_serializers, protobuf_serializers
from devstack.registry import LocalRegistry
from service.adapters.schema_registry import (
    RegistryConfig,
    RegistryDecoder,
    RegistryFormat,
    registry_client,
)
from service.core.errors import SchemaRegistryUnavailableError, UnreadableEventError
from service.core.model import RawMessage

Serializers = Callable[[SchemaRegistryClient, str], Callable[[Subscription], bytes]]
SERIALIZERS: dict[RegistryFormat, Serializers] = {
    "avro": avro_serializers,
    "protobuf": protobuf_serializers,
    "json_schema": json_schema_serializers,
}
EVENTS = subscription_events(40, 10, seed=3)


def decoder(url: str, fmt: RegistryFormat) -> RegistryDecoder:
    return RegistryDecoder(registry_client(RegistryConfig(url, timeout_s=2.0)), fmt)


def record(topic: str, value: bytes | None, **more: Any) -> RawMessage:
    return RawMessage(topic, 0, 7, b"key", value, **more)


def unreadable(decode: Callable[[RawMessage], object], raw: RawMessage) -> UnreadableEventError:
    with pytest.raises(UnreadableEventError) as caught:
        decode(raw)
    return caught.value


@pytest.fixture
def topic(subject_name: str) -> str:
    return subject_name.removesuffix("-value")


def _common_fields(decoded: dict[str, Any], event: Subscription) -> None:
    assert decoded["event_id"] == event.event_id
    assert decoded["subscription_id"] == event.subscription_id
    assert decoded["customer"] == {"id": event.customer_id, "email": event.customer_email}
    assert decoded["plan"]["interval"] == event.interval
    assert decoded["status"] == event.status
    assert decoded["cancel_at_period_end"] is event.cancel_at_period_end


def _typed_fields(decoded: dict[str, Any], event: Subscription) -> None:
    """Avro and Protobuf: decimals as exact Decimals, timestamps as UTC datetimes."""
    assert decoded["amount"] == event.amount and isinstance(decoded["amount"], Decimal)
    assert decoded["current_period"] == {"start": event.period_start, "end": event.period_end}
    assert decoded["current_period"]["start"].tzinfo is not None
    assert [item["unit_amount"] for item in decoded["items"]] == [
        item.unit_amount for item in event.items
    ]
    if event.version == 2:
        assert decoded["discount_amount"] == event.discount_amount
        assert decoded["trial_end"] == event.trial_end
    else:
        assert "discount_amount" not in decoded


@pytest.mark.parametrize("fmt", ["avro", "protobuf"])
def test_two_schema_versions_decode_with_exact_decimals_and_timestamps(
    fmt: RegistryFormat, schema_registry: SchemaRegistryClient, schema_registry_url: str, topic: str
) -> None:
    serialize = SERIALIZERS[fmt](schema_registry, topic)
    written = [(event, serialize(event)) for event in EVENTS]
    assert {data[1:5] for _, data in written if _} and len({e.version for e, _ in written}) == 2
    decode = decoder(schema_registry_url, fmt).decode
    big = [e for e in EVENTS if any(i.unit_amount > 10**13 for i in e.items)]
    assert big, "the stream holds a decimal beyond float precision"
    for event, data in written:
        decoded: Any = decode(record(topic, data))
        _common_fields(decoded, event)
        _typed_fields(decoded, event)


def test_json_schema_decodes_both_versions(
    schema_registry: SchemaRegistryClient, schema_registry_url: str, topic: str
) -> None:
    serialize = json_schema_serializers(schema_registry, topic)
    decode = decoder(schema_registry_url, "json_schema").decode
    for event in EVENTS:
        decoded: Any = decode(record(topic, serialize(event)))
        _common_fields(decoded, event)
        assert decoded["amount"] == f"{event.amount:f}"
        assert decoded["current_period"]["end"] == event.period_end.isoformat(
            timespec="milliseconds"
        )
        if event.version == 2:
            assert "trial_end" in decoded


def test_json_numbers_with_a_fraction_decode_as_exact_decimals(
    schema_registry: SchemaRegistryClient, schema_registry_url: str, topic: str
) -> None:
    frame = _frame_of(json_schema_serializers(schema_registry, topic)(EVENTS[0]))
    decode = decoder(schema_registry_url, "json_schema").decode
    document = (
        b'{"event_id": "e", "subscription_id": "s", "customer": {"id": "c"}, "plan": {"code": "p",'
        b' "name": "n", "interval": "MONTH"}, "status": "ACTIVE", "amount": "1", "currency": "EUR",'
        b' "items": [{"quantity": 12345678901234567890123}]}'
    )
    decoded: Any = decode(record(topic, frame + document))
    assert decoded["items"][0]["quantity"] == 12345678901234567890123


def _frame_of(data: bytes) -> bytes:
    return data[:5]


@pytest.mark.parametrize("fmt", ["avro", "protobuf", "json_schema"])
def test_records_not_in_the_wire_format(fmt: RegistryFormat, schema_registry_url: str) -> None:
    decode = decoder(schema_registry_url, fmt).decode
    for value in (b'{"id": "sub-1", "properties": {}}', b"", b"\x00\x00", b"\x07abcdefgh"):
        problem = unreadable(decode, record("t", value))
        assert problem.category == "NOT_SCHEMA_REGISTRY_FRAMED", value
        assert "not in the Schema Registry's wire format" in problem.message
    assert unreadable(decode, record("t", None)).category == "EMPTY_VALUE"


@pytest.mark.parametrize("fmt", ["avro", "protobuf", "json_schema"])
def test_a_schema_id_the_registry_does_not_have(
    fmt: RegistryFormat, schema_registry_url: str
) -> None:
    unknown = b"\x00" + (2**31 - 11).to_bytes(4, "big") + b"\x00\x02\x04\x06"
    problem = unreadable(decoder(schema_registry_url, fmt).decode, record("t", unknown))
    assert problem.category == "SCHEMA_NOT_FOUND"
    assert f"the registry has no schema id {2**31 - 11}" in problem.message


@pytest.mark.parametrize(
    ("fmt", "mangle"),
    [
        ("avro", lambda data: data[:-6]),  # cut short
        ("protobuf", lambda data: data[:7] + b"\xff\xff\xff\xff\xff"),  # after the index
        ("json_schema", lambda data: data[:5] + b'{"event_id": 5}'),  # does not match its schema
        ("json_schema", lambda data: data[:5] + b"{not json"),
    ],
)
def test_bytes_that_do_not_match_their_schema_are_undecodable(
    fmt: RegistryFormat,
    mangle: Callable[[bytes], bytes],
    schema_registry: SchemaRegistryClient,
    schema_registry_url: str,
    topic: str,
) -> None:
    data = SERIALIZERS[fmt](schema_registry, topic)(EVENTS[0])
    problem = unreadable(decoder(schema_registry_url, fmt).decode, record(topic, mangle(data)))
    assert problem.category == "UNDECODABLE"
    assert problem.message.startswith("the value does not match schema id ")


# -- a registry that cannot give the schema: unavailable, whatever the reason ------------------


class _Answer(BaseHTTPRequestHandler):
    status = 503
    body = b'{"error_code": 50001, "message": "storage down"}'

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def answering() -> Iterator[Callable[[int, bytes], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes) -> str:
        handler = type("Handler", (_Answer,), {"status": status, "body": body})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


FRAMED = b"\x00\x00\x00\x00\x01" + b"\x02\x00"


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (503, b'{"error_code": 50001, "message": "storage down"}', "answered 503"),
        (500, b"oops", "answered 500"),
        (401, b'{"error_code": 40101, "message": "unauthorized"}', "answered 401"),
        # a wrong URL (say, without /apis/ccompat/v7): a 404 that is not the registry's
        (404, b"<html>Not Found</html>", "answered 404"),
        (200, b"<html>a proxy's page</html>", "could not fetch schema id 1"),
    ],
)
def test_a_registry_that_does_not_answer_as_one_is_unavailable(
    status: int, body: bytes, said: str, answering: Callable[[int, bytes], str]
) -> None:
    decode = decoder(answering(status, body), "avro").decode
    with pytest.raises(SchemaRegistryUnavailableError, match=said):
        decode(record("t", FRAMED))


def test_a_registry_that_cannot_be_reached_is_unavailable() -> None:
    with pytest.raises(
        SchemaRegistryUnavailableError, match="could not fetch schema id 1: Connect"
    ):
        decoder("http://127.0.0.1:9", "protobuf").decode(record("t", FRAMED))


def test_schemas_already_read_decode_while_the_registry_is_down(
    restartable_registry: LocalRegistry, schema_registry: SchemaRegistryClient, topic: str
) -> None:
    serialize = avro_serializers(schema_registry, topic)
    first, later = EVENTS[0], next(e for e in EVENTS if e.version != EVENTS[0].version)
    decode = decoder(restartable_registry.url, "avro").decode
    decode(record(topic, serialize(first)))  # its schema is now cached
    unseen = serialize(later)
    restartable_registry.stop()
    decoded: Any = decode(record(topic, serialize(first)))
    assert decoded["event_id"] == first.event_id
    with pytest.raises(SchemaRegistryUnavailableError):
        decode(record(topic, unseen))
    restartable_registry.start()
    decoded = decode(record(topic, unseen))
    assert decoded["event_id"] == later.event_id
    assert decoded["current_period"]["start"] == later.period_start.astimezone(UTC)
    assert isinstance(decoded["current_period"]["start"], datetime)
