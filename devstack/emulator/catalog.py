"""The object types and association types a config serves, ready for lookups.

Owns how a path segment names an object type (its path name, its type id such as `0-1`, or
its singular such as `contact`, in any case: HubSpot accepts all of them), each type's
`Schema`, and the association types between served types (`AssociationRegistry`: the default
type of a pair, a type by category and id, a type's inverse). Built once per config; never
changed after, so readers need no lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devstack.emulator.config import EmulatorConfig
from devstack.emulator.objectconfig import AssociationType
from devstack.emulator.validation import Schema

AssociationKey = tuple[str, str, str, int]  # from type, to type, category, type id


@dataclass(frozen=True, slots=True)
class ObjectType:
    """One served object type."""

    name: str  # the path name used as the canonical name: "contacts", "subscriptions"
    type_id: str  # "0-1"
    singular: str  # "contact": how HubSpot's association messages name it
    schema: Schema

    @property
    def upper(self) -> str:
        """`CONTACT`: how HubSpot's object messages name the type."""
        return self.singular.upper()


class AssociationRegistry:
    """Association types between served object types (types naming others are ignored)."""

    def __init__(self, types: Iterable[AssociationType], served: Mapping[str, ObjectType]):
        usable = [t for t in types if {t.from_object_type, t.to_object_type} <= served.keys()]
        self._by_key: dict[AssociationKey, AssociationType] = {_key(t): t for t in usable}
        self._defaults: dict[tuple[str, str], AssociationType] = {}
        for t in usable:
            if t.category == "HUBSPOT_DEFINED" and t.label is None:
                self._defaults.setdefault((t.from_object_type, t.to_object_type), t)

    def default(self, from_type: str, to_type: str) -> AssociationType | None:
        """The unlabeled HUBSPOT_DEFINED type of the pair (what associate/default creates)."""
        return self._defaults.get((from_type, to_type))

    def find(
        self, from_type: str, to_type: str, category: str, type_id: int
    ) -> AssociationType | None:
        return self._by_key.get((from_type, to_type, category, type_id))

    def inverse(self, kind: AssociationType) -> AssociationType | None:
        """The type the same link has read from the other end (None: one-directional)."""
        if kind.inverse_type_id is None:
            return None
        return self.find(
            kind.to_object_type, kind.from_object_type, kind.category, kind.inverse_type_id
        )


class Catalog:
    """Every served object type by name and alias, and their association types."""

    def __init__(self, cfg: EmulatorConfig) -> None:
        types = {name: _top_level(cfg, name) for name in cfg.object_types}
        for name, spec in cfg.object_schemas.items():
            if name not in types:
                types[name] = ObjectType(
                    name, spec.type_id, singular(name), Schema.of_object(cfg, spec)
                )
        self.types: Mapping[str, ObjectType] = types
        self._aliases = {
            alias.lower(): kind
            for kind in types.values()
            for alias in (kind.singular, kind.type_id, kind.name)
        }
        self.associations = AssociationRegistry(cfg.association_types, types)

    def resolve(self, name: str) -> ObjectType | None:
        """The object type a path segment names, or None."""
        return self._aliases.get(name.lower())


def singular(name: str) -> str:
    """`companies` -> `company`, `contacts` -> `contact`; other names unchanged."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def _top_level(cfg: EmulatorConfig, name: str) -> ObjectType:
    return ObjectType(name, cfg.object_type_id(name), singular(name), Schema.from_config(cfg, name))


def _key(kind: AssociationType) -> AssociationKey:
    return (kind.from_object_type, kind.to_object_type, kind.category, kind.type_id)
