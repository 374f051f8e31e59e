"""The batch upsert itself: from a request body to a 200, 207 or whole-request 400.

Owns HubSpot's semantics once a request is admitted: whole-request checks, per-input checks
(multi-status only when every input has an objectWriteTraceId and no two share one;
otherwise one bad input fails the batch and nothing is applied), the merge into the store,
and the response body (`results` with `new`, the echoed trace id, optional shuffling;
`numErrors`/`errors` on a 207). Synchronous and free of awaits, so a batch is applied
atomically on the event loop.
"""

from __future__ import annotations

from typing import Any

from devstack.emulator.batchio import Outcome, envelope
from devstack.emulator.catalog import ObjectType
from devstack.emulator.clock import iso_millis
from devstack.emulator.errors import Problem, input_error, invalid_properties
from devstack.emulator.records import Applied
from devstack.emulator.state import EmulatorState
from devstack.emulator.validation import (
    ParsedInput,
    Schema,
    parse_batch,
    property_problems,
    uniquely_traced,
)


def process_upsert(
    state: EmulatorState, kind: ObjectType, raw: bytes, seq: int, requested_at: str
) -> Outcome:
    """Validate and apply one batch; raises RequestRejected for a whole-request error."""
    cfg, schema = state.config, kind.schema
    inputs = parse_batch(raw, schema)
    started_at = iso_millis(state.clock.now())
    good, errors = _split(state, schema, kind.name, inputs)
    # Every property value of a good input is a string: property_problems rejected the rest.
    applied = state.store.apply(
        kind.name, good, started_at, seq, keep=cfg.record_history, unique=schema.unique
    )
    echo = cfg.echo_trace_id
    results = [
        _result(done, inp.trace_id if echo else None, started_at)
        for done, inp in zip(applied, good, strict=True)
    ]
    if cfg.shuffle_results:
        state.rng.shuffle(results)
    body = envelope(
        results,
        errors,
        requested_at=requested_at,
        started_at=started_at,
        completed_at=iso_millis(state.clock.now()),
    )
    trace_ids = [inp.trace_id for inp in inputs]
    return Outcome(207 if errors else 200, body, len(applied), trace_ids)


def _split(
    state: EmulatorState, schema: Schema, object_type: str, inputs: list[ParsedInput]
) -> tuple[list[ParsedInput], list[dict[str, Any]]]:
    """Good inputs, and a 207 error per bad one; raises the 400 when multi-status is off."""
    exists = state.store.existing(object_type, inputs)
    problems = property_problems(inputs, schema, exists)
    if not any(problems):
        return inputs, []
    bad: list[tuple[ParsedInput, list[Problem]]] = [
        (inp, found) for inp, found in zip(inputs, problems, strict=True) if found
    ]
    if not state.config.multi_status or not uniquely_traced(inputs):
        raise invalid_properties([p for _, found in bad for p in found])
    good = [inp for inp, found in zip(inputs, problems, strict=True) if not found]
    return good, [input_error(found, inp.trace_id or "") for inp, found in bad]


def _result(applied: Applied, trace_id: str | None, updated_at: str) -> dict[str, Any]:
    """One entry of `results`; `trace_id` None leaves out objectWriteTraceId."""
    hubspot_id, properties, created_at, new = applied
    result: dict[str, Any] = {
        "id": hubspot_id,
        "properties": properties,
        "createdAt": created_at,
        "updatedAt": updated_at,
        "archived": False,
        "new": new,
    }
    if trace_id is not None:
        result["objectWriteTraceId"] = trace_id
    return result
