"""The parts of the config that describe CRM objects, association types and content faults.

Owns three small validated records and their defaults: `ObjectSchema` (an object type other
than the subscriptions-like ones of `object_types`: its type id and property rules),
`AssociationType` (one directed association type between two object types, HubSpot's
`{category, typeId, label}`, with the type id of its inverse), and `ContentFault` (answer a
fault to any upsert carrying a given property value). `EmulatorConfig` holds lists and maps
of them; this module knows nothing of the rest of the config.

Association type ids: contacts, companies and deals use HubSpot's documented HUBSPOT_DEFINED
ids (279/280 contact-company, 1/2 its "Primary", 3/4 deal-contact, 341/342 deal-company,
5/6 its "Primary"). HubSpot documents none for subscriptions (0-69) that we could find, so the
ids of the subscription pairs (90001-90006) are the emulator's own: a client must not
hard-code them (read a real portal's with `GET /crm/v4/associations/{from}/{to}/labels`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

BASE_READ_ONLY = frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate"})
AssociationCategory = Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"]
ContentFaultWhen = Literal["before", "after"]


def _strict() -> ConfigDict:
    return ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_strict())
class ObjectSchema:
    """One CRM object type served with its own rules (path name -> this, in the config)."""

    type_id: str
    unique_properties: frozenset[str] = frozenset()
    known_properties: frozenset[str] = frozenset()
    read_only_properties: frozenset[str] = BASE_READ_ONLY
    required_to_create: frozenset[str] = frozenset()


@dataclass(frozen=True, config=_strict())
class AssociationType:
    """One directed association type; `label` None is the unlabeled (default) kind."""

    from_object_type: str
    to_object_type: str
    type_id: int
    category: AssociationCategory = "HUBSPOT_DEFINED"
    label: str | None = None
    inverse_type_id: int | None = None


@dataclass(frozen=True, config=_strict())
class ContentFault:
    """Answer `status` (an HTTP status of FAULT_STATUSES, "timeout" or "drop") to any upsert
    with an input whose `property` equals `equals` (its id counts as its idProperty's value)."""

    property: str
    equals: str
    status: int | Literal["timeout", "drop"] = 500
    when: ContentFaultWhen = "before"
    object_type: str | None = None

    def fault_kind(self) -> str:
        """The fault kind this rule answers with ("500", "timeout", ...)."""
        return str(self.status)


DEFAULT_OBJECT_SCHEMAS: dict[str, ObjectSchema] = {
    "contacts": ObjectSchema(
        type_id="0-1",
        unique_properties=frozenset({"email"}),
        known_properties=frozenset({"firstname", "lastname", "phone", "company"}),
    ),
    # HubSpot does not treat a company's `domain` as a unique property: add it (or another
    # custom property) to `unique_properties` to read companies by it.
    "companies": ObjectSchema(
        type_id="0-2",
        unique_properties=frozenset({"external_customer_id"}),
        known_properties=frozenset({"name", "domain", "industry", "city", "country"}),
    ),
    "deals": ObjectSchema(
        type_id="0-3",
        unique_properties=frozenset({"external_deal_id"}),
        known_properties=frozenset({"dealname", "amount", "dealstage", "pipeline", "closedate"}),
    ),
}


def _pair(
    from_type: str, to_type: str, ids: tuple[int, int], label: str | None = None
) -> list[AssociationType]:
    """A HUBSPOT_DEFINED type and its inverse: `ids` = (from->to id, to->from id)."""
    forward, backward = ids
    return [
        AssociationType(from_type, to_type, forward, "HUBSPOT_DEFINED", label, backward),
        AssociationType(to_type, from_type, backward, "HUBSPOT_DEFINED", label, forward),
    ]


def default_association_types() -> list[AssociationType]:
    """HubSpot's defaults between contacts, companies and deals, plus the emulator's own
    unlabeled types between subscriptions and each of them (see the module docstring)."""
    return [
        *_pair("contacts", "companies", (279, 280)),
        *_pair("contacts", "companies", (1, 2), "Primary"),
        *_pair("deals", "contacts", (3, 4)),
        *_pair("deals", "companies", (341, 342)),
        *_pair("deals", "companies", (5, 6), "Primary"),
        *_pair("subscriptions", "contacts", (90001, 90002)),
        *_pair("subscriptions", "companies", (90003, 90004)),
        *_pair("subscriptions", "deals", (90005, 90006)),
    ]
