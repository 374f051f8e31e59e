"""Batch read and batch create of CRM records (`.../batch/read`, `.../batch/create`).

Owns HubSpot's semantics for them once a request is admitted. Read: `inputs: [{id}]`, by
HubSpot id or, with `idProperty`, by a unique property's value; a 200 with a result per
record found, or a 207 adding one `OBJECT_NOT_FOUND` error that lists every id not found.
A result carries only the properties asked for in `properties` (null when the type has the
property but the record no value; left out when the type has no such property) plus
hs_object_id, hs_createdate and hs_lastmodifieddate; HubSpot answers a per-type default set
when none are asked for, the emulator only those three, so a client that relies on a
property it did not ask for fails here too. Create: `inputs: [{properties}]`, a 201 with the
new records; any invalid property fails the whole request (a 400, as an upsert without
trace ids), a unique value already taken a 409. Both hold at most `max_inputs` inputs.
Gaps: `archived=true`, `propertiesWithHistory` and associations on create are not emulated
(the last is refused with a 400). Synchronous: each request is applied atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devstack.emulator.batchio import Outcome, Target, envelope, inputs_of, load_body, object_id
from devstack.emulator.catalog import ObjectType
from devstack.emulator.clock import iso_millis
from devstack.emulator.crmerrors import already_exists, not_unique, objects_not_found
from devstack.emulator.errors import invalid_properties, validation_error
from devstack.emulator.records import HUBSPOT_ID, Applied, RecordTable
from devstack.emulator.state import EmulatorState
from devstack.emulator.validation import ParsedInput, property_problems

ALWAYS_SHOWN = (HUBSPOT_ID, "hs_createdate", "hs_lastmodifieddate")


def process_read(
    state: EmulatorState, target: Target, raw: bytes, seq: int, requested_at: str
) -> Outcome:
    """Records by HubSpot id or unique value; raises RequestRejected for a whole-request 400."""
    kind, body = target.kind, load_body(raw)
    inputs = inputs_of(body, kind.schema.max_inputs)
    ids = [object_id(item, f"inputs[{n}]") for n, item in enumerate(inputs)]
    id_property = _id_property(body, kind)
    wanted = _names(body, "properties")
    started_at = iso_millis(state.clock.now())
    with state.store.transaction() as tables:
        found = {value: _read(tables.records, kind, id_property, value) for value in ids}
    results = [_result(kind, record, wanted) for record in found.values() if record is not None]
    missing = [value for value, record in found.items() if record is None]
    if state.config.shuffle_results:
        state.rng.shuffle(results)
    errors = [objects_not_found(kind, missing)] if missing else []
    body_out = envelope(
        results,
        errors,
        requested_at=requested_at,
        started_at=started_at,
        completed_at=iso_millis(state.clock.now()),
    )
    return Outcome(207 if errors else 200, body_out, 0, [None] * len(ids))


def process_create(
    state: EmulatorState, target: Target, raw: bytes, seq: int, requested_at: str
) -> Outcome:
    """New records; raises RequestRejected (400 invalid, 409 conflict) for the whole batch."""
    kind = target.kind
    inputs = inputs_of(load_body(raw), kind.schema.max_inputs)
    rows = [_create_input(n, item) for n, item in enumerate(inputs)]
    started_at = iso_millis(state.clock.now())
    created = create_records(state, kind, rows, started_at)
    results = [_result(kind, (hid, props, at), None) for hid, props, at, _ in created]
    body = envelope(
        results, [], requested_at=requested_at, started_at=started_at, completed_at=started_at
    )
    return Outcome(201, body, len(created), [None] * len(rows))


def create_records(
    state: EmulatorState, kind: ObjectType, rows: list[dict[str, Any]], at: str
) -> list[Applied]:
    """New records of `kind` with these properties, all or none: raises RequestRejected
    (400 for an invalid property, 409 for a unique value already held)."""
    parsed = [ParsedInput("", "", None, row) for row in rows]
    problems = property_problems(parsed, kind.schema, [False] * len(rows))
    if any(problems):
        raise invalid_properties([p for found in problems for p in found])
    with state.store.transaction() as tables:
        _reject_taken(tables.records, kind, rows)
        return tables.records.create(kind.name, rows, at, kind.schema.unique)


Record = tuple[str, dict[str, str], str]  # HubSpot id, properties, createdAt


def _read(records: RecordTable, kind: ObjectType, id_property: str, value: str) -> Record | None:
    hubspot_id = records.find(kind.name, id_property, value)
    found = records.get(kind.name, hubspot_id) if hubspot_id is not None else None
    if hubspot_id is None or found is None:
        return None
    return hubspot_id, found[0], found[1]


def _result(kind: ObjectType, record: Record, wanted: tuple[str, ...] | None) -> dict[str, Any]:
    """A SimplePublicObject with the `wanted` properties (None: every one it has)."""
    hubspot_id, properties, created_at = record
    shown: dict[str, str | None] = dict(properties)
    if wanted is not None:
        known = kind.schema.writable | kind.schema.read_only
        shown = {name: properties.get(name) for name in wanted if name in known or name in shown}
        shown.update((name, properties[name]) for name in ALWAYS_SHOWN)
    return {
        "id": hubspot_id,
        "properties": shown,
        "createdAt": created_at,
        "updatedAt": properties["hs_lastmodifieddate"],
        "archived": False,
    }


def _id_property(body: Mapping[str, Any], kind: ObjectType) -> str:
    prop = body.get("idProperty")
    if prop is None or prop == "":
        return HUBSPOT_ID
    if not isinstance(prop, str):
        raise validation_error("Invalid input JSON: idProperty must be a string")
    if prop != HUBSPOT_ID and prop not in kind.schema.unique:
        raise not_unique(kind, prop)
    return prop


def _names(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(f"Invalid input JSON: {key} must be an array of strings")
    return tuple(value)


def _create_input(index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
        raise validation_error(
            f"Invalid input JSON: inputs[{index}].properties is required (an object)"
        )
    if item.get("associations"):
        raise validation_error(
            f"inputs[{index}].associations: associating on create is not emulated; "
            "use the v4 association endpoints"
        )
    properties: dict[str, Any] = item["properties"]
    return properties


def _reject_taken(records: RecordTable, kind: ObjectType, rows: list[dict[str, Any]]) -> None:
    """A 409 when a row gives a unique property a value a record (or an earlier row) holds."""
    seen: set[tuple[str, str]] = set()
    for row in rows:
        for prop in kind.schema.unique:
            value = row.get(prop)
            if not value:
                continue
            holder = records.find(kind.name, prop, value)
            if holder is not None:
                raise already_exists(kind, holder)
            if (prop, value) in seen:
                raise validation_error(f"Duplicate {prop} values found in batch input: [{value}]")
            seen.add((prop, value))
