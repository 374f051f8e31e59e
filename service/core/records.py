"""Builds the result and dead-letter records of the contract. Pure: values in, bytes out.

Result records: one per input event, keyed by the event's id (or the original key when
the id could not be read). For a coalesced input, the last event carries the input's
trace id; the absorbed events keep their own and name the carrier's in `coalescedInto`. An
`unchanged` result (SKIP_UNCHANGED) carries the HubSpot id of the last write, and no `new`,
timestamps or batch timing: nothing was sent.
Dead-letter records: the original key, value and headers unchanged, plus `error.*` and
`source.*` headers. With tracing on, both carry the trace context of the span that decided
the outcome (the dead letter's takes the place of the event's own, and a result also carries
the event's `baggage`: service/core/tracing.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from service.core.associations import ASSOCIATION_FAILED
from service.core.model import (
    AssociationOutcome,
    AssociationRef,
    AssociationStatus,
    BatchInput,
    ErrorInfo,
    Event,
    InputOutcome,
    RawMessage,
    Rejection,
    Status,
    TraceHeaders,
    UpsertedRecord,
)
from service.core.tracing import result_trace_headers, with_trace_context

MAX_HEADER_MESSAGE_CHARS = 2_000
DEAD_LETTERED = frozenset({Status.FAILED, Status.INVALID})  # upserted and unchanged are not


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
    dlq_max_bytes: int | None = None  # the largest record the dead-letter topic takes


def records_for_input(
    item: BatchInput,
    outcome: InputOutcome,
    topics: Topics,
    associations: Mapping[AssociationRef, AssociationOutcome] | None = None,
) -> list[list[OutboundRecord]]:
    """For every event an input carried, in order: its result and, if it failed, its dead letter.

    The fields every event of the input shares are computed once; each event adds its own id,
    trace id, source position and, for an absorbed event, the carrier's trace id. An upserted
    event that named associations lists what became of them (`associations`); when any
    failed, it also gets a dead letter (ASSOCIATION_FAILED), its upsert standing.
    """
    error = outcome.error
    shared = _SharedFields(
        outcome.status,
        outcome.record,
        error.to_json() if error is not None else None,
        outcome.timing.to_json() if outcome.timing is not None else None,
        outcome.dropped,
    )
    dead_letter_error = error if outcome.status in DEAD_LETTERED else None
    output, carrier_trace_id = topics.output, item.trace_id
    trace = outcome.trace_headers
    events = item.events
    last = len(events) - 1
    per_event: list[list[OutboundRecord]] = []
    for position, event in enumerate(events):
        raw = event.raw
        carrier = position == last
        document = shared.document(
            event.id,
            event.id_property,
            carrier_trace_id if carrier else event.trace_id,
            raw,
            None if carrier else carrier_trace_id,
        )
        if shared.dropped:
            _add_dropped(document, shared.dropped, event.properties)
        failed = None
        if associations is not None and event.associations:
            failed = _add_associations(document, event.associations, associations)
        headers = result_trace_headers(trace, raw.headers) if trace else None
        result = OutboundRecord(output, event.id.encode(), orjson.dumps(document), headers)
        if dead_letter_error is not None:
            dlq = dead_letter(raw, outcome.status, dead_letter_error, topics, trace)
            per_event.append([result, dlq])
        elif failed is not None:
            per_event.append([result, dead_letter(raw, Status.FAILED, failed, topics, trace)])
        else:
            per_event.append([result])
    return per_event


def _add_associations(
    document: dict[str, object],
    named: tuple[AssociationRef, ...],
    outcomes: Mapping[AssociationRef, AssociationOutcome],
) -> ErrorInfo | None:
    """`associations`: each the event named, with what became of it; the error for a dead
    letter when any failed (naming them all)."""
    listed: list[dict[str, object]] = []
    failures: list[str] = []
    for ref in named:
        result = outcomes.get(ref)
        if result is None:
            continue
        error = result.error
        listed.append(
            {
                **ref.to_json(),
                "status": result.status,
                "toHubspotId": result.to_hubspot_id,
                "error": error.to_json() if error is not None else None,
            }
        )
        if result.status is AssociationStatus.FAILED:
            failures.append(f"{ref.to_type} {ref.id_property}={ref.value}: {_why(error)}")
    document["associations"] = listed
    if not failures:
        return None
    return ErrorInfo(ASSOCIATION_FAILED, "; ".join(failures))


def _why(error: ErrorInfo | None) -> str:
    return error.message if error is not None else "failed"


def records_for_split_event(
    item: BatchInput,
    event: Event,
    outcome: InputOutcome,
    topics: Topics,
    associations: Mapping[AssociationRef, AssociationOutcome] | None = None,
) -> list[OutboundRecord]:
    """The records of one event of a merged input that was split back into its events: it
    went on its own, so its result shows its own trace id and no `coalescedInto`."""
    alone = BatchInput(item.id, item.id_property, event.trace_id, event.properties, [event])
    return records_for_input(alone, outcome, topics, associations)[0]


def records_for_rejection(
    rejection: Rejection, topics: Topics, trace_headers: TraceHeaders = ()
) -> list[OutboundRecord]:
    """The `invalid` result and the dead-letter record of an event that could not be read;
    `trace_headers`: the context of the span that rejected it (tracing on)."""
    raw = rejection.raw
    error = ErrorInfo(category=rejection.category, message=rejection.message)
    shared = _SharedFields(Status.INVALID, None, error.to_json(), None)
    document = shared.document(rejection.id, rejection.id_property, rejection.trace_id, raw, None)
    key = rejection.id.encode() if rejection.id is not None else raw.key
    headers = result_trace_headers(trace_headers, raw.headers)
    return [
        OutboundRecord(topics.output, key, orjson.dumps(document), headers),
        dead_letter(raw, Status.INVALID, error, topics, trace_headers),
    ]


class _SharedFields:
    """The result fields all events of one input share; `document` adds an event's own."""

    __slots__ = (
        "created_at",
        "dropped",
        "error",
        "hubspot_id",
        "new",
        "status",
        "timing",
        "updated_at",
    )

    def __init__(
        self,
        status: Status,
        record: UpsertedRecord | None,
        error: dict[str, object] | None,
        timing: dict[str, object] | None,
        dropped: tuple[str, ...] = (),
    ) -> None:
        self.status, self.error, self.timing, self.dropped = status, error, timing, dropped
        self.hubspot_id = self.new = self.created_at = self.updated_at = None
        if record is not None:
            self.hubspot_id, self.new = record.hubspot_id, record.new
            self.created_at, self.updated_at = record.created_at, record.updated_at

    def document(
        self,
        event_id: str | None,
        id_property: str | None,
        trace_id: str | None,
        raw: RawMessage,
        coalesced_into: str | None,
    ) -> dict[str, object]:
        """The result record's JSON fields, in the contract's order."""
        return {
            "status": self.status,  # a StrEnum: orjson writes its value
            "id": event_id,
            "idProperty": id_property,
            "objectWriteTraceId": trace_id,
            "hubspotId": self.hubspot_id,
            "new": self.new,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "error": self.error,
            "source": {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset},
            "coalescedInto": coalesced_into,
            "batch": self.timing,
        }


