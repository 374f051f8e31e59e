"""The billing example's event as Protobuf and as JSON Schema, in the same two versions.

Protobuf: the message classes are built from a FileDescriptorProto here (no protoc); the file
is, as `.proto` text:

    syntax = "proto3";
    package com.example.billing;
    import "google/protobuf/timestamp.proto";
    import "confluent/type/decimal.proto";
    message Customer { string id = 1; optional string email = 2; }
    message Plan { string code = 1; string name = 2; Interval interval = 3; }
    message Period { google.protobuf.Timestamp start = 1; google.protobuf.Timestamp end = 2; }
    message Item {
      string price_code = 1; int32 quantity = 2; confluent.type.Decimal unit_amount = 3;
    }
    message SubscriptionEvent {       // the fifth message: its frame carries index [4]
      string event_id = 1; string subscription_id = 2; Customer customer = 3; Plan plan = 4;
      Status status = 5; string currency = 6; confluent.type.Decimal amount = 7;
      Period current_period = 8; repeated Item items = 9; bool cancel_at_period_end = 10;
      confluent.type.Decimal discount_amount = 11;     // version 2
      google.protobuf.Timestamp trial_end = 12;        // version 2
    }
    enum Status { STATUS_UNSPECIFIED = 0; TRIALING = 1; ACTIVE = 2; PAST_DUE = 3; UNPAID = 4;
                  CANCELED = 5; }
    enum Interval { INTERVAL_UNSPECIFIED = 0; MONTH = 1; YEAR = 2; }

JSON Schema: amounts as decimal text (JSON numbers would pass through floats in most
producers) and timestamps as ISO 8601 text. One mapping file reads all three formats. A
development tool: never imported by `service/`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.common.protobuf import decimal_to_protobuf
from confluent_kafka.schema_registry.confluent.type import decimal_pb2
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import Message

from devstack.examples.billing import Subscription

_FIELD = descriptor_pb2.FieldDescriptorProto
_STATUSES = ("STATUS_UNSPECIFIED", "TRIALING", "ACTIVE", "PAST_DUE", "UNPAID", "CANCELED")
_INTERVALS = ("INTERVAL_UNSPECIFIED", "MONTH", "YEAR")
_PACKAGE = "com.example.billing"


def _field(
    message: Any, name: str, number: int, kind: int, type_name: str = "", **more: Any
) -> Any:
    more.setdefault("label", _FIELD.LABEL_OPTIONAL)
    if type_name:  # set only for messages and enums (an empty one still counts as set)
        more["type_name"] = type_name
    return message.field.add(name=name, number=number, type=kind, **more)


def _file_proto(version: int) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="com/example/billing/subscription.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "confluent/type/decimal.proto"],
    )
    decimal, timestamp = ".confluent.type.Decimal", ".google.protobuf.Timestamp"
    customer = proto.message_type.add(name="Customer")
    _field(customer, "id", 1, _FIELD.TYPE_STRING)
    customer.oneof_decl.add(name="_email")
    _field(customer, "email", 2, _FIELD.TYPE_STRING, proto3_optional=True, oneof_index=0)
    plan = proto.message_type.add(name="Plan")
    _field(plan, "code", 1, _FIELD.TYPE_STRING)
    _field(plan, "name", 2, _FIELD.TYPE_STRING)
    _field(plan, "interval", 3, _FIELD.TYPE_ENUM, f".{_PACKAGE}.Interval")
    period = proto.message_type.add(name="Period")
    _field(period, "start", 1, _FIELD.TYPE_MESSAGE, timestamp)
    _field(period, "end", 2, _FIELD.TYPE_MESSAGE, timestamp)
    item = proto.message_type.add(name="Item")
    _field(item, "price_code", 1, _FIELD.TYPE_STRING)
    _field(item, "quantity", 2, _FIELD.TYPE_INT32)
    _field(item, "unit_amount", 3, _FIELD.TYPE_MESSAGE, decimal)
    _event_message(proto, version, decimal, timestamp)
    for name, symbols in (("Status", _STATUSES), ("Interval", _INTERVALS)):
        enum = proto.enum_type.add(name=name)
        for number, symbol in enumerate(symbols):
            enum.value.add(name=symbol, number=number)
    return proto


def _event_message(proto: Any, version: int, decimal: str, timestamp: str) -> None:
    event = proto.message_type.add(name="SubscriptionEvent")
    for number, name in enumerate(("event_id", "subscription_id"), start=1):
        _field(event, name, number, _FIELD.TYPE_STRING)
    _field(event, "customer", 3, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Customer")
    _field(event, "plan", 4, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Plan")
    _field(event, "status", 5, _FIELD.TYPE_ENUM, f".{_PACKAGE}.Status")
    _field(event, "currency", 6, _FIELD.TYPE_STRING)
    _field(event, "amount", 7, _FIELD.TYPE_MESSAGE, decimal)
    _field(event, "current_period", 8, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Period")
    _field(event, "items", 9, _FIELD.TYPE_MESSAGE, f".{_PACKAGE}.Item", label=_FIELD.LABEL_REPEATED)
    _field(event, "cancel_at_period_end", 10, _FIELD.TYPE_BOOL)
    if version == 2:
        _field(event, "discount_amount", 11, _FIELD.TYPE_MESSAGE, decimal)
        _field(event, "trial_end", 12, _FIELD.TYPE_MESSAGE, timestamp)


def protobuf_class(version: int) -> type[Message]:
    """SubscriptionEvent of schema version 1 or 2, in a descriptor pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    for module in (timestamp_pb2, decimal_pb2):
        dependency = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(dependency)
        pool.Add(dependency)
    pool.Add(_file_proto(version))
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{_PACKAGE}.SubscriptionEvent")
    )


