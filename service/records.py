"""Builds the result and dead-letter records of the contract. Pure: values in, bytes out.

Result records: one per input event, keyed by the event's id (or the original key when
the id could not be read). For a coalesced input, the last event carries the input's
trace id; the absorbed events keep their own and name the carrier's in `coalescedInto`.
Dead-letter records: the original key, value and headers unchanged, plus `error.*` and
`source.*` headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

from service.model import BatchInput, ErrorInfo, InputOutcome, RawMessage, Rejection, Status

MAX_HEADER_MESSAGE_CHARS = 2_000


class OutboundRecord(NamedTuple):
    """A record to publish (a tuple: one or two are built per event)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


@dataclass(frozen=True, slots=True)
class Topics:
    output: str
    dlq: str


def records_for_input(
    item: BatchInput, outcome: InputOutcome, topics: Topics
) -> list[list[OutboundRecord]]:
    """For every event an input carried, in order: its result and, if it failed, its dead letter.

    The fields every event of the input shares are computed once; each event adds its own id,
    trace id, source position and, for an absorbed event, the carrier's trace id.
    """
    status = outcome.status  # a StrEnum: orjson writes its value
    record, error = outcome.record, outcome.error
    error_json = error.to_json() if error is not None else None
    timing = outcome.timing.to_json() if outcome.timing is not None else None
    hubspot_id = new = created_at = updated_at = None
    if record is not None:
        hubspot_id, new = record.hubspot_id, record.new
        created_at, updated_at = record.created_at, record.updated_at
    dead_letter_error = error if outcome.status is not Status.UPSERTED else None
    output, carrier_trace_id = topics.output, item.trace_id
    events = item.events
    last = len(events) - 1
    per_event: list[list[OutboundRecord]] = []
    for position, event in enumerate(events):
        raw = event.raw
        carrier = position == last
        document = {
            "status": status,
            "id": event.id,
            "idProperty": event.id_property,
            "objectWriteTraceId": carrier_trace_id if carrier else event.trace_id,
            "hubspotId": hubspot_id,
            "new": new,
            "createdAt": created_at,
            "updatedAt": updated_at,
            "error": error_json,
            "source": {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset},
            "coalescedInto": None if carrier else carrier_trace_id,
            "batch": timing,
        }
        result = OutboundRecord(output, event.id.encode(), orjson.dumps(document))
        if dead_letter_error is not None:
            per_event.append([result, dead_letter(raw, outcome.status, dead_letter_error, topics)])
        else:
            per_event.append([result])
    return per_event


def records_for_rejection(rejection: Rejection, topics: Topics) -> list[OutboundRecord]:
    """The `invalid` result and the dead-letter record of an event that could not be read."""
    raw = rejection.raw
    error = ErrorInfo(category=rejection.category, message=rejection.message)
    document = {
        "status": Status.INVALID.value,
        "id": rejection.id,
        "idProperty": rejection.id_property,
        "objectWriteTraceId": rejection.trace_id,
        "hubspotId": None,
        "new": None,
        "createdAt": None,
        "updatedAt": None,
        "error": error.to_json(),
        "source": {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset},
        "coalescedInto": None,
        "batch": None,
    }
    key = rejection.id.encode() if rejection.id is not None else raw.key
    return [
        OutboundRecord(topics.output, key, orjson.dumps(document)),
        dead_letter(raw, Status.INVALID, error, topics),
    ]


def dead_letter(
    raw: RawMessage, status: Status, error: ErrorInfo, topics: Topics
) -> OutboundRecord:
    headers = list(raw.headers or [])
    headers.extend(
        [
            ("error.status", status.value.encode()),
            ("error.category", error.category.encode()),
            ("error.message", error.message[:MAX_HEADER_MESSAGE_CHARS].encode()),
            ("source.topic", raw.topic.encode()),
            ("source.partition", str(raw.partition).encode()),
            ("source.offset", str(raw.offset).encode()),
        ]
    )
    if error.http_status is not None:
        headers.append(("error.httpStatus", str(error.http_status).encode()))
    return OutboundRecord(topics.dlq, raw.key, raw.value, headers)
