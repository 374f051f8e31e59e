"""SKIP_UNCHANGED: HubSpot's budget spent only on changes.

Owns the decision which inputs to send, and what whole or in part, against what this member
last wrote (service/core/last_written.py), and what each batch's outcome teaches it. An input
whose every property equals what was last written for its id is not sent: its events get an
`unchanged` result with the HubSpot id of that write, unless its events name associations:
those are made from the upsert's reply (service/loop/associator.py), so it is sent whole. An
input with some unchanged properties is sent without them (under a trace id of its own:
`changed-<digest>`), its associations with it.

Where the decision sits, and why: as a batch is formed, on the loop's thread. The batcher
(service/core/batching.py) calls `screen` on each input it is about to take.
- Not at intake: until its batch is taken an input is not final (later events of its id
  coalesce into it), and an id with a write in flight is about to change what HubSpot holds.
  An input the batcher takes has no write of its id in flight (it would be held back), and
  every earlier write of its id has been learnt from.
- Not in the worker, after the batch is formed: a batch of 100 inputs of which 80 are
  unchanged would send 20, and cost as many requests as sending all of them. Screened as the
  batch forms, an unchanged input takes no place in it, and the batch fills with inputs that
  must be sent: that is what saves requests.
- The loop collects every outcome, and `learn` reads it there, before the batch's ids are
  released: so the cache has a single user (no lock), and an id's next input is compared with
  what its last write left. Only a success is remembered; a failed, uncertain (timeout, 5xx,
  deferred), handed-over or abandoned write forgets the id, so its next input goes whole.
  A merged input split back into its events is learnt event by event: each failed event
  forgets what came before it.
- A batch taken before a partition changed owner is not learnt from for that partition
  (`take_in`/`let_go` count assignments): its late outcome may be older than a new owner's
  writes.
"""

from __future__ import annotations

from service.core.ids import changed_trace_id
from service.core.last_written import CacheCounts, Key, LastWritten
from service.core.model import (
    Batch,
    BatchInput,
    BatchOutcome,
    Event,
    InputOutcome,
    Status,
    Unchanged,
    UpsertedRecord,
)
from service.core.offsets import TopicPartition
from service.core.ports import Metrics


