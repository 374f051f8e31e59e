"""Windows events into upsert batches. Pure: takes a clock reading, does no I/O.

Owns three rules:
- coalescing: events for the same (idProperty, id) waiting together become one input,
  later events' properties winning property by property (HubSpot rejects a request
  that names an id twice);
- flushing: a batch leaves when it is full (`max_size` inputs or `max_bytes` of request
  body) or when its oldest event has waited `max_wait_s`;
- per-id order: an id with a batch in flight is held back (and keeps coalescing) until
  that batch is released, without holding back other ids.
A batch carries inputs of a single idProperty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

from service.ids import merged_trace_id
from service.model import Batch, BatchInput, Event

GroupKey = tuple[str, str]
_INPUT_OVERHEAD_BYTES = 96
_PROPERTY_OVERHEAD_BYTES = 8


@dataclass(slots=True)
class _Group:
    first_seen: float
    events: list[Event] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.properties.update(event.properties)

    def estimated_bytes(self, key: GroupKey) -> int:
        body = sum(len(k) + len(v) + _PROPERTY_OVERHEAD_BYTES for k, v in self.properties.items())
        return body + len(key[0]) + len(key[1]) + _INPUT_OVERHEAD_BYTES

    def to_input(self, key: GroupKey) -> BatchInput:
        events = self.events
        if len(events) == 1:
            trace_id = events[0].trace_id
        else:
            trace_id = merged_trace_id([event.trace_id for event in events])
        return BatchInput(
            id=key[1],
            id_property=key[0],
            trace_id=trace_id,
            properties=self.properties,
            events=events,
        )


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How big a batch may be and how long its oldest event may wait."""

    max_size: int = 100
    max_wait_s: float = 1.0
    max_bytes: int = 4_000_000


class Batcher:
    """Collects events into coalesced inputs and hands out batches that respect the rules."""

    def __init__(self, limits: BatchLimits) -> None:
        self._limits = limits
        self._ready: dict[GroupKey, _Group] = {}
        self._held: dict[GroupKey, _Group] = {}
        self._in_flight: set[GroupKey] = set()
        self._seq = 0
        self.buffered_events = 0
        self.coalesced_events = 0

    def add(self, event: Event, now: float) -> None:
        """Take an event; it joins its id's waiting input if there is one."""
        key = (event.id_property, event.id)
        target = self._held if key in self._in_flight else self._ready
        group = target.get(key)
        if group is None:
            group = target[key] = _Group(first_seen=now)
        else:
            self.coalesced_events += 1
        group.add(event)
        self.buffered_events += 1

    def next_deadline(self) -> float | None:
        """When the next batch is due even if not full; None when nothing is ready."""
        if not self._ready:
            return None
        head = islice(self._ready.values(), self._limits.max_size)
        return min(group.first_seen for group in head) + self._limits.max_wait_s

    def take(self, now: float, *, force: bool = False) -> Batch | None:
        """The next batch, if one is full or due (or `force`); it is then in flight."""
        if not self._is_due(now, force):
            return None
        picked = self._pick()
        inputs = [self._ready.pop(key).to_input(key) for key in picked]
        self._in_flight.update(picked)
        self._seq += 1
        batch = Batch(seq=self._seq, inputs=inputs, created_at=now)
        self.buffered_events -= batch.event_count
        return batch

    def release(self, batch: Batch) -> None:
        """The batch is finished; its ids' held-back events become ready, ahead of newer ones."""
        released: dict[GroupKey, _Group] = {}
        for item in batch.inputs:
            key = (item.id_property, item.id)
            self._in_flight.discard(key)
            group = self._held.pop(key, None)
            if group is not None:
                released[key] = group
        if released:
            released.update(self._ready)
            self._ready = released

    def drop_partitions(self, partitions: set[tuple[str, int]]) -> int:
        """Forget waiting events of revoked or lost partitions; returns how many were dropped."""
        before = self.buffered_events
        for groups in (self._ready, self._held):
            for key, group in list(groups.items()):
                kept = _without_partitions(group, partitions)
                if kept is None:
                    del groups[key]
                    self.buffered_events -= len(group.events)
                elif len(kept.events) != len(group.events):
                    groups[key] = kept
                    self.buffered_events -= len(group.events) - len(kept.events)
        return before - self.buffered_events

    @property
    def in_flight_ids(self) -> int:
        return len(self._in_flight)

    @property
    def waiting_inputs(self) -> int:
        return len(self._ready) + len(self._held)

    def _is_due(self, now: float, force: bool) -> bool:
        if not self._ready:
            return False
        if force or len(self._ready) >= self._limits.max_size:
            return True
        deadline = self.next_deadline()
        return deadline is not None and now >= deadline

    def _pick(self) -> list[GroupKey]:
        picked: list[GroupKey] = []
        budget = self._limits.max_bytes
        id_property: str | None = None
        for key, group in self._ready.items():
            if len(picked) >= self._limits.max_size:
                break
            if id_property is not None and key[0] != id_property:
                continue
            size = group.estimated_bytes(key)
            if picked and size > budget:
                break
            picked.append(key)
            id_property = key[0]
            budget -= size
        return picked


def _without_partitions(group: _Group, partitions: set[tuple[str, int]]) -> _Group | None:
    kept = [e for e in group.events if (e.raw.topic, e.raw.partition) not in partitions]
    if not kept:
        return None
    rebuilt = _Group(first_seen=group.first_seen)
    for event in kept:
        rebuilt.add(event)
    return rebuilt