def _set_decimal(target: Any, value: Decimal) -> None:
    """A confluent.type.Decimal of this pool (its class is not confluent-kafka's own)."""
    target.MergeFromString(decimal_to_protobuf(value, 4).SerializeToString())


def protobuf_message(event: Subscription, message_class: type[Message]) -> Message:
    message: Any = message_class()
    message.event_id, message.subscription_id = event.event_id, event.subscription_id
    message.customer.id = event.customer_id
    if event.customer_email is not None:
        message.customer.email = event.customer_email
    message.plan.code, message.plan.name = event.plan_code, event.plan_name
    message.plan.interval = _INTERVALS.index(event.interval)
    message.status = _STATUSES.index(event.status)
    message.currency = event.currency
    _set_decimal(message.amount, event.amount)
    message.current_period.start.FromDatetime(event.period_start)
    message.current_period.end.FromDatetime(event.period_end)
    for item in event.items:
        added = message.items.add(price_code=item.price_code, quantity=item.quantity)
        _set_decimal(added.unit_amount, item.unit_amount)
    message.cancel_at_period_end = event.cancel_at_period_end
    if event.version == 2 and event.discount_amount is not None:
        _set_decimal(message.discount_amount, event.discount_amount)
    if event.version == 2 and event.trial_end is not None:
        message.trial_end.FromDatetime(event.trial_end)
    built: Message = message
    return built


def protobuf_serializers(
    client: SchemaRegistryClient, topic: str
) -> Callable[[Subscription], bytes]:
    classes = {version: protobuf_class(version) for version in (1, 2)}
    serializers = {version: ProtobufSerializer(cls, client) for version, cls in classes.items()}
    context = SerializationContext(topic, MessageField.VALUE)

    def serialize(event: Subscription) -> bytes:
        data = serializers[event.version](protobuf_message(event, classes[event.version]), context)
        assert data is not None
        return bytes(data)

    return serialize


_TEXT, _DECIMAL_TEXT = {"type": "string"}, {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_TIME = {"type": "string", "format": "date-time"}


def json_schema(version: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "event_id": _TEXT,
        "subscription_id": _TEXT,
        "customer": {
            "type": "object",
            "properties": {"id": _TEXT, "email": {"type": ["string", "null"]}},
            "required": ["id"],
        },
        "plan": {
            "type": "object",
            "properties": {
                "code": _TEXT,
                "name": _TEXT,
                "interval": {"enum": list(_INTERVALS[1:])},
            },
            "required": ["code", "name", "interval"],
        },
        "status": {"enum": list(_STATUSES[1:])},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "amount": _DECIMAL_TEXT,
        "current_period": {
            "type": "object",
            "properties": {"start": _TIME, "end": _TIME},
            "required": ["start", "end"],
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "price_code": _TEXT,
                    "quantity": {"type": "integer", "minimum": 1},
                    "unit_amount": _DECIMAL_TEXT,
                },
            },
        },
        "cancel_at_period_end": {"type": "boolean"},
    }
    if version == 2:
        properties["discount_amount"] = {"anyOf": [_DECIMAL_TEXT, {"type": "null"}]}
        properties["trial_end"] = {"anyOf": [_TIME, {"type": "null"}]}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "SubscriptionEvent",
        "type": "object",
        "properties": properties,
        "required": ["event_id", "subscription_id", "customer", "plan", "status", "amount"],
        "additionalProperties": False,
    }


def json_record(event: Subscription) -> dict[str, Any]:
    def moment(value: Any) -> str | None:
        return None if value is None else value.isoformat(timespec="milliseconds")

    record: dict[str, Any] = {
        "event_id": event.event_id,
        "subscription_id": event.subscription_id,
        "customer": {"id": event.customer_id, "email": event.customer_email},
        "plan": {"code": event.plan_code, "name": event.plan_name, "interval": event.interval},
        "status": event.status,
        "currency": event.currency,
        "amount": f"{event.amount:f}",
        "current_period": {"start": moment(event.period_start), "end": moment(event.period_end)},
        "items": [
            {
                "price_code": i.price_code,
                "quantity": i.quantity,
                "unit_amount": f"{i.unit_amount:f}",
            }
            for i in event.items
        ],
        "cancel_at_period_end": event.cancel_at_period_end,
    }
    if event.version == 2:
        discount = event.discount_amount
        record["discount_amount"] = None if discount is None else f"{discount:f}"
        record["trial_end"] = moment(event.trial_end)
    return record


def json_schema_serializers(
    client: SchemaRegistryClient, topic: str
) -> Callable[[Subscription], bytes]:
    serializers = {v: JSONSerializer(json.dumps(json_schema(v)), client) for v in (1, 2)}
    context = SerializationContext(topic, MessageField.VALUE)

    def serialize(event: Subscription) -> bytes:
        data = serializers[event.version](json_record(event), context)
        assert data is not None
        return data

    return serialize
