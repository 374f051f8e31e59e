"""Builds the result and dead-letter records of the contract. Pure: values in, bytes out.

Result records: one per input event, keyed by the event's id (or the original key when
the id could not be read). For a coalesced input, the last event carries the input's
trace id; the absorbed events keep their own and name the carrier's in `coalescedInto`.
Dead-letter records: the original key, value and headers unchanged, plus `error.*` and
`source.*` headers.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from service.model import (
    BatchInput,
    ErrorInfo,
    Event,
    InputOutcome,
    RawMessage,
    Rejection,
    Status,
)

MAX_HEADER_MESSAGE_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record to publish, with the input event it accounts for."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    source: RawMessage


@dataclass(frozen=True, slots=True)
class Topics:
    output: str
    dlq: str


def records_for_input(
    item: BatchInput, outcome: InputOutcome, topics: Topics
) -> list[list[OutboundRecord]]:
    """For every event an input carried, in order: its result and, if it failed, its dead letter."""
    per_event: list[list[OutboundRecord]] = []
    last = len(item.events) - 1
    for position, event in enumerate(item.events):
        document = _event_result(event, item, outcome, carrier=position == last)
        records = [_result_record(event.raw, event.id, document, topics)]
        if outcome.status is not Status.UPSERTED and outcome.error is not None:
            records.append(dead_letter(event.raw, outcome.status, outcome.error, topics))
        per_event.append(records)
    return per_event


def records_for_rejection(rejection: Rejection, topics: Topics) -> list[OutboundRecord]:
    """The `invalid` result and the dead-letter record of an event that could not be read."""
    error = ErrorInfo(category=rejection.category, message=rejection.message)
    document = _base_result(rejection.raw, Status.INVALID, error)
    document.update(
        id=rejection.id, idProperty=rejection.id_property, objectWriteTraceId=rejection.trace_id
    )
    return [
        _result_record(rejection.raw, rejection.id, document, topics),
        dead_letter(rejection.raw, Status.INVALID, error, topics),
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
    return OutboundRecord(topics.dlq, raw.key, raw.value, headers, raw)


def _event_result(
    event: Event, item: BatchInput, outcome: InputOutcome, *, carrier: bool
) -> dict[str, object]:
    document = _base_result(event.raw, outcome.status, outcome.error)
    record = outcome.record
    document.update(
        id=event.id,
        idProperty=event.id_property,
        objectWriteTraceId=item.trace_id if carrier else event.trace_id,
        hubspotId=record.hubspot_id if record else None,
        new=record.new if record else None,
        createdAt=record.created_at if record else None,
        updatedAt=record.updated_at if record else None,
        coalescedInto=None if carrier else item.trace_id,
        batch=outcome.timing.to_json() if outcome.timing else None,
    )
    return document


def _base_result(raw: RawMessage, status: Status, error: ErrorInfo | None) -> dict[str, object]:
    return {
        "status": status.value,
        "id": None,
        "idProperty": None,
        "objectWriteTraceId": None,
        "hubspotId": None,
        "new": None,
        "createdAt": None,
        "updatedAt": None,
        "error": error.to_json() if error else None,
        "source": {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset},
        "coalescedInto": None,
        "batch": None,
    }


def _result_record(
    raw: RawMessage, event_id: str | None, document: dict[str, object], topics: Topics
) -> OutboundRecord:
    key = event_id.encode() if event_id is not None else raw.key
    return OutboundRecord(topics.output, key, orjson.dumps(document), None, raw)
