"""What the emulator remembers: records, associations, and the request log, behind one lock.

Owns the lock every access goes through (so control calls from other threads see consistent
data), the request log and the counters behind `/_emulator/stats`. Records live in
`records.RecordTable`, associations in `links.LinkTable`; the upsert path uses the methods
here (two lock takes per batch: `existing`, `apply`), other endpoints take the lock once
with `transaction()` to check and write atomically. It does not validate input.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devstack.emulator.links import LinkTable
from devstack.emulator.records import Applied, RecordTable, UpsertItem


@dataclass(slots=True)
class RequestLogEntry:
    """One request to a HubSpot endpoint, as answered (status None: connection dropped)."""

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
    operation: str = "upsert"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "path": self.path,
            "operation": self.operation,
            "objectType": self.object_type,
            "status": self.status,
            "inputs": self.inputs,
            "receivedAt": self.received_at,
            "answeredAt": self.answered_at,
            "traceIds": list(self.trace_ids),
            "fault": self.fault,
            "applied": self.applied,
        }


@dataclass(slots=True)
class Tables:
    """What a transaction may read and write."""

    records: RecordTable
    links: LinkTable


class Store:
    """Records, associations, write history and request log behind one lock."""

    def __init__(self, request_log_limit: int | None = None) -> None:
        self._lock = threading.Lock()
        self._clear(request_log_limit)

    def _clear(self, request_log_limit: int | None) -> None:
        self._tables = Tables(RecordTable(), LinkTable())
        self._log: deque[RequestLogEntry] = deque(maxlen=request_log_limit)
        self._next_seq = 1
        self._by_status: Counter[str] = Counter()
        self._by_operation: Counter[str] = Counter()
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

    @contextmanager
    def transaction(self) -> Iterator[Tables]:
        """The tables, under the lock for the whole `with` block."""
        with self._lock:
            yield self._tables

    def existing(self, object_type: str, items: Sequence[UpsertItem]) -> list[bool]:
        """Per item, whether a record with its id already exists."""
        with self._lock:
            return self._tables.records.existing(object_type, items)

    def apply(
        self,
        object_type: str,
        items: Sequence[UpsertItem],
        at: str,
        seq: int,
        *,
        keep: bool,
        unique: Collection[str] = (),
    ) -> list[Applied]:
        """Upsert every item (merge), stamping `at`; `keep` records each write in history;
        `unique` names the type's unique properties (indexed when an item writes them)."""
        with self._lock:
            applied = self._tables.records.upsert(object_type, items, at, unique)
            if keep:
                self._tables.records.remember(object_type, items, applied, at, seq)
            return applied

    def log_request(self, entry: RequestLogEntry) -> None:
        with self._lock:
            self._log.append(entry)
            self._by_status[str(entry.status) if entry.status else "dropped"] += 1
            self._by_operation[entry.operation] += 1
            self._inputs_received += entry.inputs
            self._inputs_applied += entry.applied

    def records(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Snapshot: id value -> record, for one object type."""
        with self._lock:
            return self._tables.records.snapshot(object_type)

    def history(self, object_type: str) -> dict[str, list[dict[str, Any]]]:
        """Snapshot: id value -> writes in the order applied."""
        with self._lock:
            return self._tables.records.history(object_type)

    def associations(
        self, from_type: str | None = None, to_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Snapshot of the links (one entry per direction and association type)."""
        with self._lock:
            return self._tables.links.snapshot(from_type, to_type)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [entry.to_json() for entry in self._log]

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self._by_status.values()),
                "byStatus": dict(self._by_status),
                "byOperation": dict(self._by_operation),
                "inputs": self._inputs_received,
                "inputsApplied": self._inputs_applied,
                "records": len(self._tables.records),
                "associations": len(self._tables.links),
            }

    def reset(self, request_log_limit: int | None = None) -> None:
        """Forget everything; ids and sequence numbers start again."""
        with self._lock:
            self._clear(request_log_limit)
