"""Applies an event mapping to one decoded event: an Event to upsert, or a Rejection.

`MappedReader.read` is the per-event path of the registry formats (and of JSON with a
mapping file): decode the record with the configured EventDecoder, then map it. A record the
decoder cannot read is a Rejection with the decoder's category (NOT_SCHEMA_REGISTRY_FRAMED,
SCHEMA_NOT_FOUND, UNDECODABLE, or the JSON categories); an entry that cannot give its value
(a required path missing, a value that does not convert) is a Rejection with category
MAPPING_ERROR naming the entry, carrying the id, idProperty and trace id when those mapped; a
list of associations (`associations: {from: ..}`) that is not the contract's shape is
INVALID_ASSOCIATIONS.
A SchemaRegistryUnavailableError from the decoder passes through: the loop waits, it marks
nothing. Pure (the decoder is the port).
"""

from __future__ import annotations

from service.core.codec import MAX_ASSOCIATION_VALUE_LENGTH, ValidationLimits, associations_of
from service.core.errors import UnreadableEventError
from service.core.ids import derived_trace_id
from service.core.mapping.convert import string_text, to_text
from service.core.mapping.paths import PathError
from service.core.mapping.spec import (
    MAPPING_ERROR,
    AssociationsFrom,
    ConversionError,
    CopyRule,
    EventMapping,
    MappingFailedError,
    Missing,
    Rule,
    shown,
)
from service.core.model import AssociationRef, Event, RawMessage, Rejection
from service.core.ports import EventDecoder

VALUE_TOO_LONG = "VALUE_TOO_LONG"
INVALID_ASSOCIATIONS = "INVALID_ASSOCIATIONS"  # as for the contract's events
TOO_MANY_PROPERTIES = "TOO_MANY_PROPERTIES"
_MAX_NAME_LENGTH = 1_024  # of an idProperty or a trace id, as in the JSON contract


class MappedReader:
    """Decodes and maps records; one per process, used on the loop's thread."""

    def __init__(
        self, decoder: EventDecoder, mapping: EventMapping, limits: ValidationLimits
    ) -> None:
        self._decode, self._mapping, self._limits = decoder.decode, mapping, limits

    def read(self, raw: RawMessage) -> Event | Rejection:
        """The record's Event or Rejection; SchemaRegistryUnavailableError: read it later."""
        try:
            document = self._decode(raw)
        except UnreadableEventError as bad:
            trace_id = derived_trace_id(raw.topic, raw.partition, raw.offset)
            return Rejection(raw, bad.category, bad.message, trace_id=trace_id)
        return map_event(raw, document, self._mapping, self._limits)


def map_event(
    raw: RawMessage, document: object, mapping: EventMapping, limits: ValidationLimits
) -> Event | Rejection:
    derived = derived_trace_id(raw.topic, raw.partition, raw.offset)
    try:
        event_id = _identifier(mapping.id, document, limits.max_id_length)
        id_property = _optional(mapping.id_property, document) or limits.default_id_property
        trace_id = _optional(mapping.trace_id, document) or derived
    except MappingFailedError as failure:
        return Rejection(raw, failure.category, failure.message, trace_id=derived)
    try:
        properties = _properties(mapping, document, limits)
        associations = _associations(mapping, document)
    except MappingFailedError as failure:
        return Rejection(raw, failure.category, failure.message, event_id, id_property, trace_id)
    return Event(raw, event_id, id_property, properties, trace_id, associations)


def _identifier(rule: Rule, document: object, max_length: int) -> str:
    text = _value(rule, document)
    if text is None or not text.strip():
        raise _failure(rule, "is empty")
    if len(text) > max_length:
        raise _failure(rule, f"is longer than {max_length} characters")
    return text


def _optional(rule: Rule | None, document: object) -> str | None:
    """An idProperty or trace id: the default when missing or empty."""
    if rule is None:
        return None
    text = _value(rule, document)
    if text is None or not text.strip():
        return None
    if len(text) > _MAX_NAME_LENGTH:
        raise _failure(rule, f"is longer than {_MAX_NAME_LENGTH} characters")
    return text


