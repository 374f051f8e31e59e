"""What every batch endpoint shares: its target, its outcome, reading a body, the envelope.

Owns `Target` (the object type(s) a request's path names), `Outcome` (status, JSON body and
request-log bookkeeping of a processed request), reading `{"inputs": [...]}` bodies with
HubSpot's whole-request 400s (malformed JSON, no `inputs` array, over the batch limit, an
input that is not `{"id": "..."}`), and the batch response envelope
(`{status: COMPLETE, results, [numErrors, errors], requestedAt, startedAt, completedAt}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from devstack.emulator.errors import validation_error

if TYPE_CHECKING:  # catalog imports validation, which imports this module
    from devstack.emulator.catalog import ObjectType


@dataclass(frozen=True, slots=True)
class Target:
    """The object type a request's path names (and the `to` type of an association path)."""

    kind: ObjectType
    to_kind: ObjectType | None = None

    @property
    def to(self) -> ObjectType:
        """The `to` type of an association path."""
        if self.to_kind is None:
            raise ValueError("not an association path")
        return self.to_kind


@dataclass(slots=True)
class Outcome:
    """A processed batch: HTTP status, JSON body, and bookkeeping for the request log."""

    status: int
    body: dict[str, Any]
    applied: int = 0
    trace_ids: list[str | None] = field(default_factory=list)


def load_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body; a 400 when it is not one with an `inputs` array."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation_error(
            "Invalid input JSON: the body must be an object with an `inputs` array"
        )
    return body


def inputs_of(body: dict[str, Any], limit: int) -> list[Any]:
    """The body's inputs; a 400 when there are more than `limit`."""
    inputs: list[Any] = body["inputs"]
    if len(inputs) > limit:
        raise validation_error(
            f"The maximum number of inputs supported in a batch request is {limit}. "
            "Please reduce the number of items and try again"
        )
    return inputs


def object_id(item: Any, where: str) -> str:
    """The id of a `{"id": "..."}` object (`where` names it in the 400, e.g. inputs[3].to)."""
    value = item.get("id") if isinstance(item, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # HubSpot's Java side reads a JSON number as the id too
    if not isinstance(value, str) or not value:
        raise validation_error(f"Invalid input JSON: {where}.id is required (a string)")
    return value


def envelope(
    results: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    *,
    requested_at: str,
    started_at: str,
    completed_at: str,
) -> dict[str, Any]:
    """A batch response body; `numErrors` and `errors` only when there are errors."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started_at,
        "completedAt": completed_at,
        "requestedAt": requested_at,
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body
