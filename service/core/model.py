"""Plain value types that flow through the pipeline. No behaviour beyond small derivations."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Status(StrEnum):
    """The outcomes an input event can have (`unchanged` only with SKIP_UNCHANGED)."""

    UPSERTED = "upserted"
    FAILED = "failed"
    INVALID = "invalid"
    UNCHANGED = "unchanged"  # not sent: HubSpot already holds every value its input sets


class RawMessage(NamedTuple):
    """A consumed Kafka message, copied out of the client library's type (a tuple: cheap to
    build, once per event)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None
    timestamp_ms: int | None = None

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")


class AssociationRef(NamedTuple):
    """A record an event's subscription should be associated with: the target's object type
    (`contacts`, `companies`, `deals`, a custom object), one of its unique properties and
    that property's value; with `type_id` (and `category`, HUBSPOT_DEFINED by default) a
    labelled association, else HubSpot's default one."""

    to_type: str
    id_property: str
    value: str
    type_id: int | None = None
    category: str | None = None

    def to_json(self) -> dict[str, object]:
        named: dict[str, object] = {
            "to": self.to_type,
            "idProperty": self.id_property,
            "id": self.value,
        }
        if self.type_id is not None:
            named["typeId"] = self.type_id
            named["category"] = self.category or DEFAULT_ASSOCIATION_CATEGORY
        return named


DEFAULT_ASSOCIATION_CATEGORY = "HUBSPOT_DEFINED"


@dataclass(slots=True)
class Event:
    """A valid input event: what the contract's event JSON said, plus where it came from."""

    raw: RawMessage
    id: str
    id_property: str
    properties: dict[str, str]
    trace_id: str
    associations: tuple[AssociationRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that could not be read or validated, with the reason."""

    raw: RawMessage
    category: str
    message: str
    id: str | None = None
    id_property: str | None = None
    trace_id: str | None = None


@dataclass(slots=True)
class BatchInput:
    """One input of an upsert request: one id, carrying one or more coalesced events.

    The caller may derive inputs from a batch's own: one per event of a merged input HubSpot
    rejected (split back into its events), or one without the properties HubSpot said do not
    exist or are read-only (`dropped`); and with SKIP_UNCHANGED a batch may send, in place of
    its input, one without the properties whose values HubSpot already holds (`unchanged`).
    Such an input names the batch's input in `origin`."""

    id: str
    id_property: str
    trace_id: str
    properties: dict[str, str]
    events: list[Event]
    origin: BatchInput | None = None
    dropped: tuple[str, ...] = ()
    one_by_one: bool = False  # the rest of a split input, deferred: its events go one by one
    unchanged: tuple[str, ...] = ()  # left out: HubSpot holds these values (SKIP_UNCHANGED)

    @property
    def root(self) -> BatchInput:
        """The batch's own input this one derives from (itself when it is one)."""
        return self.origin if self.origin is not None else self

    def associations(self) -> list[AssociationRef]:
        """What its events name to be associated with, each once, in order."""
        return list(dict.fromkeys(ref for event in self.events for ref in event.associations))

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "idProperty": self.id_property,
            "objectWriteTraceId": self.trace_id,
            "properties": self.properties,
        }


