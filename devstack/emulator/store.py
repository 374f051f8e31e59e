"""What the emulator remembers: records, every write per record, and the request log.

Owns the upsert merge (keyed by object type, id property and id value; properties not sent
are kept, `""` clears), HubSpot id allocation, and the counters behind `/_emulator/stats`.
All access goes through one lock, so control calls from other threads see consistent data.
Per-request work is O(inputs): writes keep a reference to the request's own property dict,
and nothing copies the whole store except the explicit snapshot methods. It does not
validate input; `validation` does that first.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

FIRST_HUBSPOT_ID = 100_001

Key = tuple[str, str, str]


@dataclass(slots=True)
class Record:
    """One stored object. `properties` includes the id property value and hs_object_id."""

    hubspot_id: str
    object_type: str
    id_property: str
    id_value: str
    properties: dict[str, str]
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "hubspotId": self.hubspot_id,
            "idProperty": self.id_property,
            "properties": dict(self.properties),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


class Write(NamedTuple):
    """One applied input, as sent (the properties dict is the request's, never mutated).

    Stored as a plain tuple of strings and a string-only dict, which the garbage collector
    stops tracking: millions of writes then cost memory but no collector time.
    """

    trace_id: str | None
    properties: Mapping[str, str]
    at: str
    request_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "traceId": self.trace_id,
            "properties": dict(self.properties),
            "at": self.at,
            "requestSeq": self.request_seq,
        }


@dataclass(frozen=True, slots=True)
class UpsertItem:
    """A validated input ready to apply."""

    id_value: str
    id_property: str
    trace_id: str | None
    properties: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one applied input: a snapshot of the record right after the write."""

    item: UpsertItem
    hubspot_id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    new: bool


@dataclass(slots=True)
class RequestLogEntry:
    """One request to the upsert endpoint, as answered (status None: connection dropped)."""

    seq: int
    path: str
    object_type: str
    status: int | None
    inputs: int
    received_at: str
    answered_at: str
    trace_ids: list[str | None] = field(default_factory=list)
    fault: str | None = None
    applied: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "path": self.path,
            "objectType": self.object_type,
            "status": self.status,
            "inputs": self.inputs,
            "receivedAt": self.received_at,
            "answeredAt": self.answered_at,
            "traceIds": list(self.trace_ids),
            "fault": self.fault,
            "applied": self.applied,
        }


class Store:
    """Records, write history and request log behind one lock."""

    def __init__(self, request_log_limit: int | None = None) -> None:
        self._lock = threading.Lock()
        self._clear(request_log_limit)

    def _clear(self, request_log_limit: int | None) -> None:
        self._records: dict[Key, Record] = {}
        # Plain tuples (fields of Write): cheaper to build than the NamedTuple itself.
        self._history: dict[Key, list[tuple[str | None, Mapping[str, str], str, int]]] = {}
        self._log: deque[RequestLogEntry] = deque(maxlen=request_log_limit)
        self._next_hubspot_id = FIRST_HUBSPOT_ID
        self._next_seq = 1
        self._by_status: Counter[str] = Counter()
        self._inputs_received = 0
        self._inputs_applied = 0

    def set_request_log_limit(self, limit: int | None) -> None:
        """Keep at most `limit` request log entries (the newest)."""
        with self._lock:
            self._log = deque(self._log, maxlen=limit)

    def next_seq(self) -> int:
        """A new request sequence number (1, 2, ...)."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def exists(self, object_type: str, id_property: str, id_value: str) -> bool:
        with self._lock:
            return (object_type, id_property, id_value) in self._records

    def apply(
        self, object_type: str, items: Sequence[UpsertItem], at: str, seq: int, *, keep: bool
    ) -> list[Applied]:
        """Upsert every item (merge), stamping `at`; `keep` records each write in history."""
        with self._lock:
            return [self._apply_one(object_type, item, at, seq, keep) for item in items]

    def log_request(self, entry: RequestLogEntry) -> None:
        with self._lock:
            self._log.append(entry)
            self._by_status[str(entry.status) if entry.status else "dropped"] += 1
            self._inputs_received += entry.inputs
            self._inputs_applied += entry.applied

    def records(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Snapshot: id value -> record, for one object type."""
        with self._lock:
            return {
                key[2]: rec.to_json() for key, rec in self._records.items() if key[0] == object_type
            }

    def history(self, object_type: str) -> dict[str, list[dict[str, Any]]]:
        """Snapshot: id value -> writes in the order applied."""
        with self._lock:
            return {
                key[2]: [Write(*w).to_json() for w in writes]
                for key, writes in self._history.items()
                if key[0] == object_type
            }

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [entry.to_json() for entry in self._log]

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self._by_status.values()),
                "byStatus": dict(self._by_status),
                "inputs": self._inputs_received,
                "inputsApplied": self._inputs_applied,
                "records": len(self._records),
            }

    def reset(self, request_log_limit: int | None = None) -> None:
        """Forget everything; ids and sequence numbers start again."""
        with self._lock:
            self._clear(request_log_limit)

    def _apply_one(
        self, object_type: str, item: UpsertItem, at: str, seq: int, keep: bool
    ) -> Applied:
        key = (object_type, item.id_property, item.id_value)
        record = self._records.get(key)
        new = record is None
        if record is None:
            record = self._create(key, at)
        record.properties.update(item.properties)
        record.properties[item.id_property] = item.id_value
        record.properties["hs_lastmodifieddate"] = at
        record.updated_at = at
        if keep:
            write = (item.trace_id, item.properties, at, seq)
            self._history.setdefault(key, []).append(write)
        return Applied(item, record.hubspot_id, dict(record.properties), record.created_at, at, new)

    def _create(self, key: Key, at: str) -> Record:
        hubspot_id = str(self._next_hubspot_id)
        self._next_hubspot_id += 1
        props = {"hs_object_id": hubspot_id, "hs_createdate": at}
        record = Record(hubspot_id, key[0], key[1], key[2], props, at, at)
        self._records[key] = record
        return record
