"""Reads and validates input events against the contract. Pure: bytes in, Event or Rejection out.

Rules (contract, "Input event"): the value is a UTF-8 JSON object with a non-empty string
`id` and an object `properties` of scalar values. Numbers and booleans become strings,
`null` becomes "" (HubSpot's way to clear a value); nested objects or arrays are invalid.
`idProperty` and `objectWriteTraceId` are optional non-empty strings. `associations` is an
optional list of records to associate the subscription with: objects of a target object
type `to`, a unique property `idProperty` and its value `id`, and optionally a label's
`typeId` (an integer) and `category`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from service.core.ids import derived_trace_id
from service.core.model import AssociationRef, Event, RawMessage, Rejection

MAX_VALUE_LENGTH = 65_536
_MAX_NAME_LENGTH = 1_024  # of an idProperty or an objectWriteTraceId
# Beyond this magnitude a JSON number read as a float is not carried exactly (integers past
# 64 bits are read as floats): such a value would reach HubSpot changed.
_EXACT_FLOAT_LIMIT = 2.0**53


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """Bounds an event must respect; set from settings."""

    default_id_property: str
    max_properties: int = 1_000
    max_value_length: int = MAX_VALUE_LENGTH
    max_id_length: int = 1_024


class _InvalidEventError(Exception):
    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


def decode_event(raw: RawMessage, limits: ValidationLimits) -> Event | Rejection:
    """Turn a consumed message into a valid Event, or a Rejection naming what is wrong."""
    try:
        document = _parse_json(raw.value)
        return _build_event(raw, document, limits)
    except _InvalidEventError as bad:
        return _rejection(raw, bad, limits)


def _rejection(raw: RawMessage, bad: _InvalidEventError, limits: ValidationLimits) -> Rejection:
    """The rejection names what it can of the event: its id, idProperty and trace id when
    they are usable, so an upstream can match the result to what it sent."""
    document = _document_or_none(raw.value)
    return Rejection(
        raw=raw,
        category=bad.category,
        message=bad.message,
        id=_usable_string(document, "id", limits.max_id_length),
        id_property=_usable_string(document, "idProperty", _MAX_NAME_LENGTH),
        trace_id=_usable_string(document, "objectWriteTraceId", _MAX_NAME_LENGTH)
        or derived_trace_id(raw.topic, raw.partition, raw.offset),
    )


def _document_or_none(value: bytes | None) -> dict[str, object] | None:
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _usable_string(document: dict[str, object] | None, name: str, max_length: int) -> str | None:
    """The field when it is a non-empty string of at most `max_length` characters: copied
    into the result's key and value, an over-long one could exceed the broker's size limit."""
    candidate = document.get(name) if document is not None else None
    if isinstance(candidate, str) and candidate.strip() and len(candidate) <= max_length:
        return candidate
    return None


def _parse_json(value: bytes | None) -> dict[str, object]:
    if value is None:
        raise _InvalidEventError("EMPTY_VALUE", "the message has no value (tombstone)")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise _InvalidEventError("NOT_UTF8", "the value is not valid UTF-8") from exc
        raise _InvalidEventError("NOT_JSON", f"the value is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        kind = _json_type(document)
        raise _InvalidEventError("NOT_AN_OBJECT", f"the value is JSON {kind}, not an object")
    return document


def _build_event(raw: RawMessage, document: dict[str, object], limits: ValidationLimits) -> Event:
    event_id = _required_string(document, "id", limits.max_id_length, "INVALID_ID")
    id_property = _optional_string(document, "idProperty", "INVALID_ID_PROPERTY")
    trace_id = _optional_string(document, "objectWriteTraceId", "INVALID_TRACE_ID")
    properties = _properties(document.get("properties", _MISSING), limits, len(raw.value or b""))
    linked = document.get("associations")
    return Event(
        raw,
        event_id,
        id_property or limits.default_id_property,
        properties,
        trace_id or derived_trace_id(raw.topic, raw.partition, raw.offset),
        _associations(linked) if linked is not None else (),
    )


OBJECT_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")  # contacts, companies, 2-123456, p_x
MAX_ASSOCIATIONS = 100
MAX_ASSOCIATION_VALUE_LENGTH = _MAX_NAME_LENGTH


def associations_of(value: object) -> tuple[AssociationRef, ...]:
    """`value` read as the contract's `associations` list (duplicates once), or ValueError
    saying what is wrong (e.g. `associations[2].id must be a string`)."""
    try:
        return _associations(value)
    except _InvalidEventError as bad:
        raise ValueError(bad.message) from None


def _associations(value: object) -> tuple[AssociationRef, ...]:
    if not isinstance(value, list):
        raise _InvalidEventError("INVALID_ASSOCIATIONS", "`associations` must be an array")
    if len(value) > MAX_ASSOCIATIONS:
        raise _InvalidEventError(
            "INVALID_ASSOCIATIONS", f"more than {MAX_ASSOCIATIONS} associations"
        )
    return tuple(dict.fromkeys(_association(item, n) for n, item in enumerate(value)))


def _association(item: object, n: int) -> AssociationRef:
    where = f"associations[{n}]"
    if not isinstance(item, dict):
        raise _InvalidEventError("INVALID_ASSOCIATIONS", f"{where} must be an object")
    to_type = item.get("to")
    if not isinstance(to_type, str) or not OBJECT_TYPE.match(to_type):
        raise _InvalidEventError("INVALID_ASSOCIATIONS", f"{where}.to must name an object type")
    id_property, value = item.get("idProperty"), item.get("id")
    for name, text in (("idProperty", id_property), ("id", value)):
        if not isinstance(text, str) or not text.strip() or len(text) > _MAX_NAME_LENGTH:
            raise _InvalidEventError("INVALID_ASSOCIATIONS", f"{where}.{name} must be a string")
    type_id, category = item.get("typeId"), item.get("category")
    if type_id is not None and (not isinstance(type_id, int) or isinstance(type_id, bool)):
        raise _InvalidEventError("INVALID_ASSOCIATIONS", f"{where}.typeId must be an integer")
    if category is not None and (not isinstance(category, str) or type_id is None):
        raise _InvalidEventError(
            "INVALID_ASSOCIATIONS", f"{where}.category must be a string, with a typeId"
        )
    return AssociationRef(to_type, str(id_property), str(value), type_id, category)


_MISSING = object()


def _required_string(document: dict[str, object], name: str, max_len: int, category: str) -> str:
    value = document.get(name, _MISSING)
    if value is _MISSING:
        raise _InvalidEventError("MISSING_ID", f"`{name}` is missing")
    if not isinstance(value, str):
        raise _InvalidEventError(category, f"`{name}` must be a string, got {_json_type(value)}")
    if not value.strip():
        raise _InvalidEventError(category, f"`{name}` is empty")
    if len(value) > max_len:
        raise _InvalidEventError(category, f"`{name}` is longer than {max_len} characters")
    return value


def _optional_string(document: dict[str, object], name: str, category: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _InvalidEventError(category, f"`{name}` must be a non-empty string when present")
    if len(value) > _MAX_NAME_LENGTH:
        raise _InvalidEventError(category, f"`{name}` is longer than {_MAX_NAME_LENGTH} characters")
    return value


def _properties(value: object, limits: ValidationLimits, raw_size: int) -> dict[str, str]:
    if value is _MISSING:
        raise _InvalidEventError("INVALID_PROPERTIES", "`properties` is missing")
    if not isinstance(value, dict):
        kind = _json_type(value)
        raise _InvalidEventError("INVALID_PROPERTIES", f"`properties` is {kind}, not an object")
    if len(value) > limits.max_properties:
        raise _InvalidEventError(
            "TOO_MANY_PROPERTIES",
            f"{len(value)} properties, more than the limit of {limits.max_properties}",
        )
    quick = _quick_properties(value, limits, raw_size)
    if quick is not None:
        return quick
    return {name: _property_value(name, item, limits) for name, item in value.items()}


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _quick_properties(
    value: dict[str, object], limits: ValidationLimits, raw_size: int
) -> dict[str, str] | None:
    """The common case checked with C-level loops: named scalars in an event no bigger than the
    longest value allowed (so no value can be too long). None: check property by property."""
    if raw_size > limits.max_value_length or not all(map(str.strip, value)):
        return None
    kinds = set(map(type, value.values()))
    if kinds <= _STRING_ONLY:
        return value  # type: ignore[return-value]  # every value is a str, checked above
    if not kinds <= _SCALAR_TYPES:
        return None
    converted: dict[str, str] = dict(value)  # type: ignore[arg-type]  # fixed just below
    for name, item in value.items():
        kind = type(item)
        if kind is int or (kind is float and _carried_exactly(item)):  # the usual: a number
            converted[name] = str(item)
        elif kind is not str:
            converted[name] = _scalar_text(name, item)
    return converted


_STRING_ONLY = frozenset({str})


def _carried_exactly(number: object) -> bool:
    return -_EXACT_FLOAT_LIMIT < number < _EXACT_FLOAT_LIMIT  # type: ignore[operator]  # a float


def _property_value(name: str, value: object, limits: ValidationLimits) -> str:
    if not name.strip():
        raise _InvalidEventError("INVALID_PROPERTIES", "a property name is empty")
    text = _scalar_text(name, value)
    if len(text) > limits.max_value_length:
        raise _InvalidEventError(
            "VALUE_TOO_LONG",
            f"property `{_short(name)}` is {len(text)} characters, over {limits.max_value_length}",
        )
    return text


def _scalar_text(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not _carried_exactly(value):
        raise _InvalidEventError(
            "NUMBER_OUT_OF_RANGE",
            f"property `{_short(name)}` is a number beyond ±2^53, which is not carried "
            "exactly; send it as a string",
        )
    if isinstance(value, int | float):
        return str(value)
    raise _InvalidEventError(
        "NESTED_PROPERTY",
        f"property `{_short(name)}` is a nested {_json_type(value)}; values must be scalars",
    )


def _short(name: str) -> str:
    return name if len(name) <= 100 else name[:100] + "…"


def _json_type(value: object) -> str:
    names = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
