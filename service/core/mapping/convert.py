"""Converts one decoded value to the text HubSpot takes for a property, by the entry's type.

- string: text as it is; integers, decimals and floats as exact decimal text; booleans as
  `true`/`false`; timestamps and dates as HubSpot's datetime and date; UUIDs and times as
  their ISO text. Objects, arrays and bytes are refused (a property holds one value).
- number: exact decimal text, never through a float (an Avro or Protobuf decimal keeps every
  digit; a float, as JSON Schema decoding gives one, is written by its shortest text);
  numeric text is checked and written the same way (`1e5` as `100000`). Booleans are
  refused.
- boolean: booleans, `true`/`false` text (any case), 0 and 1.
- datetime, date: service/core/mapping/timestamps.py.
- enum: the value's text looked up in the value map; outside it, the map's default or a
  refusal.
A refusal is a ConversionError whose message says why. Pure.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal, InvalidOperation
from uuid import UUID

from service.core.mapping.spec import Conversion, ConversionError, Kind, shown
from service.core.mapping.timestamps import timestamp_text

_BOOLEAN_TEXT = {"true": "true", "false": "false"}
_CONTAINER_NAMES: dict[type, str] = {dict: "an object", list: "an array", tuple: "an array"}


def to_text(value: object, conversion: Conversion) -> str:
    """The property value for `value` (not None: the caller decides what null means)."""
    kind = conversion.kind
    if kind is Kind.STRING:
        return string_text(value)
    if kind is Kind.NUMBER:
        return number_text(value)
    if kind is Kind.BOOLEAN:
        return boolean_text(value)
    if kind is Kind.ENUM:
        return enum_text(value, conversion)
    return timestamp_text(value, conversion)


def string_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return number_text(value)
    if isinstance(value, date):  # a datetime too: HubSpot's datetime text
        kind = Kind.DATE if type(value) is date else Kind.DATETIME
        return timestamp_text(value, Conversion(kind=kind))
    if isinstance(value, time | UUID):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    raise ConversionError(_not_scalar(value))


def number_text(value: object) -> str:
    if isinstance(value, bool):
        raise ConversionError(f"{value!r} is a boolean, not a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _exact(value, value)
    if isinstance(value, float):
        return _exact(Decimal(repr(value)), value)
    if isinstance(value, str):
        return _exact(_parsed_number(value), value)
    raise ConversionError(f"{shown(value)} is not a number")


def boolean_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[value.strip().lower()]
    if isinstance(value, int) and value in (0, 1):
        return "true" if value else "false"
    raise ConversionError(f"{shown(value)} is not a boolean")


def enum_text(value: object, conversion: Conversion) -> str:
    if isinstance(value, str):
        symbol = value
    elif isinstance(value, int) and not isinstance(value, bool):
        symbol = str(value)
    else:
        raise ConversionError(f"{shown(value)} is not an enum symbol")
    mapped = conversion.values.get(symbol, conversion.default)
    if mapped is None:
        raise ConversionError(f"{shown(symbol)} is not in the value map and there is no default")
    return mapped


def _exact(number: Decimal, original: object) -> str:
    """Plain decimal text (no exponent), every digit kept: 12.50, 100000, -0.0001."""
    if not number.is_finite():
        raise ConversionError(f"{shown(original)} is not a finite number")
    return format(number, "f")


def _parsed_number(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ConversionError(f"{shown(text)} is not a number") from None


def _not_scalar(value: object) -> str:
    kind = _CONTAINER_NAMES.get(type(value))
    if kind is not None:
        return f"the value is {kind}; a property holds one value (pick a field with the path)"
    if isinstance(value, bytes | bytearray):
        return "the value is bytes; a property holds text"
    return f"the value is a {type(value).__name__}, which is not a property value"