def _properties(
    mapping: EventMapping, document: object, limits: ValidationLimits
) -> dict[str, str]:
    properties = _copied(mapping.copy, document) if mapping.copy is not None else {}
    for rule in mapping.properties:
        text = _value(rule, document)
        if text is not None:
            properties[rule.name] = text
    _check_limits(properties, limits)
    return properties


def _associations(mapping: EventMapping, document: object) -> tuple[AssociationRef, ...]:
    """The associations the event names: one per entry whose target value is there."""
    if mapping.associations_from is not None:
        return _associations_from(mapping.associations_from, document)
    found: list[AssociationRef] = []
    for rule in mapping.associations:
        value = _value(rule.value, document)
        if value is None or not value.strip():
            if rule.value.on_missing is Missing.FAIL:
                raise _failure(rule.value, "is missing or empty")
            continue
        if len(value) > MAX_ASSOCIATION_VALUE_LENGTH:
            raise _failure(rule.value, f"is longer than {MAX_ASSOCIATION_VALUE_LENGTH} characters")
        ref = AssociationRef(rule.to_type, rule.id_property, value, rule.type_id, rule.category)
        found.append(ref)
    return tuple(dict.fromkeys(found))


def _associations_from(rule: AssociationsFrom, document: object) -> tuple[AssociationRef, ...]:
    try:
        listed = rule.lookup(document)
    except PathError as exc:
        raise MappingFailedError(INVALID_ASSOCIATIONS, f"associations: {exc}") from None
    if listed is None:
        return ()
    try:
        return associations_of(listed)
    except ValueError as exc:
        message = f"mapping entry associations (from `{rule.path}`): {exc}"
        raise MappingFailedError(INVALID_ASSOCIATIONS, message) from None


def _value(rule: Rule, document: object) -> str | None:
    """The entry's text for this event, None to leave it out; MappingFailedError when it fails."""
    if rule.constant is not None:
        return rule.constant
    assert rule.lookup is not None  # an entry has a path or a constant
    try:
        value = rule.lookup(document)
    except PathError as exc:
        raise _failure(rule, str(exc)) from None
    if value is None:
        return _missing(rule)
    try:
        return to_text(value, rule.conversion)
    except ConversionError as exc:
        raise _failure(rule, f"{exc} (type {rule.conversion.kind.value})") from None


def _missing(rule: Rule) -> str | None:
    if rule.on_missing is Missing.CLEAR:
        return ""
    if rule.on_missing is Missing.FAIL:
        raise _failure(rule, "is missing or null")
    return None


def _copied(rule: CopyRule, document: object) -> dict[str, str]:
    source = rule.lookup(document)
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise MappingFailedError(
            MAPPING_ERROR,
            f"mapping entry copy (from `{rule.path}`): {shown(source)} is not an object",
        )
    copied: dict[str, str] = {}
    for name, value in source.items():
        if name in rule.skip or (rule.include is not None and name not in rule.include):
            continue
        text = _copied_text(rule, name, value)
        if text is not None:
            copied[str(name)] = text
    return copied


def _copied_text(rule: CopyRule, name: object, value: object) -> str | None:
    if value is None:
        if rule.on_missing is Missing.FAIL:
            raise MappingFailedError(MAPPING_ERROR, f"mapping entry copy: field `{name}` is null")
        return "" if rule.on_missing is Missing.CLEAR else None
    try:
        return string_text(value)
    except ConversionError as exc:
        raise MappingFailedError(
            MAPPING_ERROR, f"mapping entry copy (from `{rule.path}`): field `{name}`: {exc}"
        ) from None


def _check_limits(properties: dict[str, str], limits: ValidationLimits) -> None:
    if len(properties) > limits.max_properties:
        raise MappingFailedError(
            TOO_MANY_PROPERTIES,
            f"{len(properties)} properties, more than the limit of {limits.max_properties}",
        )
    for name, text in properties.items():
        if len(text) > limits.max_value_length:
            raise MappingFailedError(
                VALUE_TOO_LONG,
                f"property `{name}` is {len(text)} characters, over {limits.max_value_length}",
            )


def _failure(rule: Rule, problem: str) -> MappingFailedError:
    where = f"path `{rule.path}`" if rule.path is not None else "constant"
    return MappingFailedError(MAPPING_ERROR, f"mapping entry {rule.entry} ({where}): {problem}")
