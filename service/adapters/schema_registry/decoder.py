"""Records in the Confluent wire format, read with confluent-kafka's registry deserializers.

`RegistryDecoder` is the EventDecoder of INPUT_FORMAT avro, protobuf and json_schema. Per
record, in three steps, each with its own way to fail:

1. the frame: the magic byte and the schema id (or a schema id header, confluent-kafka's
   newer framing); anything else is NOT_SCHEMA_REGISTRY_FRAMED;
2. the writer's schema, from the registry by that id (the client caches it: the registry is
   asked once per schema id). The registry saying it has no such schema (404 with error code
   40401, 40402 or 40403) is SCHEMA_NOT_FOUND. Anything else that keeps the schema from us (no
   connection, a timeout, a 5xx, a refusal of the credentials, an answer that is not the
   registry's) is SchemaRegistryUnavailableError: the loop waits and reads the record again,
   so a registry that is down or misconfigured never sends events to the dead-letter topic;
3. the bytes, by that schema, with the format's deserializer: a failure is UNDECODABLE
   (a failure fetching a schema it references is sorted as in step 2).

The deserializers read with the writer's schema only (no subject, so no "latest version"
lookups and no data-contract rules). JSON Schema records are validated against their schema
and their numbers with a fraction read as exact decimals. The client asks each URL once per
request, without retrying (the loop retries on its own timer), within `timeout_s`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

# The implementations' own modules: types-confluent-kafka 1.4's stubs of the public ones
# predate the 2.x registry API (formats, GUIDs, configuration), so mypy reads these instead.
from confluent_kafka.schema_registry import (  # type: ignore[attr-defined]  # not in the stubs
    dual_schema_id_deserializer,
)
from confluent_kafka.schema_registry._sync.avro import AvroDeserializer
from confluent_kafka.schema_registry._sync.json_schema import JSONDeserializer
from confluent_kafka.schema_registry._sync.schema_registry_client import SchemaRegistryClient
from confluent_kafka.schema_registry.common.serde import SchemaId
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from service.adapters.schema_registry.protobuf import ProtobufReader
from service.core.errors import SchemaRegistryUnavailableError, UnreadableEventError
from service.core.model import RawMessage

log = logging.getLogger(__name__)

RegistryFormat = Literal["avro", "protobuf", "json_schema"]
_SCHEMA_TYPES: dict[str, str] = {"avro": "AVRO", "protobuf": "PROTOBUF", "json_schema": "JSON"}
# What the registry answers (404) when it has no such schema, subject or version.
_NOT_FOUND_CODES = frozenset({40401, 40402, 40403})


def _no_subject(*_: object) -> None:
    """The subject name strategy of the deserializers: none (the writer's schema alone)."""
    return None


_DESERIALIZER_CONF: dict[str, Any] = {"subject.name.strategy": _no_subject}


def _exact_json(data: bytes | str) -> object:
    return json.loads(data, parse_float=Decimal)


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """How to reach the registry; the user info and the token are secrets."""

    url: str
    basic_auth_user_info: str | None = None
    bearer_token: str | None = None
    ca_bundle: str | None = None
    timeout_s: float = 5.0


def registry_client(config: RegistryConfig) -> SchemaRegistryClient:
    conf: dict[str, Any] = {"url": config.url, "timeout": config.timeout_s, "max.retries": 0}
    if config.basic_auth_user_info is not None:
        conf["basic.auth.user.info"] = config.basic_auth_user_info
    if config.bearer_token is not None:
        conf.update(
            {
                "bearer.auth.credentials.source": "STATIC_TOKEN",
                "bearer.auth.token": config.bearer_token,
                "bearer.auth.logical.cluster": "",  # Confluent Cloud's; others ignore it
            }
        )
    if config.ca_bundle is not None:
        conf["ssl.ca.location"] = config.ca_bundle
    return SchemaRegistryClient(conf)


class RegistryDecoder:
    """Reads records of one registry format (one per process, on the loop's thread)."""

    def __init__(self, client: SchemaRegistryClient, fmt: RegistryFormat) -> None:
        self._client = client
        self._type = _SCHEMA_TYPES[fmt]
        self._schema_format = "serialized" if fmt == "protobuf" else None
        self._read = self._reader(fmt)

    def decode(self, raw: RawMessage) -> object:
        value = raw.value
        if value is None:
            raise UnreadableEventError("EMPTY_VALUE", "the message has no value (tombstone)")
        ctx = SerializationContext(raw.topic, MessageField.VALUE, raw.headers)
        schema_id = self._frame(value, ctx)
        schema = self._writer_schema(schema_id)
        try:
            return self._read(value, ctx, schema, schema_id)
        except (SchemaRegistryUnavailableError, UnreadableEventError):
            raise
        except SchemaRegistryError as exc:  # fetching a schema the writer's references
            raise _registry_error(exc, _named(schema_id)) from None
        except Exception as exc:  # whatever the format's reader raises
            raise UnreadableEventError(
                "UNDECODABLE", f"the value does not match {_named(schema_id)}: {_said(exc)}"
            ) from None

    def _frame(self, value: bytes, ctx: SerializationContext) -> Any:
        schema_id = SchemaId(self._type)
        try:
            dual_schema_id_deserializer(value, ctx, schema_id)
        except Exception as exc:  # a short read, a bad magic byte, a bad index
            raise UnreadableEventError(
                "NOT_SCHEMA_REGISTRY_FRAMED",
                "the value is not in the Schema Registry's wire format (magic byte 0, then a "
                f"4-byte schema id; first byte here: {value[:1].hex() or 'none'}): {_said(exc)}",
            ) from None
        return schema_id

    def _writer_schema(self, schema_id: Any) -> Any:
        try:
            if schema_id.id is not None:
                return self._client.get_schema(schema_id.id, None, self._schema_format)
            return self._client.get_schema_by_guid(str(schema_id.guid), self._schema_format)
        except SchemaRegistryError as exc:
            raise _registry_error(exc, _named(schema_id)) from None
        except Exception as exc:  # no connection, a timeout, a reply no registry's
            raise SchemaRegistryUnavailableError(
                f"could not fetch {_named(schema_id)}: {_said(exc)}"
            ) from None

    def _reader(self, fmt: RegistryFormat) -> Any:
        client = self._client
        if fmt == "protobuf":
            protobuf = ProtobufReader(client, _DESERIALIZER_CONF)
            return lambda value, ctx, schema, sid: protobuf.read(
                value, ctx, schema, sid.message_indexes
            )
        if fmt == "avro":
            avro = AvroDeserializer(client, conf=_DESERIALIZER_CONF)
            return lambda value, ctx, schema, sid: avro(value, ctx)
        json_schema = JSONDeserializer(
            None, schema_registry_client=client, conf=_DESERIALIZER_CONF, json_decode=_exact_json
        )
        return lambda value, ctx, schema, sid: json_schema(value, ctx)


def _registry_error(exc: SchemaRegistryError, what: str) -> Exception:
    if exc.http_status_code == 404 and exc.error_code in _NOT_FOUND_CODES:
        return UnreadableEventError(
            "SCHEMA_NOT_FOUND", f"the registry has no {what} ({exc.error_message})"
        )
    return SchemaRegistryUnavailableError(
        f"the registry answered {exc.http_status_code} (error code {exc.error_code}) for "
        f"{what}: {exc.error_message}"
    )


def _named(schema_id: Any) -> str:
    return f"schema id {schema_id.id}" if schema_id.id is not None else f"schema {schema_id.guid}"


def _said(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text if len(text) <= 300 else text[:300] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
