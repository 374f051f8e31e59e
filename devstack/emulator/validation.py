"""Request checks, in HubSpot's order and wording.

Owns two levels of checking. Whole-request checks (`parse_batch`) raise `RequestRejected`:
malformed JSON, missing `inputs`, more than `max_inputs`, an input without `id` or
`properties`, the same `id` twice, an `idProperty` that is not a unique property. Per-input
checks (`property_problems`) return `Problem`s: unknown or read-only properties, values that
are not strings or are too long, and properties required to create a record. Whether those
become a 207 or a 400 is decided by the caller. It must not touch the store.

Hot path: a batch of 100 inputs is checked per request, so the usual case (every property
writable, every value a short string) is recognised in one pass over the whole batch at C
speed, and inputs are NamedTuples (cheap to build, unlike frozen dataclasses).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import orjson

from devstack.emulator.batchio import inputs_of, load_body
from devstack.emulator.config import EmulatorConfig
from devstack.emulator.errors import (
    Problem,
    RequestRejected,
    correlation_id,
    validation_error,
)
from devstack.emulator.objectconfig import ObjectSchema


class ParsedInput(NamedTuple):
    """One well-formed input of a batch (its properties not yet checked)."""

    id_value: str
    id_property: str
    trace_id: str | None
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Schema:
    """The property rules of one served object type, precomputed from the config."""

    type_id: str  # HubSpot's object type id (`0-69`), used in messages
    writable: frozenset[str]
    read_only: frozenset[str]
    required_to_create: tuple[str, ...]  # sorted: the order their problems are listed in
    unique: frozenset[str]
    max_value_length: int
    max_inputs: int

    @classmethod
    def from_config(cls, cfg: EmulatorConfig, object_type: str = "subscriptions") -> Schema:
        """The schema of a type in `object_types`: the config's top-level schema fields."""
        return cls(
            type_id=cfg.object_type_id(object_type),
            writable=cfg.schema_properties - cfg.read_only_properties,
            read_only=cfg.read_only_properties,
            required_to_create=tuple(sorted(cfg.required_to_create)),
            unique=cfg.unique_id_properties,
            max_value_length=cfg.max_value_length,
            max_inputs=cfg.max_inputs,
        )

    @classmethod
    def of_object(cls, cfg: EmulatorConfig, spec: ObjectSchema) -> Schema:
        """The schema of a type in `object_schemas`."""
        known = spec.known_properties | spec.unique_properties
        return cls(
            type_id=spec.type_id,
            writable=known - spec.read_only_properties,
            read_only=spec.read_only_properties,
            required_to_create=tuple(sorted(spec.required_to_create)),
            unique=spec.unique_properties,
            max_value_length=cfg.max_value_length,
            max_inputs=cfg.max_inputs,
        )


def parse_batch(raw: bytes, schema: Schema) -> list[ParsedInput]:
    """Parse and check a batch body as a whole; raises RequestRejected (400) on any problem."""
    inputs = inputs_of(load_body(raw), schema.max_inputs)
    parsed = [_parse_input(i, item) for i, item in enumerate(inputs)]
    _reject_duplicate_ids(parsed)
    _reject_non_unique_id_properties(parsed, schema)
    return parsed


def uniquely_traced(inputs: list[ParsedInput]) -> bool:
    """Multi-status is on when every input carries an objectWriteTraceId of its own."""
    trace_ids = [inp.trace_id for inp in inputs]
    return bool(inputs) and all(trace_ids) and len(set(trace_ids)) == len(trace_ids)


def property_problems(
    inputs: Sequence[ParsedInput], schema: Schema, exists: Sequence[bool]
) -> list[list[Problem]]:
    """Per input, everything wrong with its properties (an empty list: it can be applied).

    `exists[i]` says whether inputs[i] updates a stored record (then nothing is required).
    """
    if _all_writable_strings(inputs, schema):  # the usual case: only creates can fail
        return [
            [] if known else _missing_required(inp.properties, schema)
            for inp, known in zip(inputs, exists, strict=True)
        ]
    return [
        _input_problems(inp.properties, schema, exists=known)
        for inp, known in zip(inputs, exists, strict=True)
    ]


