"""Windows events into upsert batches. Pure: takes a clock reading, does no I/O.

Owns three rules:
- coalescing: events for the same (idProperty, id) waiting together become one input,
  later events' properties winning property by property (HubSpot rejects a request
  that names an id twice);
- flushing: a batch leaves when it is full (`max_size` inputs or `max_bytes` of request
  body) or when its oldest event has waited `max_wait_s`;
- per-id order: an id with a batch in flight is held back (and keeps coalescing) until
  that batch is released, without holding back other ids.
A batch carries inputs of a single idProperty, and no two inputs with the same trace id (an
upstream may give events of different ids one trace id; in one request HubSpot's replies and
errors could not tell them apart): the second waits for the next batch.

With a `Screen` (SKIP_UNCHANGED, service/loop/skipping.py), each input is screened as it is
picked: one found unchanged leaves with the batch without taking a place in it (nor putting
its id in flight), and one sent without its unchanged properties is named in the batch's
`sending`. So a batch fills with inputs that must be sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Protocol

from service.core.ids import merged_trace_id
from service.core.model import Batch, BatchInput, Event, Unchanged

GroupKey = tuple[str, str]
_INPUT_OVERHEAD_BYTES = 96
_PROPERTY_SLACK_BYTES = 8


def _estimated_input_bytes(event: Event) -> int:
    """An upper bound of what the event adds to a request body, without encoding it: its own
    JSON (which holds the id and properties, escaped at least as long as orjson writes them),
    slack for values that become strings, the idProperty and the trace id. A coalesced input
    counts each of its events, an overestimate. The caller still splits a body that ends up
    over the cap (a number such as 1e15 grows when written as a string)."""
    return (
        len(event.raw.value or b"")
        + _PROPERTY_SLACK_BYTES * len(event.properties)
        + len(event.id_property)
        + len(event.trace_id)
        + _INPUT_OVERHEAD_BYTES
    )


class _Group:
    """The events of one id waiting together, and the properties they add up to."""

    __slots__ = ("estimated_bytes", "events", "first_seen", "properties")

    def __init__(self, first_seen: float, event: Event) -> None:
        self.first_seen = first_seen
        self.events = [event]
        self.properties = event.properties  # copied when a second event arrives
        self.estimated_bytes = _estimated_input_bytes(event)

    def add(self, event: Event) -> None:
        if len(self.events) == 1:
            self.properties = dict(self.properties)  # the first event's dict stays its own
        self.properties.update(event.properties)
        self.events.append(event)
        self.estimated_bytes += _estimated_input_bytes(event)

    def trace_id(self) -> str:
        events = self.events
        if len(events) == 1:
            return events[0].trace_id
        return merged_trace_id([event.trace_id for event in events])

    def to_input(self, key: GroupKey, trace_id: str) -> BatchInput:
        return BatchInput(key[1], key[0], trace_id, self.properties, self.events)


class Screen(Protocol):
    """Decides, as an input is picked for a batch, what of it must be sent."""

    def __call__(self, item: BatchInput, /) -> BatchInput | Unchanged:
        """`item`, an input to send in its place, or Unchanged: nothing to send."""
        ...


@dataclass(slots=True)
class _Picked:
    """The next batch's inputs (their keys, and what each is sent as when not itself), and
    the inputs found unchanged on the way."""

    keys: list[GroupKey] = field(default_factory=list)
    inputs: list[BatchInput] = field(default_factory=list)
    sending: dict[str, BatchInput] = field(default_factory=dict)
    unchanged_keys: list[GroupKey] = field(default_factory=list)
    unchanged: list[Unchanged] = field(default_factory=list)

    def add(self, key: GroupKey, item: BatchInput, verdict: BatchInput | Unchanged) -> None:
        if isinstance(verdict, Unchanged):
            self.unchanged_keys.append(key)
            self.unchanged.append(verdict)
            return
        if verdict is not item:
            self.sending[item.trace_id] = verdict
        self.keys.append(key)
        self.inputs.append(item)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How big a batch may be and how long its oldest event may wait."""

    max_size: int = 100
    max_wait_s: float = 1.0
    max_bytes: int = 4_000_000