class SkipUnchanged:
    """Screens inputs as batches form, and learns from what HubSpot accepted."""

    def __init__(self, cache: LastWritten, metrics: Metrics) -> None:
        self._cache, self._metrics = cache, metrics
        self._assignments = 0  # partitions taken in so far: orders batches and assignments
        self._owned: dict[TopicPartition, int] = {}  # the assignment each was taken in at
        self._taken_at: dict[int, int] = {}  # batch seq -> assignments counted when taken
        self._reported = CacheCounts()

    # -- as a batch forms (called by the batcher) -------------------------------------------

    def screen(self, item: BatchInput) -> BatchInput | Unchanged:
        """`item`, the input to send in its place, or Unchanged when nothing needs sending."""
        tp = _partition_of(item.events)
        if tp is None or tp not in self._owned:
            return item
        found = self._cache.compare((item.id_property, item.id), tp, item.properties)
        if found is None or not found.same:
            return item
        self._metrics.skipped_properties.inc(len(found.same))
        if len(found.same) == len(item.properties):
            if item.associations():  # they are made after the upsert's reply: it goes whole
                return item
            self._metrics.skipped_inputs.inc()
            return Unchanged(item, found.hubspot_id)
        same = set(found.same)
        changed = {name: value for name, value in item.properties.items() if name not in same}
        return BatchInput(
            item.id,
            item.id_property,
            changed_trace_id(item.trace_id, found.same),
            changed,
            item.events,
            origin=item,
            unchanged=found.same,
        )

    def taken(self, batch: Batch) -> BatchOutcome | None:
        """The batcher handed out `batch`: the outcome of its unchanged inputs, if any."""
        if batch.inputs:
            self._taken_at[batch.seq] = self._assignments
        if not batch.unchanged:
            return None
        items = [skipped.item for skipped in batch.unchanged]
        return BatchOutcome(
            Batch(batch.seq, items, batch.created_at),
            by_trace_id={
                skipped.item.trace_id: InputOutcome(
                    Status.UNCHANGED, UpsertedRecord(skipped.hubspot_id, None, None, None)
                )
                for skipped in batch.unchanged
            },
        )

    # -- as a batch comes back -------------------------------------------------------------

    def learn(self, batch: Batch, outcome: BatchOutcome | None) -> None:
        """Remember what HubSpot accepted of `batch`; forget the ids of everything else
        (`outcome` None: the batch was abandoned)."""
        taken_at = self._taken_at.pop(batch.seq, None)
        if outcome is None or taken_at is None:  # abandoned, or a deferred input sent again
            for item in batch.inputs:
                self._cache.forget(_key(item))
            return
        unsettled = {_key(item) for item in (*outcome.handed_over, *outcome.deferred)}
        for item in batch.inputs:
            key, tp = _key(item), _partition_of(item.events)
            if tp is None or key in unsettled or not self._owned_since(tp, taken_at):
                self._cache.forget(key)
            elif item.trace_id in outcome.per_event:
                self._learn_events(key, tp, outcome.per_event[item.trace_id])
            else:
                sent = batch.sending.get(item.trace_id, item)
                self._learn_input(key, tp, sent, outcome.by_trace_id.get(item.trace_id))

    def _learn_input(
        self, key: Key, tp: TopicPartition, sent: BatchInput, result: InputOutcome | None
    ) -> None:
        """`sent` went as one input (maybe without refused properties): its outcome."""
        if result is None or result.status is not Status.UPSERTED or result.record is None:
            self._cache.forget(key)
            return
        written = _without(sent.properties, result.dropped)
        self._cache.remember(key, tp, written, result.record.hubspot_id)

    def _learn_events(
        self, key: Key, tp: TopicPartition, events: list[tuple[Event, InputOutcome | None]]
    ) -> None:
        """A merged input went again one event per input, after HubSpot rejected it (or it
        failed again and again: it may have landed). What the events that succeeded since the
        last one that did not wrote is known."""
        self._cache.forget(key)
        written: dict[str, str] = {}
        hubspot_id: str | None = None
        for event, result in events:
            if result is None or result.status is not Status.UPSERTED or result.record is None:
                written, hubspot_id = {}, None
                continue
            written.update(_without(event.properties, result.dropped))
            hubspot_id = result.record.hubspot_id
        if hubspot_id is not None:
            self._cache.remember(key, tp, written, hubspot_id)

    # -- partitions coming and going, and the metrics ----------------------------------------

    def take_in(self, partitions: list[TopicPartition]) -> None:
        """`partitions` were assigned: batches taken from now on are learnt from."""
        self._assignments += 1
        for tp in partitions:
            self._owned[tp] = self._assignments

    def let_go(self, partitions: set[TopicPartition]) -> None:
        """`partitions` left: what was written from them is forgotten."""
        for tp in partitions:
            self._owned.pop(tp, None)
        self._cache.drop_partitions(partitions)

    def report(self) -> None:
        """Export the cache's size and what it did since the last report."""
        counts, last = self._cache.counts, self._reported
        lookups, evictions = self._metrics.skip_cache_lookups, self._metrics.skip_cache_evictions
        lookups.labels("hit").inc(counts.hits - last.hits)
        lookups.labels("miss").inc(counts.misses - last.misses)
        evictions.labels("capacity").inc(counts.evicted - last.evicted)
        evictions.labels("expired").inc(counts.expired - last.expired)
        self._reported = CacheCounts(counts.hits, counts.misses, counts.evicted, counts.expired)
        self._metrics.skip_cache_ids.set(len(self._cache))

    def _owned_since(self, tp: TopicPartition, taken_at: int) -> bool:
        """Whether `tp` has been this member's since a batch taken at `taken_at` was."""
        assigned_at = self._owned.get(tp)
        return assigned_at is not None and assigned_at <= taken_at


def _key(item: BatchInput) -> Key:
    return (item.id_property, item.id)


def _partition_of(events: list[Event]) -> TopicPartition | None:
    """The one partition `events` come from; None when they come from several."""
    first = events[0].raw
    tp = (first.topic, first.partition)
    if any((e.raw.topic, e.raw.partition) != tp for e in events[1:]):
        return None
    return tp


def _without(properties: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    if not names:
        return properties
    return {name: value for name, value in properties.items() if name not in names}
