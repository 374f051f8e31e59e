"""Protobuf records without generated classes: a message class per writer schema, and the
decoded message as plain Python data.

confluent-kafka's ProtobufDeserializer parses into a message class it is given. The service
has none: it builds one from the writer's schema the registry returns (the serialized
FileDescriptorProto, `format=serialized`, with the schemas it references and the well-known
types confluent-kafka preloads), once per schema id and message index, and keeps a
deserializer for it. `message_value` then turns the message into what the mapping reads:
fields by name, enums by symbol, repeated fields as lists, maps as dicts, an unset message or
`optional` field as None, and the well-known types as values: Timestamp as a UTC datetime
(before 1970 too), google.type.Date as a date, confluent.type.Decimal, google.type.Decimal
and google.type.Money as exact decimals, wrappers as their value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from confluent_kafka.schema_registry._sync.protobuf import (
    ProtobufDeserializer,
    _resolve_named_schema,
)
from confluent_kafka.schema_registry.common.protobuf import (
    _init_pool,
    _str_to_proto,
    protobuf_to_decimal,
)
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_CACHED = 1_000
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)


class ProtobufReader:
    """Deserializers by writer schema; `read` gives the message as plain Python data."""

    def __init__(self, client: Any, conf: dict[str, Any]) -> None:
        self._client, self._conf = client, conf
        self._deserializers: dict[tuple[object, tuple[int, ...]], Any] = {}

    def read(self, value: bytes, ctx: object, schema: Any, indexes: list[int] | None) -> object:
        """`schema`: the writer's (serialized) schema, already fetched; `indexes`: the
        message's path in it, from the frame."""
        path = tuple(indexes or [0])
        key = (schema.schema_str, path)
        deserializer = self._deserializers.get(key)
        if deserializer is None:
            deserializer = self._deserializer(schema, path)
            if len(self._deserializers) >= _MAX_CACHED:
                self._deserializers.clear()
            self._deserializers[key] = deserializer
        return message_value(deserializer(value, ctx))

    def _deserializer(self, schema: Any, path: tuple[int, ...]) -> Any:
        pool = DescriptorPool()
        _init_pool(pool)
        _resolve_named_schema(schema, self._client, pool)
        file_proto = _str_to_proto("default", schema.schema_str)
        pool.Add(file_proto)
        descriptor = _message_descriptor(pool, file_proto, path)
        message_class = GetMessageClass(descriptor)
        return ProtobufDeserializer(message_class, self._conf, self._client)


def _message_descriptor(pool: DescriptorPool, file_proto: Any, path: tuple[int, ...]) -> Descriptor:
    """The message at `path` (indexes of a top-level message, then of nested ones)."""
    messages, names = file_proto.message_type, []
    for index in path:
        if not 0 <= index < len(messages):
            raise ValueError(f"message index {list(path)} is not in the writer's schema")
        names.append(messages[index].name)
        messages = messages[index].nested_type
    package = f"{file_proto.package}." if file_proto.package else ""
    return pool.FindMessageTypeByName(package + ".".join(names))


def message_value(message: Message) -> object:
    """The message as plain Python data (see the module's docstring)."""
    special = _WELL_KNOWN.get(message.DESCRIPTOR.full_name)
    if special is not None:
        return special(message)
    if message.DESCRIPTOR.full_name in _WRAPPERS:
        return getattr(message, "value")  # noqa: B009  # every wrapper's one field
    return {field.name: _field_value(message, field) for field in message.DESCRIPTOR.fields}


# Fields are typed Any below: types-protobuf tells the pure-Python descriptors from upb's,
# and the runtime hands over either.
def _field_value(message: Message, field: Any) -> object:
    value = getattr(message, field.name)
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        return {key: _single(item, value_field) for key, item in value.items()}
    if _is_repeated(field):
        return [_single(item, field) for item in value]
    if field.has_presence and not message.HasField(field.name):
        return None
    return _single(value, field)


def _single(value: object, field: Any) -> object:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert isinstance(value, Message)
        return message_value(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        symbol = field.enum_type.values_by_number.get(value)
        return symbol.name if symbol is not None else value
    return value


def _is_map(field: Any) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def _is_repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _timestamp(message: Any) -> datetime:
    seconds, nanos = int(message.seconds), int(message.nanos)
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def _date(message: Any) -> date | None:
    if not (message.year and message.month and message.day):
        return None  # a partial date (no year, or a month only) is no calendar day
    return date(message.year, message.month, message.day)


def _money(message: Any) -> dict[str, object]:
    amount = Decimal(message.units) + Decimal(message.nanos).scaleb(-9)
    return {"currency_code": message.currency_code, "amount": amount.normalize()}


def _plain(message: Message) -> object:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


_WELL_KNOWN: dict[str, Callable[[Any], object]] = {
    "google.protobuf.Timestamp": _timestamp,
    "google.type.Date": _date,
    "confluent.type.Decimal": protobuf_to_decimal,
    "google.type.Decimal": lambda message: Decimal(message.value),
    "google.type.Money": _money,
    "google.protobuf.Struct": _plain,
    "google.protobuf.Value": _plain,
    "google.protobuf.ListValue": _plain,
}