def _parse_input(index: int, item: Any) -> ParsedInput:
    if not isinstance(item, dict):
        raise validation_error(f"Invalid input JSON: inputs[{index}] must be an object")
    id_value, props = item.get("id"), item.get("properties")
    if not isinstance(id_value, str) or not id_value:
        raise validation_error(f"Invalid input JSON: inputs[{index}].id is required (a string)")
    if not isinstance(props, dict):
        raise validation_error(
            f"Invalid input JSON: inputs[{index}].properties is required (an object)"
        )
    id_property, trace_id = item.get("idProperty"), item.get("objectWriteTraceId")
    if not isinstance(id_property, str) or not id_property:
        raise validation_error(
            f"inputs[{index}].idProperty is required: batch upsert identifies records by "
            "the value of a unique property"
        )
    if trace_id is not None and not isinstance(trace_id, str):
        raise validation_error(f"Invalid input JSON: inputs[{index}].objectWriteTraceId")
    return ParsedInput(id_value, id_property, trace_id or None, props)


def _reject_duplicate_ids(inputs: list[ParsedInput]) -> None:
    ids = [inp.id_value for inp in inputs]
    if len(set(ids)) == len(ids):
        return
    counts = Counter(ids)
    duplicates = [value for value, n in counts.items() if n > 1]
    if duplicates:
        raise RequestRejected(400, _duplicates_body(duplicates))


def _duplicates_body(duplicates: list[str]) -> dict[str, Any]:
    # Built by hand to keep HubSpot's key order: status, message, context, category, id.
    return {
        "status": "error",
        "message": f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. "
        "IDs must be unique",
        "context": {"ids": duplicates},
        "category": "VALIDATION_ERROR",
        "correlationId": correlation_id(),
    }


def _reject_non_unique_id_properties(inputs: list[ParsedInput], schema: Schema) -> None:
    for inp in inputs:
        if inp.id_property not in schema.unique:
            raise validation_error(
                f"Unable to perform update/upsert by non-unique {schema.type_id} "
                f"property {inp.id_property}"
            )


def _all_writable_strings(inputs: Sequence[ParsedInput], schema: Schema) -> bool:
    """True when no property of any input has a problem; each step runs over the batch in C."""
    props = [inp.properties for inp in inputs]
    if not schema.writable.issuperset(chain.from_iterable(props)):
        return False
    try:
        joined = "".join(chain.from_iterable(map(dict.values, props)))
    except TypeError:  # a value that is not a string
        return False
    limit = schema.max_value_length
    if len(joined) <= limit:  # no value is longer than all of them together
        return True
    return max(map(len, chain.from_iterable(map(dict.values, props)))) <= limit


def _input_problems(properties: dict[str, Any], schema: Schema, *, exists: bool) -> list[Problem]:
    """Everything wrong with one input's properties, in property order, then missing ones."""
    writable, limit = schema.writable, schema.max_value_length
    problems = [
        problem
        for name, value in properties.items()
        if not (name in writable and isinstance(value, str) and len(value) <= limit)
        and (problem := _check_property(name, value, schema)) is not None
    ]
    if not exists:
        problems.extend(_missing_required(properties, schema))
    return problems


def _check_property(name: str, value: Any, schema: Schema) -> Problem | None:
    if name in schema.read_only:
        message = f"{name} is a read only property; its value cannot be set."
        return Problem(name, "READ_ONLY_VALUE", message)
    if name not in schema.writable:
        return Problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
    if not isinstance(value, str):
        return Problem(
            name, "INVALID_STRING", f'Property "{name}" must be a string, got {_json(value)}'
        )
    if len(value) > schema.max_value_length:
        return Problem(
            name,
            "INVALID_STRING_LENGTH",
            f'Property "{name}" is {len(value)} characters long; the limit is '
            f"{schema.max_value_length}",
        )
    return None


def _missing_required(properties: Mapping[str, Any], schema: Schema) -> list[Problem]:
    if all(map(properties.get, schema.required_to_create)):  # the usual case, checked in C
        return []
    return [
        Problem(name, "REQUIRED_PROPERTY", f'Property "{name}" is required to create a record')
        for name in schema.required_to_create
        if not properties.get(name)
    ]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
