"""What the emulator remembers: records, every write per record, and the request log.

Owns the upsert merge (keyed by object type, id property and id value; properties not sent
are kept, `""` clears), HubSpot id allocation, and the counters behind `/_emulator/stats`.
All access goes through one lock, so control calls from other threads see consistent data.
Per-request work is O(inputs): writes keep a reference to the request's own property dict,
and nothing copies the whole store except the explicit snapshot methods. A batch takes the
lock twice (`existing`, `apply`), not once per input. A record is a string-only dict and a
tuple of strings, which the garbage collector stops tracking: a full collection walks only
the two dicts that hold them, not an object per record. It does not validate input;
`validation` does that first.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

FIRST_HUBSPOT_ID = 100_001

Key = tuple[str, str, str]


# A record's HubSpot id and createdAt. A plain tuple of strings on purpose: the garbage
# collector stops tracking those (it never untracks a NamedTuple, or a tuple holding a dict).
Identity = tuple[str, str]


class Write(NamedTuple):
    """One applied input, as sent (the properties dict is the request's, never mutated)."""

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


class UpsertItem(Protocol):
    """A validated input ready to apply (every property value a string)."""

    @property
    def id_value(self) -> str: ...

    @property
    def id_property(self) -> str: ...

    @property
    def trace_id(self) -> str | None: ...

    @property
    def properties(self) -> Mapping[str, str]: ...


# The outcome of one applied input: the record's HubSpot id, a snapshot of its properties
# right after the write, its createdAt, and whether the write created it (its updatedAt is
# the write's `at`). A plain tuple: one is built per input, and a NamedTuple costs more.
Applied = tuple[str, dict[str, str], str, bool]


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
        # A record is its properties (which include the id property value, hs_object_id and
        # hs_lastmodifieddate, its updatedAt: every write sets it last) and its identity.
        self._properties: dict[Key, dict[str, str]] = {}
        self._identities: dict[Key, Identity] = {}
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

    def existing(self, object_type: str, items: Sequence[UpsertItem]) -> list[bool]:
        """Per item, whether a record with its id already exists."""
        with self._lock:
            known = self._properties
            return [(object_type, i.id_property, i.id_value) in known for i in items]

    def apply(
        self, object_type: str, items: Sequence[UpsertItem], at: str, seq: int, *, keep: bool
    ) -> list[Applied]:
        """Upsert every item (merge), stamping `at`; `keep` records each write in history."""
        with self._lock:
            applied = [self._apply_one(object_type, item, at) for item in items]
            if keep:
                self._remember(object_type, items, at, seq)
            return applied

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
                key[2]: _record_json(key[1], self._identities[key], properties)
                for key, properties in self._properties.items()
                if key[0] == object_type
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
                "records": len(self._properties),
            }

    def reset(self, request_log_limit: int | None = None) -> None:
        """Forget everything; ids and sequence numbers start again."""
        with self._lock:
            self._clear(request_log_limit)

    def _apply_one(self, object_type: str, item: UpsertItem, at: str) -> Applied:
        key = (object_type, item.id_property, item.id_value)
        properties = self._properties.get(key)
        new = properties is None
        if properties is None:
            properties = self._create(key, at)
        properties.update(item.properties)
        properties[item.id_property] = item.id_value
        properties["hs_lastmodifieddate"] = at
        hubspot_id, created_at = self._identities[key]
        return (hubspot_id, properties.copy(), created_at, new)

    def _remember(self, object_type: str, items: Sequence[UpsertItem], at: str, seq: int) -> None:
        """Append each item's write to its record's history, in order."""
        history = self._history
        for item in items:
            key = (object_type, item.id_property, item.id_value)
            history.setdefault(key, []).append((item.trace_id, item.properties, at, seq))

    def _create(self, key: Key, at: str) -> dict[str, str]:
        """A new record's properties (the caller writes the rest)."""
        hubspot_id = str(self._next_hubspot_id)
        self._next_hubspot_id += 1
        self._identities[key] = (hubspot_id, at)
        properties = {"hs_object_id": hubspot_id, "hs_createdate": at}
        self._properties[key] = properties
        return properties


def _record_json(
    id_property: str, identity: Identity, properties: dict[str, str]
) -> dict[str, Any]:
    hubspot_id, created_at = identity
    return {
        "hubspotId": hubspot_id,
        "idProperty": id_property,
        "properties": dict(properties),
        "createdAt": created_at,
        "updatedAt": properties["hs_lastmodifieddate"],
    }
