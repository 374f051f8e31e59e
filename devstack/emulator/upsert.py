"""The batch upsert itself: from a request body to a 200, 207 or whole-request 400.

Owns HubSpot's semantics once a request is admitted: whole-request checks, per-input checks
(multi-status only when every input has an objectWriteTraceId; otherwise one bad input fails
the batch and nothing is applied), the merge into the store, and the response body
(`results` with `new`, the echoed trace id, optional shuffling; `numErrors`/`errors` on a
207). Synchronous and free of awaits, so a batch is applied atomically on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.emulator.clock import iso_millis
from devstack.emulator.errors import Problem, input_error, invalid_properties
from devstack.emulator.state import EmulatorState
from devstack.emulator.store import Applied, UpsertItem
from devstack.emulator.validation import (
    ParsedInput,
    Schema,
    all_traced,
    parse_batch,
    property_problems,
)


@dataclass(slots=True)
class UpsertOutcome:
    """A processed batch: HTTP status, JSON body, and bookkeeping for the request log."""

    status: int
    body: dict[str, Any]
    applied: int = 0
    trace_ids: list[str | None] = field(default_factory=list)


def process_upsert(
    state: EmulatorState, object_type: str, raw: bytes, seq: int, requested_at: str
) -> UpsertOutcome:
    """Validate and apply one batch; raises RequestRejected for a whole-request error."""
    cfg, schema = state.active.config, state.active.schema
    inputs = parse_batch(raw, schema, cfg.object_type_id(object_type))
    started_at = iso_millis(state.clock.now())
    good, errors = _split(state, schema, object_type, inputs)
    applied = state.store.apply(
        object_type, [_item(inp) for inp in good], started_at, seq, keep=cfg.record_history
    )
    results = [_result(a, echo_trace=cfg.echo_trace_id) for a in applied]
    if cfg.shuffle_results:
        state.rng.shuffle(results)
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started_at,
        "completedAt": iso_millis(state.clock.now()),
        "requestedAt": requested_at,
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    trace_ids = [inp.trace_id for inp in inputs]
    return UpsertOutcome(207 if errors else 200, body, len(applied), trace_ids)


def _split(
    state: EmulatorState, schema: Schema, object_type: str, inputs: list[ParsedInput]
) -> tuple[list[ParsedInput], list[dict[str, Any]]]:
    """Good inputs, and a 207 error per bad one; raises the 400 when multi-status is off."""
    good: list[ParsedInput] = []
    bad: list[tuple[ParsedInput, list[Problem]]] = []
    for inp in inputs:
        exists = state.store.exists(object_type, inp.id_property, inp.id_value)
        problems = property_problems(inp, schema, exists=exists)
        if problems:
            bad.append((inp, problems))
        else:
            good.append(inp)
    if bad and (not state.active.config.multi_status or not all_traced(inputs)):
        raise invalid_properties([p for _, problems in bad for p in problems])
    return good, [input_error(problems, inp.trace_id or "") for inp, problems in bad]


def _item(inp: ParsedInput) -> UpsertItem:
    # Every value is a string here: property_problems rejected anything else.
    return UpsertItem(inp.id_value, inp.id_property, inp.trace_id, inp.properties)


def _result(applied: Applied, *, echo_trace: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": applied.hubspot_id,
        "properties": applied.properties,
        "createdAt": applied.created_at,
        "updatedAt": applied.updated_at,
        "archived": False,
        "new": applied.new,
    }
    if echo_trace and applied.item.trace_id is not None:
        result["objectWriteTraceId"] = applied.item.trace_id
    return result
