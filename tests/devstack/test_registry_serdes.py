"""confluent-kafka's own serializers round-trip through the registry the tests use.

Avro (fastavro), JSON Schema (jsonschema) and Protobuf (protobuf + googleapis-common-protos),
each written with one client and read back with another, fresh one, so the writer's schema
comes from the registry and not from a client cache. Schema ids are the registry's own: the
tests compare them with what the registry answers, never with fixed numbers.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import Message

_AVRO_V1: dict[str, Any] = {
    "type": "record",
    "name": "Subscription",
    "namespace": "devstack.test",
    "fields": [
        {"name": "id", "type": "string"},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4},
        },
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["ON", "OFF"]}},
    ],
}
_AVRO_V2: dict[str, Any] = {
    **_AVRO_V1,
    "fields": [*_AVRO_V1["fields"], {"name": "seats", "type": "int", "default": 1}],
}

_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Subscription",
    "type": "object",
    "properties": {"id": {"type": "string"}, "seats": {"type": "integer", "minimum": 0}},
    "required": ["id"],
    "additionalProperties": False,
}


def _context(subject: str) -> SerializationContext:
    """A value context whose topic makes ``subject`` under the topic name strategy."""
    return SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)


def _schema_id(data: bytes) -> int:
    assert data[0] == 0, "not Confluent wire format (magic byte 0)"
    return int.from_bytes(data[1:5], "big")


def _fresh(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url})


def test_avro_round_trips_two_schema_versions(
    schema_registry: SchemaRegistryClient, schema_registry_url: str, subject_name: str
) -> None:
    ctx = _context(subject_name)
    v1 = {"id": "sub-1", "amount": Decimal("12345678901234.5678"), "status": "ON"}
    v2 = {"id": "sub-2", "amount": Decimal("-0.0001"), "status": "OFF", "seats": 7}
    data1 = AvroSerializer(schema_registry, json.dumps(_AVRO_V1))(v1, ctx)
    data2 = AvroSerializer(schema_registry, json.dumps(_AVRO_V2))(v2, ctx)
    assert data1 is not None and data2 is not None

    assert _schema_id(data1) != _schema_id(data2)
    versions = _fresh(schema_registry_url).get_versions(subject_name)
    assert len(versions) == 2
    latest = _fresh(schema_registry_url).get_latest_version(subject_name)
    assert latest.schema_id == _schema_id(data2)
    assert latest.schema.schema_type == "AVRO"

    writer_schemas = AvroDeserializer(_fresh(schema_registry_url))
    assert writer_schemas(data1, ctx) == v1  # decimals exact: never through a float
    assert writer_schemas(data2, ctx) == v2
    reader_v2 = AvroDeserializer(_fresh(schema_registry_url), json.dumps(_AVRO_V2))
    assert reader_v2(data1, ctx) == {**v1, "seats": 1}  # schema evolution: the default


def test_json_schema_round_trips_and_validates(
    schema_registry: SchemaRegistryClient, schema_registry_url: str, subject_name: str
) -> None:
    ctx = _context(subject_name)
    serializer = JSONSerializer(json.dumps(_JSON_SCHEMA), schema_registry)
    record = {"id": "sub-1", "seats": 3}
    data = serializer(record, ctx)
    assert data is not None

    registered = _fresh(schema_registry_url).get_schema(_schema_id(data))
    assert registered.schema_type == "JSON"
    assert json.loads(registered.schema_str or "") == _JSON_SCHEMA
    # No reader schema: the writer's comes from the registry (types-confluent-kafka 1.4 says
    # a schema is required; confluent-kafka 2.x takes None).
    client = _fresh(schema_registry_url)
    writer_schema = JSONDeserializer(None, schema_registry_client=client)  # type: ignore[arg-type]
    assert writer_schema(data, ctx) == record
    with pytest.raises(SerializationError, match="less than the minimum of 0"):
        serializer({"id": "sub-2", "seats": -1}, ctx)  # jsonschema enforces the schema


def _subscription_message_class() -> type[Message]:
    """A proto3 message with a well-known type (Timestamp), built without protoc."""
    pool = descriptor_pool.DescriptorPool()
    timestamp_file = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp_file)
    pool.Add(timestamp_file)
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="devstack/test/subscription.proto",
        package="devstack.test",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    message = proto.message_type.add(name="Subscription")
    message.field.add(name="id", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(name="seats", number=2, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    message.field.add(
        name="period_end",
        number=3,
        type=field.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        label=field.LABEL_OPTIONAL,
    )
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("devstack.test.Subscription"))


def test_protobuf_round_trips_with_a_well_known_type(
    schema_registry: SchemaRegistryClient, schema_registry_url: str, subject_name: str
) -> None:
    ctx = _context(subject_name)
    subscription = _subscription_message_class()
    record: Any = subscription()  # its fields are unknown to the type checker
    record.id = "sub-1"
    record.seats = 2**40
    record.period_end.FromDatetime(datetime.datetime(1969, 7, 20, 20, 17, 40, tzinfo=datetime.UTC))
    data = ProtobufSerializer(subscription, schema_registry)(record, ctx)
    assert data is not None

    registered = _fresh(schema_registry_url).get_schema(_schema_id(data))
    assert registered.schema_type == "PROTOBUF"
    # types-confluent-kafka 1.4 predates the client argument (the writer's schema's source).
    client = _fresh(schema_registry_url)
    deserializer = ProtobufDeserializer(subscription, {}, client)  # type: ignore[call-arg]
    decoded: Any = deserializer(data, ctx)
    assert decoded == record
    assert decoded.period_end.seconds < 0  # before 1970 survives the trip
