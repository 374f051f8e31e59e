"""Small builders for core value types used across unit tests."""

from __future__ import annotations

import orjson

from service.core.codec import ValidationLimits, decode_event
from service.core.model import Event, RawMessage

LIMITS = ValidationLimits(default_id_property="external_subscription_id")


def raw(value: object, offset: int = 0, partition: int = 0, key: bytes | None = None) -> RawMessage:
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    return RawMessage("subscription-events", partition, offset, key, body, None, 1_800_000_000_000)


def event(event_id: str, offset: int, partition: int = 0, **properties: str) -> Event:
    decoded = decode_event(
        raw({"id": event_id, "properties": properties}, offset, partition), LIMITS
    )
    assert isinstance(decoded, Event)
    return decoded
