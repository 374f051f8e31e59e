"""HubSpot's v4 association batch endpoints: associate/default, create (labels) and read.

Owns their semantics once a request is admitted (`/crm/v4/associations/{from}/{to}/batch/...`
and the date-versioned twin). Links are stored in both directions: the type asked for on
the from->to link and its inverse on the to->from link; associating again changes nothing.
- associate/default, `inputs: [{from: {id}, to: {id}}]`: the pair's unlabeled
  HUBSPOT_DEFINED type; a 200 whose results hold both directions of each link (as HubSpot
  answers), with `numErrors`/`errors` for inputs naming a record that does not exist (the
  spec gives this endpoint a 200 only, its body carrying the errors); a 400 when the pair
  has no default type.
- create, `inputs: [{from, to, types: [{associationCategory, associationTypeId}]}]`: a 201
  with one `{fromObjectTypeId, fromObjectId, toObjectTypeId, toObjectId, labels}` per input,
  or a 207 adding an error per input with an unknown type or a missing record (that input
  changes nothing).
- read, `inputs: [{id}]`: per from record, `{from: {id}, to: [{toObjectId,
  associationTypes: [{category, typeId, label}]}]}`; a record with none (or that does not
  exist) is a NO_ASSOCIATIONS_FOUND error in a 207. No paging: every link in one page.
Limits: `max_association_inputs` (create, default) and `max_association_read_inputs` (read).
"""

from __future__ import annotations

from typing import Any

from devstack.emulator.batchio import Outcome, Target, envelope, inputs_of, load_body, object_id
from devstack.emulator.catalog import AssociationRegistry
from devstack.emulator.clock import iso_millis
from devstack.emulator.crmerrors import (
    invalid_type,
    no_associations,
    no_default_type,
    record_missing,
)
from devstack.emulator.errors import validation_error
from devstack.emulator.objectconfig import AssociationType
from devstack.emulator.records import HUBSPOT_ID
from devstack.emulator.state import EmulatorState
from devstack.emulator.store import Tables

Pair = tuple[str, str]  # from id, to id
TypeRef = tuple[str | None, int]  # category (None: not given), type id
CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK")


def process_default(
    state: EmulatorState, target: Target, raw: bytes, seq: int, requested_at: str
) -> Outcome:
    inputs = inputs_of(load_body(raw), state.config.max_association_inputs)
    pairs = [_pair(n, item) for n, item in enumerate(inputs)]
    registry = state.catalog.associations
    kind = registry.default(target.kind.name, target.to.name)
    if kind is None:
        raise no_default_type(target.kind, target.to)
    started_at = iso_millis(state.clock.now())
    results, errors, created = [], [], 0
    with state.store.transaction() as tables:
        for pair in pairs:
            missing = _missing(tables, target, pair)
            if missing is not None:
                errors.append(missing)
                continue
            created += _link(tables, registry, target, pair, kind)
            results.extend(_default_results(registry, pair, kind))
    times = (requested_at, started_at)
    return _outcome(state, 200, results, errors, times=times, applied=created, inputs=len(pairs))


def process_create(
    state: EmulatorState, target: Target, raw: bytes, seq: int, requested_at: str
) -> Outcome:
    inputs = inputs_of(load_body(raw), state.config.max_association_inputs)
    asked = [_labelled(n, item) for n, item in enumerate(inputs)]
    registry = state.catalog.associations
    started_at = iso_millis(state.clock.now())
    results, errors, created = [], [], 0
    with state.store.transaction() as tables:
        for pair, refs in asked:
            kinds, problem = _kinds(registry, target, refs)
            problem = problem or _missing(tables, target, pair)
            if problem is not None:
                errors.append(problem)
                continue
            created += sum(_link(tables, registry, target, pair, kind) for kind in kinds)
            results.append(_labels_result(target, pair, kinds))
    status, times = (207 if errors else 201), (requested_at, started_at)
    return _outcome(state, status, results, errors, times=times, applied=created, inputs=len(asked))


def process_read(
    state: EmulatorState, target: Target, raw: bytes, seq: int, requested_at: str
) -> Outcome:
    inputs = inputs_of(load_body(raw), state.config.max_association_read_inputs)
    ids = list(dict.fromkeys(object_id(item, f"inputs[{n}]") for n, item in enumerate(inputs)))
    registry = state.catalog.associations
    started_at = iso_millis(state.clock.now())
    with state.store.transaction() as tables:
        found = {i: tables.links.targets(target.kind.name, i, target.to.name) for i in ids}
    results = [_read_result(registry, target, i, links) for i, links in found.items() if links]
    errors = [no_associations(target.kind, i, target.to) for i, links in found.items() if not links]
    status, times = (207 if errors else 200), (requested_at, started_at)
    return _outcome(state, status, results, errors, times=times, applied=0, inputs=len(inputs))


