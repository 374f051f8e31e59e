"""HubSpot-shaped errors of the object read/create and v4 association endpoints.

Owns their wording and fields. Shapes recorded from HubSpot's real answers (public client
test fixtures and integration notes, 2024-2026):
- batch read, missing records: one error for all of them, `OBJECT_NOT_FOUND`, "Could not get
  some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
  `context.ids` listing the ids not found;
- batch create, a unique value taken: 409 `CONFLICT` "Contact already exists. Existing ID: 1";
- v4 batch read, a record without associations: `OBJECT_NOT_FOUND`, subCategory
  `crm.associations.NO_ASSOCIATIONS_FOUND`, "No company is associated with deal 5.",
  `context` {fromObjectId, fromObjectType, toObjectType};
- v4, an association type that does not exist: `VALIDATION_ERROR`, subCategory
  `crm.associations.INVALID_ASSOCIATION_TYPE`, "0-5 is not a valid association type between
  CONTACT and DEAL", `context` {type, fromObjectType, toObjectType}.
Not found in any recording, so the emulator's own (clients must rely on the category and
context, not the wording): the association error for a from/to record that does not exist,
the 400s for a non-unique idProperty on read and for a pair with no default type. HubSpot's
spec requires `errors` and `links` on a batch error (its official client, with client-side
validation on, refuses one without them); the recordings omit them; they are sent here, empty.
"""

from __future__ import annotations

from typing import Any

from devstack.emulator.catalog import ObjectType
from devstack.emulator.errors import RequestRejected, error_body, validation_error

# How HubSpot prefixes an association type id in messages ("0-5": category HUBSPOT_DEFINED
# is 0; the other prefixes are a guess).
CATEGORY_PREFIX = {"HUBSPOT_DEFINED": 0, "USER_DEFINED": 1, "INTEGRATOR_DEFINED": 2, "WORK": 3}


def batch_error(
    category: str, message: str, context: dict[str, list[str]], sub_category: str | None = None
) -> dict[str, Any]:
    """One entry of a batch response's `errors[]` (HubSpot's `StandardError`)."""
    error: dict[str, Any] = {"status": "error", "category": category}
    if sub_category is not None:
        error["subCategory"] = sub_category
    error.update(message=message, context=context, errors=[], links={})
    return error


def objects_not_found(kind: ObjectType, ids: list[str]) -> dict[str, Any]:
    message = (
        f"Could not get some {kind.upper} objects, they may be deleted or not exist. "
        "Check that ids are valid."
    )
    return batch_error("OBJECT_NOT_FOUND", message, {"ids": ids})


def already_exists(kind: ObjectType, hubspot_id: str) -> RequestRejected:
    message = f"{kind.singular.capitalize()} already exists. Existing ID: {hubspot_id}"
    return RequestRejected(409, error_body(message, "CONFLICT"))


def not_unique(kind: ObjectType, prop: str) -> RequestRejected:
    return validation_error(f"Unable to perform read by non-unique {kind.type_id} property {prop}")


def no_associations(from_kind: ObjectType, from_id: str, to_kind: ObjectType) -> dict[str, Any]:
    message = f"No {to_kind.singular} is associated with {from_kind.singular} {from_id}."
    context = {
        "fromObjectId": [from_id],
        "fromObjectType": [from_kind.singular],
        "toObjectType": [to_kind.singular],
    }
    return batch_error(
        "OBJECT_NOT_FOUND", message, context, "crm.associations.NO_ASSOCIATIONS_FOUND"
    )


def record_missing(
    ends: tuple[ObjectType, ObjectType], ids: tuple[str, str], missing: str
) -> dict[str, Any]:
    """A from or to record (`missing` names which) that does not exist."""
    (from_kind, to_kind), (from_id, to_id) = ends, ids
    kind, record_id = (from_kind, from_id) if missing == "from" else (to_kind, to_id)
    message = f"No {kind.singular} with id {record_id} exists."
    context = {
        "fromObjectId": [from_id],
        "toObjectId": [to_id],
        "fromObjectType": [from_kind.singular],
        "toObjectType": [to_kind.singular],
    }
    return batch_error("OBJECT_NOT_FOUND", message, context, "crm.associations.OBJECT_NOT_FOUND")


def invalid_type(
    from_kind: ObjectType, to_kind: ObjectType, category: str, type_id: int
) -> dict[str, Any]:
    named = f"{CATEGORY_PREFIX.get(category, 0)}-{type_id}"
    message = (
        f"{named} is not a valid association type between {from_kind.upper} and {to_kind.upper}"
    )
    context = {
        "type": [named],
        "fromObjectType": [from_kind.upper],
        "toObjectType": [to_kind.upper],
    }
    return batch_error(
        "VALIDATION_ERROR", message, context, "crm.associations.INVALID_ASSOCIATION_TYPE"
    )


def no_default_type(from_kind: ObjectType, to_kind: ObjectType) -> RequestRejected:
    return validation_error(
        f"There is no default association type between {from_kind.upper} and {to_kind.upper}"
    )