def log_context(seq: int, inputs: list[BatchInput]) -> dict[str, object]:
    """Fields that locate a batch in logs: its number, size, trace ids and offset ranges."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for item in inputs:
        for event in item.events:
            key = (event.raw.topic, event.raw.partition)
            low, high = ranges.get(key, (event.raw.offset, event.raw.offset))
            ranges[key] = (min(low, event.raw.offset), max(high, event.raw.offset))
    return {
        "batch": seq,
        "inputs": len(inputs),
        "trace_ids": [inputs[0].trace_id, inputs[-1].trace_id] if inputs else [],
        "offsets": {f"{t}[{p}]": f"{lo}-{hi}" for (t, p), (lo, hi) in sorted(ranges.items())},
    }


@dataclass(frozen=True, slots=True)
class Unchanged:
    """An input not sent (SKIP_UNCHANGED): HubSpot holds every value it sets, as the write
    that gave it `hubspot_id` left them."""

    item: BatchInput
    hubspot_id: str


@dataclass(slots=True)
class Batch:
    """Inputs sent together; `seq` identifies the batch in logs. With SKIP_UNCHANGED, the
    inputs found unchanged as the batch was formed come with it, not sent (`unchanged`), and
    an input with some unchanged properties is sent as the one in `sending` under its trace
    id (without those properties)."""

    seq: int
    inputs: list[BatchInput]
    created_at: float
    unchanged: list[Unchanged] = field(default_factory=list)
    sending: dict[str, BatchInput] = field(default_factory=dict)

    @property
    def event_count(self) -> int:
        return sum(len(item.events) for item in self.inputs)

    def touches(self, partitions: set[tuple[str, int]]) -> bool:
        """Whether any event of the batch belongs to `partitions`."""
        return any(
            (event.raw.topic, event.raw.partition) in partitions
            for item in self.inputs
            for event in item.events
        )


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why an event failed or was invalid, as the result record shows it. `invalid_properties`:
    the properties HubSpot said do not exist or are read-only, when those are all it named
    (what ON_INVALID_PROPERTY=drop may leave out); `content`: the rejection is about what the
    input says (a merged input is then split back into its events), not about the request."""

    category: str
    message: str
    http_status: int | None = None
    invalid_properties: tuple[str, ...] = ()
    content: bool = False

    def to_json(self) -> dict[str, object]:
        return {"category": self.category, "message": self.message, "httpStatus": self.http_status}


class UpsertedRecord(NamedTuple):
    """What HubSpot said about a record it wrote (a tuple: one per input)."""

    hubspot_id: str
    new: bool | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """The response-level status and timestamps, copied into every result of the batch."""

    status: str | None
    requested_at: str | None
    started_at: str | None
    completed_at: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "requestedAt": self.requested_at,
            "startedAt": self.started_at,
            "completedAt": self.completed_at,
        }


# W3C trace-context headers (`traceparent`, then `tracestate` when there is one) of a span:
# what an outcome's records carry when tracing is on (service/core/tracing.py); empty when off.
TraceHeaders = tuple[tuple[str, bytes], ...]


class InputOutcome(NamedTuple):
    """The final word on one batch input: upserted (with a record) or failed (with an error).
    `dropped`: properties left out of what was finally upserted; `trace_headers`: the trace
    context of the span that decided it (tracing on). A tuple: one per input."""

    status: Status
    record: UpsertedRecord | None = None
    error: ErrorInfo | None = None
    timing: BatchTiming | None = None
    dropped: tuple[str, ...] = ()
    trace_headers: TraceHeaders = ()


@dataclass(slots=True)
class BatchOutcome:
    """Final outcomes for every input of a batch, keyed by trace id."""

    batch: Batch
    by_trace_id: dict[str, InputOutcome] = field(default_factory=dict)
    # inputs of partitions handed over to another member while the batch ran: no outcome
    # here (their next owner redoes them), and never sent since (service/loop/handover.py)
    handed_over: list[BatchInput] = field(default_factory=list)
    # merged inputs split back into their events: each event's outcome, in order (None for an
    # event handed over meanwhile; a deferred event is left out), by the batch input's trace id
    per_event: dict[str, list[tuple[Event, InputOutcome | None]]] = field(default_factory=dict)
    # inputs HubSpot keeps failing transiently, isolated from the rest: no outcome yet; the
    # loop sends them again after `retry_in_s` as a batch of their own (their ids held back)
    deferred: list[BatchInput] = field(default_factory=list)
    retry_in_s: float = 0.0
    # what became of the associations the upserted inputs named, by the batch input's trace id
    associations: dict[str, dict[AssociationRef, AssociationOutcome]] = field(default_factory=dict)


class AssociationStatus(StrEnum):
    ASSOCIATED = "associated"  # the link exists (made now, or already there)
    SKIPPED = "skipped"  # the target does not exist, and ASSOCIATION_MISSING_TARGET=skip
    FAILED = "failed"


class AssociationOutcome(NamedTuple):
    """What became of one association an event named."""

    status: AssociationStatus
    to_hubspot_id: str | None = None
    error: ErrorInfo | None = None