class Batcher:
    """Collects events into coalesced inputs and hands out batches that respect the rules."""

    def __init__(self, limits: BatchLimits, screen: Screen | None = None) -> None:
        self._limits = limits
        self._screen = screen
        # Waiting inputs in the order they leave: `_released` (held back, then released: they
        # go first) and `_ready`; `_held` waits for its id's batch in flight.
        self._released: dict[GroupKey, _Group] = {}
        self._ready: dict[GroupKey, _Group] = {}
        self._held: dict[GroupKey, _Group] = {}
        self._oldest_head: float | None = None  # first_seen, oldest of the next batch's inputs
        self._head_changed = True
        self._in_flight: set[GroupKey] = set()
        self._seq = 0
        self.buffered_events = 0
        self.coalesced_events = 0

    def add(self, event: Event, now: float) -> None:
        """Take an event; it joins its id's waiting input if there is one."""
        key = (event.id_property, event.id)
        if key in self._in_flight:
            target = self._held
        else:
            target = self._released if key in self._released else self._ready
        group = target.get(key)
        if group is None:
            target[key] = _Group(now, event)
            if self._oldest_head is None:
                self._head_changed = True  # a newer input never makes the head older
        else:
            group.add(event)
            self.coalesced_events += 1
        self.buffered_events += 1

    def next_deadline(self) -> float | None:
        """When the next batch is due even if not full; None when nothing is ready."""
        if self._head_changed:
            head = islice(self._waiting(), self._limits.max_size)
            self._oldest_head = min((group.first_seen for _, group in head), default=None)
            self._head_changed = False
        if self._oldest_head is None:
            return None
        return self._oldest_head + self._limits.max_wait_s

    def take(
        self, now: float, *, force: bool = False, only: set[tuple[str, int]] | None = None
    ) -> Batch | None:
        """The next batch, if one is full or due (or `force`); it is then in flight. `only`:
        inputs with events of these partitions only, due at once (their partitions leave)."""
        if only is not None:
            picked = self._pick(only)
            if not picked.keys and not picked.unchanged_keys:
                return None
        elif not self._is_due(now, force):
            return None
        else:
            picked = self._pick()
        for key in (*picked.keys, *picked.unchanged_keys):
            self._pop(key)
        self._in_flight.update(picked.keys)
        self._head_changed = True
        self._seq += 1
        batch = Batch(self._seq, picked.inputs, now, picked.unchanged, picked.sending)
        unchanged_events = sum(len(skipped.item.events) for skipped in picked.unchanged)
        self.buffered_events -= batch.event_count + unchanged_events
        return batch

    def again(self, inputs: list[BatchInput], now: float) -> Batch:
        """A batch of inputs whose ids are in flight already (deferred from an earlier batch,
        to be sent again): a batch of its own, its ids still holding back their newer events."""
        self._seq += 1
        return Batch(seq=self._seq, inputs=inputs, created_at=now)

    def release(self, batch: Batch, keep: list[BatchInput] | None = None) -> None:
        """The batch is finished; its ids' held-back events become ready, ahead of newer ones.
        The ids of `keep` (inputs to be sent again) stay in flight."""
        in_flight, held, released = self._in_flight, self._held, self._released
        kept = {(item.id_property, item.id) for item in keep} if keep else set()
        for item in batch.inputs:
            key = (item.id_property, item.id)
            if kept and key in kept:
                continue
            in_flight.discard(key)
            group = held.pop(key, None)
            if group is not None:
                released[key] = group
                self._head_changed = True

    def drop_partitions(self, partitions: set[tuple[str, int]]) -> int:
        """Forget waiting events of revoked or lost partitions; returns the bytes they held
        (their messages' sizes), which leave the buffer with them."""
        dropped_bytes = 0
        self._head_changed = True
        for groups in (self._released, self._ready, self._held):
            for key, group in list(groups.items()):
                dropped = [e for e in group.events if (e.raw.topic, e.raw.partition) in partitions]
                if not dropped:
                    continue
                dropped_bytes += sum(e.raw.size for e in dropped)
                self.buffered_events -= len(dropped)
                kept = _without_partitions(group, partitions)
                if kept is None:
                    del groups[key]
                else:
                    groups[key] = kept
        return dropped_bytes

    @property
    def in_flight_ids(self) -> int:
        return len(self._in_flight)

    @property
    def waiting_inputs(self) -> int:
        return len(self._released) + len(self._ready) + len(self._held)

    def _waiting(self) -> Iterator[tuple[GroupKey, _Group]]:
        return chain(self._released.items(), self._ready.items())

    def _pop(self, key: GroupKey) -> _Group:
        group = self._released.pop(key, None)
        return group if group is not None else self._ready.pop(key)

    def _is_due(self, now: float, force: bool) -> bool:
        waiting = len(self._released) + len(self._ready)
        if not waiting:
            return False
        if force or waiting >= self._limits.max_size:
            return True
        deadline = self.next_deadline()
        return deadline is not None and now >= deadline

    def holds(self, partitions: set[tuple[str, int]]) -> bool:
        """Whether any waiting or held-back event belongs to `partitions`."""
        return any(
            _touches(group, partitions)
            for groups in (self._released, self._ready, self._held)
            for group in groups.values()
        )

    def _pick(self, only: set[tuple[str, int]] | None = None) -> _Picked:
        """The next batch's inputs, in order, screened; with `only`, those with events of
        these partitions."""
        picked = _Picked()
        trace_ids: set[str] = set()
        budget = self._limits.max_bytes
        id_property: str | None = None
        repeats_left = self._limits.max_size  # bounds the scan when many share a trace id
        screen = self._screen
        for key, group in self._waiting():
            if len(picked.keys) >= self._limits.max_size:
                break
            if id_property is not None and key[0] != id_property:
                continue
            if only is not None and not _touches(group, only):
                continue
            size = group.estimated_bytes
            if picked.keys and size > budget:
                break
            trace_id = group.trace_id()
            if trace_id in trace_ids:
                repeats_left -= 1
                if not repeats_left:
                    break
                continue
            trace_ids.add(trace_id)
            item = group.to_input(key, trace_id)
            verdict = item if screen is None else screen(item)
            picked.add(key, item, verdict)
            if not isinstance(verdict, Unchanged):
                id_property = key[0]
                budget -= size
        return picked


def _touches(group: _Group, partitions: set[tuple[str, int]]) -> bool:
    return any((event.raw.topic, event.raw.partition) in partitions for event in group.events)


def _without_partitions(group: _Group, partitions: set[tuple[str, int]]) -> _Group | None:
    kept = [e for e in group.events if (e.raw.topic, e.raw.partition) not in partitions]
    if not kept:
        return None
    rebuilt = _Group(group.first_seen, kept[0])
    for event in kept[1:]:
        rebuilt.add(event)
    return rebuilt
