"""Plain UTF-8 JSON records for a mapping (INPUT_FORMAT=json with EVENT_MAPPING_FILE).

The EventDecoder of JSON input that is not in the contract's shape: any JSON value, with
numbers that have a fraction or an exponent read as exact decimals (never as floats, so a
mapped amount keeps every digit) and integers of any size. A tombstone is EMPTY_VALUE,
bytes that are not UTF-8 NOT_UTF8, text that is not JSON NOT_JSON, as for the contract's
events (service/core/codec.py). Pure.
"""

from __future__ import annotations

import json
from decimal import Decimal

from service.core.errors import UnreadableEventError
from service.core.model import RawMessage


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


class JsonDecoder:
    """Reads a record's value as JSON."""

    def decode(self, raw: RawMessage) -> object:
        value = raw.value
        if value is None:
            raise UnreadableEventError("EMPTY_VALUE", "the message has no value (tombstone)")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableEventError("NOT_UTF8", "the value is not valid UTF-8") from None
        try:
            return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise UnreadableEventError("NOT_JSON", f"the value is not valid JSON: {exc}") from None