def _add_dropped(
    document: dict[str, object], dropped: tuple[str, ...], properties: dict[str, str]
) -> None:
    """`droppedProperties`: those of the event's own properties its input was resent without
    (ON_INVALID_PROPERTY=drop); absent when it set none of them."""
    own = [name for name in dropped if name in properties]
    if own:
        document["droppedProperties"] = own


def dead_letter(
    raw: RawMessage,
    status: Status,
    error: ErrorInfo,
    topics: Topics,
    trace_headers: TraceHeaders = (),
) -> OutboundRecord:
    values = (
        status.value,
        error.category,
        error.message[:MAX_HEADER_MESSAGE_CHARS],
        raw.topic,
        str(raw.partition),
        str(raw.offset),
    )
    headers = with_trace_context(list(raw.headers or []), trace_headers)
    headers.extend(
        (name, value.encode()) for name, value in zip(DEAD_LETTER_HEADERS, values, strict=True)
    )
    if error.http_status is not None:
        headers.append((HTTP_STATUS_HEADER, str(error.http_status).encode()))
    return OutboundRecord(topics.dlq, raw.key, raw.value, headers)


def cut_to_fit(record: OutboundRecord, max_bytes: int | None) -> OutboundRecord | None:
    """A dead letter the topic refused for its size, with its value cut so that the record
    fits in `max_bytes` (unknown, or refused again: half of the value it had), and headers
    saying so: the original's size and sha256 (its bytes stay in the input topic at
    source.topic/partition/offset). None when there is no value left to cut."""
    value = record.value or b""
    if not value:
        return None
    headers = list(record.headers or [])
    already = any(name == TRUNCATED_HEADER for name, _ in headers)
    if not already:
        headers += [
            (TRUNCATED_HEADER, b"true"),
            (ORIGINAL_SIZE_HEADER, str(len(value)).encode()),
            (ORIGINAL_SHA256_HEADER, hashlib.sha256(value).hexdigest().encode()),
        ]
    target = len(value) // 2  # refused again, or the limit is unknown
    if max_bytes is not None and not already:
        fixed = len(record.key or b"") + sum(len(n) + len(v) for n, v in headers)
        room = max_bytes - fixed - _RECORD_OVERHEAD_BYTES
        if 0 <= room < len(value):
            target = room
    return OutboundRecord(record.topic, record.key, value[:target], headers)


# A dead letter cut to fit (cut_to_fit) carries these after its other headers.
TRUNCATED_HEADER = "dlq.truncated"
ORIGINAL_SIZE_HEADER = "dlq.original.size"
ORIGINAL_SHA256_HEADER = "dlq.original.sha256"
TRUNCATED_HEADERS = (TRUNCATED_HEADER, ORIGINAL_SIZE_HEADER, ORIGINAL_SHA256_HEADER)
_RECORD_OVERHEAD_BYTES = 512  # a record's framing, beyond its key, value and headers

# The headers a dead letter gets after the event's own, in this order (contract); then
# HTTP_STATUS_HEADER when HubSpot answered with a status.
DEAD_LETTER_HEADERS = (
    "error.status",
    "error.category",
    "error.message",
    "source.topic",
    "source.partition",
    "source.offset",
)
HTTP_STATUS_HEADER = "error.httpStatus"
