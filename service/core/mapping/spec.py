"""What an event mapping says, once read and checked: plain values, no behaviour.

An `EventMapping` tells how to get an input's `id`, `idProperty`, `objectWriteTraceId`,
properties and associations out of a decoded event (service/core/mapping/apply.py does it).
Each `Rule` names its entry in the mapping file (`properties.hs_status`), where its value
comes from (a compiled path, or a constant converted once at start-up), how it is converted
and what a null or missing value means. service/core/mapping/document.py builds these from
the file's content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MAPPING_ERROR = "MAPPING_ERROR"

Lookup = Callable[[object], object]  # the decoded event -> the value at a path (None: none)


class Kind(StrEnum):
    """The conversion to what HubSpot accepts (every property value is sent as a string)."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    ENUM = "enum"


class Missing(StrEnum):
    """What a null or missing value means for a property."""

    OMIT = "omit"  # leave the property out: HubSpot keeps what it has
    CLEAR = "clear"  # send "": HubSpot clears the property
    FAIL = "fail"  # the event is invalid (MAPPING_ERROR)


class Unit(StrEnum):
    """The unit of an epoch number read as a timestamp."""

    SECONDS = "s"
    MILLISECONDS = "ms"
    MICROSECONDS = "us"


class TimeFormat(StrEnum):
    """How a datetime or date is sent: ISO 8601 text, or epoch milliseconds."""

    ISO = "iso"
    EPOCH_MS = "epoch_ms"


@dataclass(frozen=True, slots=True)
class Conversion:
    """How a value becomes a property value. `zone`: the IANA zone of timestamps that carry
    none, and whose calendar day a `date` takes; `values`/`default`: an enum's value map and
    the value for symbols outside it (None: such a symbol is a MAPPING_ERROR)."""

    kind: Kind = Kind.STRING
    unit: Unit = Unit.MILLISECONDS
    zone: str = "UTC"
    output: TimeFormat = TimeFormat.ISO
    values: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry: where its value comes from and how it is converted. `constant`: the
    converted text of a constant entry (then `lookup` is None)."""

    entry: str
    name: str  # the property's name (for `id` and the like, the entry's)
    path: str | None
    lookup: Lookup | None
    constant: str | None
    conversion: Conversion
    on_missing: Missing = Missing.OMIT


@dataclass(frozen=True, slots=True)
class CopyRule:
    """Fields of one object copied as properties of the same name (converted as strings):
    all of them, or only `include`; never those in `exclude` or named by a property entry."""

    path: str
    lookup: Lookup
    include: frozenset[str] | None
    exclude: frozenset[str]
    skip: frozenset[str]  # `exclude` and the names of the property entries
    on_missing: Missing = Missing.OMIT


@dataclass(frozen=True, slots=True)
class AssociationRule:
    """One association a mapped event names when `value` gives the target's unique value:
    the target's object type, that unique property, and optionally a label's `type_id` and
    `category` (without them, HubSpot's default association)."""

    entry: str  # associations[0]
    to_type: str
    id_property: str
    value: Rule
    type_id: int | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class AssociationsFrom:
    """A list in the event, of objects shaped as the contract's `associations`."""

    path: str
    lookup: Lookup


@dataclass(frozen=True, slots=True)
class EventMapping:
    """A checked mapping; `described` is its normalised form, as check-config prints it."""

    id: Rule
    id_property: Rule | None
    trace_id: Rule | None
    properties: tuple[Rule, ...]
    copy: CopyRule | None
    described: Mapping[str, object]
    associations: tuple[AssociationRule, ...] = ()
    associations_from: AssociationsFrom | None = None


class MappingFailedError(Exception):
    """A mapping entry could not give a value for one event (the event is invalid)."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


class ConversionError(Exception):
    """A value cannot be converted; the message says why, without naming the entry."""


def shown(value: object) -> str:
    """A value as a message quotes it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"
