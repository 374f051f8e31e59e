"""Reads a mapping file's content (already parsed from YAML or JSON) into an EventMapping.

Checks everything that can be checked before any event arrives: the keys at each level,
each entry's path (a JMESPath expression) or constant (converted once, here), its type and
the options that type takes (an enum's value map, a timestamp's unit, zone and format), and
what null means. Every problem is reported, each as one line naming its entry
(`properties.hs_status: ...`); the caller adds the file's name. Pure.

The file's shape (docs/upstream-events.md walks through an example):

    id: <entry>                       required
    idProperty: <entry>               optional (default: HUBSPOT_ID_PROPERTY)
    objectWriteTraceId: <entry>       optional (default: derived from topic/partition/offset)
    properties: {<name>: <entry>}     the HubSpot properties
    copy: {from: <path>, include: [..], exclude: [..], on_missing: ..}
    associations: [{to: <object type>, idProperty: <name>, id: <entry>, typeId: .., category: ..}]
                  or {from: <path>} (a list shaped as the contract's `associations`)
    <entry> = "<path>" | {path: <path> | value: <constant>, type: ..., on_missing: ..., ...}
"""

from __future__ import annotations

from typing import Any

from service.core.codec import MAX_ASSOCIATIONS, OBJECT_TYPE
from service.core.mapping.convert import to_text
from service.core.mapping.describe import describe
from service.core.mapping.options import EntryOptions, kind_of
from service.core.mapping.paths import compile_path, parse_problem
from service.core.mapping.spec import (
    AssociationRule,
    AssociationsFrom,
    Conversion,
    ConversionError,
    CopyRule,
    EventMapping,
    Missing,
    Rule,
)

_TOP = ("id", "idProperty", "objectWriteTraceId", "properties", "copy", "associations")
_IDENTIFIER = ("path", "value")
_PROPERTY = ("path", "value", "type", "on_missing", "values", "default", "unit", "timezone",
             "format")  # fmt: skip
_COPY = ("from", "include", "exclude", "on_missing")
_ASSOCIATION = ("to", "idProperty", "id", "typeId", "category")
_ASSOCIATION_ID = ("path", "value", "on_missing")

# The contract's input event, as a mapping: what a registry format reads without a file.
CONTRACT_DOCUMENT: dict[str, object] = {
    "id": "id",
    "idProperty": "idProperty",
    "objectWriteTraceId": "objectWriteTraceId",
    "copy": {"from": "properties", "on_missing": "clear"},
    "associations": {"from": "associations"},
}