def _outcome(
    state: EmulatorState,
    status: int,
    results: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    *,
    times: tuple[str, str],
    applied: int,
    inputs: int,
) -> Outcome:
    """The outcome; `times` = (requestedAt, startedAt)."""
    requested_at, started_at = times
    completed_at = iso_millis(state.clock.now())
    body = envelope(
        results, errors, requested_at=requested_at, started_at=started_at, completed_at=completed_at
    )
    return Outcome(status, body, applied, [None] * inputs)


def _pair(index: int, item: Any) -> Pair:
    if not isinstance(item, dict):
        raise validation_error(f"Invalid input JSON: inputs[{index}] must be an object")
    where = f"inputs[{index}]"
    return object_id(item.get("from"), f"{where}.from"), object_id(item.get("to"), f"{where}.to")


def _labelled(index: int, item: Any) -> tuple[Pair, list[TypeRef]]:
    pair = _pair(index, item)
    types = item.get("types")
    if not isinstance(types, list) or not types:
        raise validation_error(f"Invalid input JSON: inputs[{index}].types must not be empty")
    return pair, [_type_ref(f"inputs[{index}].types[{n}]", spec) for n, spec in enumerate(types)]


def _type_ref(where: str, spec: Any) -> TypeRef:
    type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
    if not isinstance(type_id, int) or isinstance(type_id, bool):
        raise validation_error(f"Invalid input JSON: {where}.associationTypeId (an integer)")
    category = spec.get("associationCategory")
    if category is not None and category not in CATEGORIES:
        raise validation_error(f"Invalid input JSON: {where}.associationCategory {category!r}")
    return category, type_id


def _kinds(
    registry: AssociationRegistry, target: Target, refs: list[TypeRef]
) -> tuple[list[AssociationType], dict[str, Any] | None]:
    """The association types asked for, or the error for the first that does not exist."""
    kinds = []
    for category, type_id in refs:
        tried = [category] if category is not None else list(CATEGORIES)
        found = [registry.find(target.kind.name, target.to.name, c, type_id) for c in tried]
        kind = next((k for k in found if k is not None), None)
        if kind is None:
            return [], invalid_type(target.kind, target.to, tried[0], type_id)
        kinds.append(kind)
    return kinds, None


def _missing(tables: Tables, target: Target, pair: Pair) -> dict[str, Any] | None:
    """The error for a from or to record that does not exist, or None."""
    ends = (target.kind, target.to)
    for side, kind, record_id in (("from", ends[0], pair[0]), ("to", ends[1], pair[1])):
        if tables.records.find(kind.name, HUBSPOT_ID, record_id) is None:
            return record_missing(ends, pair, side)
    return None


def _link(
    tables: Tables,
    registry: AssociationRegistry,
    target: Target,
    pair: Pair,
    kind: AssociationType,
) -> int:
    """Add the link and its inverse; 1 when the from->to link did not have this type yet."""
    (from_name, to_name), (from_id, to_id) = (target.kind.name, target.to.name), pair
    new = tables.links.add(from_name, from_id, to_name, to_id, (kind.category, kind.type_id))
    inverse = registry.inverse(kind)
    if inverse is not None:
        spec = (inverse.category, inverse.type_id)
        tables.links.add(to_name, to_id, from_name, from_id, spec)
    return int(new)


def _default_results(
    registry: AssociationRegistry, pair: Pair, kind: AssociationType
) -> list[dict[str, Any]]:
    """Both directions of the link, as HubSpot answers associate/default."""
    found = [_default_result(pair, kind)]
    inverse = registry.inverse(kind)
    if inverse is not None:
        found.append(_default_result((pair[1], pair[0]), inverse))
    return found


def _default_result(pair: Pair, kind: AssociationType) -> dict[str, Any]:
    spec = {"associationCategory": kind.category, "associationTypeId": kind.type_id}
    return {"from": {"id": pair[0]}, "to": {"id": pair[1]}, "associationSpec": spec}


def _labels_result(target: Target, pair: Pair, kinds: list[AssociationType]) -> dict[str, Any]:
    return {
        "fromObjectTypeId": target.kind.type_id,
        "fromObjectId": pair[0],
        "toObjectTypeId": target.to.type_id,
        "toObjectId": pair[1],
        "labels": [kind.label for kind in kinds if kind.label is not None],
    }


def _read_result(
    registry: AssociationRegistry,
    target: Target,
    from_id: str,
    links: list[tuple[str, list[tuple[str, int]]]],
) -> dict[str, Any]:
    def described(category: str, type_id: int) -> dict[str, Any]:
        kind = registry.find(target.kind.name, target.to.name, category, type_id)
        label = kind.label if kind is not None else None
        return {"category": category, "typeId": type_id, "label": label}

    return {
        "from": {"id": from_id},
        "to": [
            {
                # HubSpot answers the id as a JSON number (its spec says string).
                "toObjectId": int(to_id) if to_id.isdigit() else to_id,
                "associationTypes": [described(c, t) for c, t in specs],
            }
            for to_id, specs in links
        ],
    }