class MappingSpecError(Exception):
    """The mapping cannot be used; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_mapping(document: object) -> EventMapping:
    """The checked mapping, or MappingSpecError listing every problem."""
    reader = _Reader()
    mapping = reader.mapping(document)
    if reader.problems or mapping is None:
        raise MappingSpecError(reader.problems or ["the mapping is empty"])
    return mapping


class _Reader(EntryOptions):
    """Reads the whole document; the entries' conversion options come from EntryOptions."""

    def mapping(self, document: object) -> EventMapping | None:
        if not isinstance(document, dict):
            self.problem("", f"the file holds {kind_of(document)}, not a mapping of entries")
            return None
        self.unknown_keys("", document, _TOP)
        rules = self.identifiers(document)
        properties = self.properties(document.get("properties"))
        names = frozenset(rule.name for rule in properties)
        copy = self.copy(document.get("copy"), names) if "copy" in document else None
        if not properties and copy is None and not self.problems:
            self.problem("", "neither `properties` nor `copy`: no property would be sent")
        linked, linked_from = self.associations(document.get("associations"))
        if rules[0] is None:
            return None
        described = describe(rules, properties, copy, linked, linked_from)
        return EventMapping(
            rules[0], rules[1], rules[2], properties, copy, described, linked, linked_from
        )

    def identifiers(self, document: dict[Any, Any]) -> tuple[Rule | None, ...]:
        if document.get("id") is None:
            self.problem(
                "id", "is required (the path to the HubSpot id, e.g. `id: subscription_id`)"
            )
        found = []
        for key, missing in (
            ("id", Missing.FAIL),
            ("idProperty", None),
            ("objectWriteTraceId", None),
        ):
            raw = document.get(key)
            found.append(None if raw is None else self.rule(key, key, raw, _IDENTIFIER, missing))
        return tuple(found)

    def properties(self, raw: object) -> tuple[Rule, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            self.problem("properties", f"is {kind_of(raw)}, not a mapping of property names")
            return ()
        rules = []
        for name, spec in raw.items():
            entry = f"properties.{name}"
            if not isinstance(name, str) or not name.strip() or name != name.strip():
                self.problem(entry, "a property name must be text without surrounding spaces")
            elif (rule := self.rule(entry, name, spec, _PROPERTY, None)) is not None:
                rules.append(rule)
        return tuple(rules)

    def rule(
        self, entry: str, name: str, raw: object, keys: tuple[str, ...], missing: Missing | None
    ) -> Rule | None:
        spec = {"path": raw} if isinstance(raw, str) else raw
        if not isinstance(spec, dict):
            self.problem(
                entry, f"is {kind_of(raw)}; give a path, or `path:` or `value:` with options"
            )
            return None
        before = len(self.problems)
        self.unknown_keys(entry, spec, keys)
        conversion = self.conversion(entry, spec) if "type" in keys else Conversion()
        on_missing = missing or self.on_missing(entry, spec.get("on_missing", "omit"))
        source = self.source(entry, spec, conversion)
        if len(self.problems) > before or source is None:
            return None
        path, constant = source
        lookup = compile_path(path) if path is not None else None
        return Rule(entry, name, path, lookup, constant, conversion, on_missing)

    def source(
        self, entry: str, spec: dict[Any, Any], conversion: Conversion
    ) -> tuple[str | None, str | None] | None:
        if ("path" in spec) == ("value" in spec):
            self.problem(entry, "give exactly one of `path` (a field of the event) and `value`")
            return None
        if "path" in spec:
            return self.path(entry, "path", spec["path"])
        return self.constant(entry, spec["value"], conversion)

    def path(self, entry: str, key: str, path: object) -> tuple[str | None, str | None] | None:
        if not isinstance(path, str) or not path.strip():
            self.problem(entry, f"`{key}` is {kind_of(path)}, not a JMESPath expression")
            return None
        problem = parse_problem(path)
        if problem is not None:
            self.problem(entry, f"`{key}` {path!r} is not a JMESPath expression: {problem}")
            return None
        return path, None

    def constant(
        self, entry: str, value: object, conversion: Conversion
    ) -> tuple[str | None, str | None] | None:
        if value is None or isinstance(value, dict | list):
            self.problem(
                entry, f"`value` is {kind_of(value)}; a constant is text, a number or a boolean"
            )
            return None
        try:
            return None, to_text(value, conversion)
        except ConversionError as exc:
            self.problem(entry, f"`value` does not convert to {conversion.kind.value}: {exc}")
            return None

    def copy(self, raw: object, explicit: frozenset[str]) -> CopyRule | None:
        spec = {"from": raw} if isinstance(raw, str) else raw
        if not isinstance(spec, dict):
            self.problem("copy", f"is {kind_of(raw)}; give `from:` (a path to an object)")
            return None
        before = len(self.problems)
        self.unknown_keys("copy", spec, _COPY)
        source = self.path("copy", "from", spec.get("from", "@"))
        include, exclude = (
            self.names("copy.include", spec.get("include")),
            self.names("copy.exclude", spec.get("exclude", [])),
        )
        on_missing = self.on_missing("copy", spec.get("on_missing", "omit"))
        if len(self.problems) > before or source is None or source[0] is None:
            return None
        exclude = exclude or frozenset()
        path = source[0]
        return CopyRule(path, compile_path(path), include, exclude, explicit | exclude, on_missing)

    def names(self, entry: str, raw: object) -> frozenset[str] | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            self.problem(entry, f"is {kind_of(raw)}; give a list of field names")
            return None
        return frozenset(raw)

    def associations(
        self, raw: object
    ) -> tuple[tuple[AssociationRule, ...], AssociationsFrom | None]:
        """The `associations` entries: a list of them, or `{from: <path>}`."""
        if raw is None:
            return (), None
        if isinstance(raw, dict):
            self.unknown_keys("associations", raw, ("from",))
            found = self.path("associations", "from", raw.get("from"))
            if found is None or found[0] is None:
                return (), None
            return (), AssociationsFrom(found[0], compile_path(found[0]))
        if not isinstance(raw, list) or len(raw) > MAX_ASSOCIATIONS:
            self.problem(
                "associations",
                f"is {kind_of(raw)}; give a list of at most {MAX_ASSOCIATIONS} associations "
                "(`to`, `idProperty`, `id`), or `from:` a path to such a list in the event",
            )
            return (), None
        rules = (self.association(f"associations[{n}]", spec) for n, spec in enumerate(raw))
        return tuple(rule for rule in rules if rule is not None), None

    def association(self, entry: str, spec: object) -> AssociationRule | None:
        if not isinstance(spec, dict):
            self.problem(entry, f"is {kind_of(spec)}; give `to`, `idProperty` and `id`")
            return None
        before = len(self.problems)
        self.unknown_keys(entry, spec, _ASSOCIATION)
        to_type, id_property = spec.get("to"), spec.get("idProperty")
        if not isinstance(to_type, str) or not OBJECT_TYPE.match(to_type):
            self.problem(entry, f"`to` is {to_type!r}: name an object type (e.g. contacts)")
        if not isinstance(id_property, str) or not id_property.strip():
            self.problem(entry, "`idProperty` must name the target's unique property")
        type_id, category = spec.get("typeId"), spec.get("category")
        if type_id is not None and (not isinstance(type_id, int) or isinstance(type_id, bool)):
            self.problem(entry, f"`typeId` is {kind_of(type_id)}, not an integer")
        if category is not None and (not isinstance(category, str) or type_id is None):
            self.problem(entry, "`category` must be text, and goes with a `typeId`")
        value = self.association_id(f"{entry}.id", spec.get("id"))
        if len(self.problems) > before or value is None:
            return None
        return AssociationRule(entry, str(to_type), str(id_property), value, type_id, category)

    def association_id(self, entry: str, raw: object) -> Rule | None:
        if raw is None:
            self.problem(entry, "is required: the path to the target's unique value")
            return None
        spec = {"path": raw} if isinstance(raw, str) else raw
        if isinstance(spec, dict) and spec.get("on_missing") == Missing.CLEAR.value:
            self.problem(entry, "`on_missing` is omit (no association) or fail, not clear")
            return None
        return self.rule(entry, "id", spec, _ASSOCIATION_ID, None)
