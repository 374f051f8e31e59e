"""Publishes every event's outcome records and follows their delivery.

Owns the step from a final outcome to records handed to the sink: result (and dead-letter)
records per event, in offset order per partition when exactly_once asks for it, outcome
metrics, and delivery tracking. The records of one call (a batch, or a rejected event) form
a delivery group with one callback: when the broker has acknowledged all of them, their
offsets are finished in the OffsetTracker. A record the broker refuses becomes `fatal` and
its group never finishes (the loop stops without committing past it).

With tracing on, an event that could not be read gets a span of its own (the Tracing port's
`rejected`): its outcome is decided here on the main thread as it is read, before any batch
exists, so no batch or request span could stand for it; its records carry that span's trace
context, a child of its producer's when its headers carry one. A batch's outcomes come with
the context of the span that decided each (service/loop/caller.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

from service.core.associations import ASSOCIATION_FAILED
from service.core.clock import Clock
from service.core.errors import DeliveryError, ServiceError
from service.core.model import (
    AssociationOutcome,
    AssociationRef,
    BatchInput,
    BatchOutcome,
    Event,
    InputOutcome,
    RawMessage,
    Rejection,
    Status,
    log_context,
)
from service.core.offsets import OffsetTracker, PartitionProgress, TopicPartition
from service.core.ordering import InOrderRelease
from service.core.ports import DeliveryCallback, Metrics, RecordSink, Tracing
from service.core.records import (
    DEAD_LETTERED,
    OutboundRecord,
    Topics,
    cut_to_fit,
    records_for_input,
    records_for_rejection,
    records_for_split_event,
)
from service.core.tracing import NO_TRACING

log = logging.getLogger(__name__)


class _Outcome(NamedTuple):
    raw: RawMessage
    records: list[OutboundRecord]
    status: Status
    category: str | None


class _DeliveryGroup:
    """The records published in one call, and the offsets they finish once all are acked."""

    __slots__ = (
        "_progress",
        "_publisher",
        "_tracker",
        "event_bytes",
        "finishes",
        "pending",
        "sealed",
        "timestamps_ms",
    )

    def __init__(self, publisher: OutcomePublisher, tracker: OffsetTracker) -> None:
        self._publisher, self._tracker = publisher, tracker
        self._progress: dict[TopicPartition, PartitionProgress | None] = {}
        self.finishes: list[tuple[PartitionProgress, int]] = []
        self.timestamps_ms: list[int] = []
        self.event_bytes = 0
        self.pending = 0
        self.sealed = False

    def add(self, raw: RawMessage, records: int) -> None:
        """The event's `records` records are about to be published."""
        tp = (raw.topic, raw.partition)
        progress_by_tp = self._progress
        if tp in progress_by_tp:
            progress = progress_by_tp[tp]
        else:
            progress = progress_by_tp[tp] = self._tracker.progress(tp)
        if progress is not None:
            self.finishes.append((progress, raw.offset))
        if raw.timestamp_ms is not None:
            self.timestamps_ms.append(raw.timestamp_ms)
        self.event_bytes += raw.size
        self.pending += records

    def seal(self) -> None:
        self.sealed = True
        if self.pending == 0:
            self._finish()

    def __call__(self, error: object | None, _record: object = None) -> None:
        """The sink's delivery callback, once per record: None when acknowledged."""
        if error is not None:  # not counted off: the group never finishes
            self._publisher.refused(error, self.finishes)
            return
        self.pending -= 1
        if self.pending == 0 and self.sealed:
            self._finish()

    def _finish(self) -> None:
        for progress, offset in self.finishes:
            progress.finish(offset)
        self.finishes = []


class _DeadLetterDelivery:
    """The delivery callback of one dead letter: refused for its size, the dead letter goes
    again with its value cut to fit (the original stays in the input topic), rather than
    stopping the service on one record; anything else is its group's."""

    __slots__ = ("_group", "_publisher", "_record")

    def __init__(
        self, publisher: OutcomePublisher, group: _DeliveryGroup, record: OutboundRecord
    ) -> None:
        self._publisher, self._group, self._record = publisher, group, record

    def __call__(self, error: object | None, _record: object = None) -> None:
        if error is not None and self._publisher.cut_to_fit(self, error):
            return
        self._group(error)

    def resend(self, cut: OutboundRecord) -> None:
        self._record = cut
        self._publisher.send(cut, self)

    @property
    def record(self) -> OutboundRecord:
        return self._record


class OutcomePublisher:
    """Turns outcomes into published records; `emitted_bytes` counts the bytes of the events
    done with: published, or dropped with their partition."""

    def __init__(
        self,
        *,
        sink: RecordSink,
        tracker: OffsetTracker,
        metrics: Metrics,
        clock: Clock,
        topics: Topics,
        in_offset_order: bool,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._sink, self._tracker, self._metrics = sink, tracker, metrics
        self._tracing = tracing
        self._clock, self._topics = clock, topics
        self._release: InOrderRelease[_Outcome] | None = (
            InOrderRelease() if in_offset_order else None
        )
        self.fatal: ServiceError | None = None
        self.emitted_bytes = 0
        self._results_by_status = {
            status: metrics.results.labels(status.value) for status in Status
        }
        self._unreported: dict[Status, int] = dict.fromkeys(Status, 0)

    def consumed(self, raw: RawMessage) -> None:
        if self._release is not None:
            self._release.consumed((raw.topic, raw.partition), raw.offset)

    def forget(self, tp: TopicPartition) -> None:
        """The partition was revoked or lost: outcomes still waiting for their turn are dropped
        (its next owner reads those events again), and leave the buffer."""
        if self._release is not None:
            self.emitted_bytes += sum(outcome.raw.size for outcome in self._release.forget(tp))

    def rejection(self, rejection: Rejection) -> None:
        group = _DeliveryGroup(self, self._tracker)
        records = records_for_rejection(rejection, self._topics, self._tracing.rejected(rejection))
        self._publish(_Outcome(rejection.raw, records, Status.INVALID, rejection.category), group)
        self._close(group)

    def batch(self, outcome: BatchOutcome) -> None:
        if log.isEnabledFor(logging.DEBUG):
            statuses = [o.status.value for o in outcome.by_trace_id.values()]
            log.debug(
                "batch finished: %d upserted, %d failed",
                statuses.count("upserted"),
                statuses.count("failed"),
                extra=log_context(outcome.batch.seq, outcome.batch.inputs),
            )
        group = _DeliveryGroup(self, self._tracker)
        coalesced = 0
        by_trace_id, topics, in_order = outcome.by_trace_id, self._topics, self._release
        handed_over = {id(item) for item in outcome.handed_over}  # their next owner redoes them
        deferred = {id(item) for item in outcome.deferred}  # to be sent again: no outcome yet
        split, associations = outcome.per_event, outcome.associations
        for item in outcome.batch.inputs:
            if handed_over and id(item) in handed_over:  # no records: they leave the buffer
                self.emitted_bytes += sum(event.raw.size for event in item.events)
                continue
            if deferred and id(item) in deferred:
                continue
            if split and item.trace_id in split:
                linked = associations.get(item.trace_id) if associations else None
                self._split_input(item, split[item.trace_id], linked, group)
                continue
            result = by_trace_id[item.trace_id]
            status = result.status
            category = result.error.category if result.error else None
            events = item.events
            coalesced += len(events) - 1
            linked = associations.get(item.trace_id) if associations else None
            per_event = records_for_input(item, result, topics, linked)
            for event, records in zip(events, per_event, strict=True):
                if in_order is None:
                    self._emit(event.raw, records, status, category, group)
                else:
                    self._publish(_Outcome(event.raw, records, status, category), group)
        if coalesced:
            self._metrics.coalesced_events.inc(coalesced)
        self._close(group)

    def _split_input(
        self,
        item: BatchInput,
        outcomes: list[tuple[Event, InputOutcome | None]],
        associations: Mapping[AssociationRef, AssociationOutcome] | None,
        group: _DeliveryGroup,
    ) -> None:
        """A merged input that went one event per input: each event's own outcome (none for
        an event handed over meanwhile: its partition's next owner redoes it). Events of it
        deferred to a later batch are not among these."""
        for event, result in outcomes:
            if result is None:
                self.emitted_bytes += event.raw.size
                continue
            records = records_for_split_event(item, event, result, self._topics, associations)
            category = result.error.category if result.error else None
            self._publish(_Outcome(event.raw, records, result.status, category), group)

    def send(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        self._sink.publish(record, on_delivery)

    def cut_to_fit(self, delivery: _DeadLetterDelivery, error: object) -> bool:
        """A dead letter refused for its size goes again, cut; False when it was refused for
        another reason, or nothing is left to cut."""
        if not self._sink.too_large(error):
            return False
        cut = cut_to_fit(delivery.record, self._topics.dlq_max_bytes)
        if cut is None:
            return False
        self._metrics.dead_letters_truncated.inc()
        log.warning(
            "the dead-letter topic refused a record of %d bytes (%s); sending it with its "
            "value cut to %d bytes (the original stays in the input topic)",
            len(delivery.record.value or b""),
            error,
            len(cut.value or b""),
        )
        delivery.resend(cut)
        return True

    def refused(self, error: object, finishes: list[tuple[PartitionProgress, int]]) -> None:
        """A record of a group was refused by the broker: stop, and never commit past it."""
        self._metrics.delivery_errors.inc()
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        for progress, offset in finishes:
            low, high = ranges.get(progress.tp, (offset, offset))
            ranges[progress.tp] = (min(low, offset), max(high, offset))
        where = ", ".join(f"{t}[{p}] {lo}-{hi}" for (t, p), (lo, hi) in sorted(ranges.items()))
        log.error("broker refused an outcome record of events %s: %s", where or "(none)", error)
        if self.fatal is None:
            self.fatal = DeliveryError(f"{error} (outcome of events {where or 'unknown'})")

    def _publish(self, outcome: _Outcome, group: _DeliveryGroup) -> None:
        if self._release is None:
            self._emit(*outcome, group)
            return
        raw = outcome.raw
        tp = (raw.topic, raw.partition)
        if not self._release.tracks(tp):  # forgotten meanwhile: its next owner redoes it
            self.emitted_bytes += raw.size
            return
        for ready in self._release.ready(tp, raw.offset, outcome):
            self._emit(*ready, group)

    def _emit(
        self,
        raw: RawMessage,
        records: list[OutboundRecord],
        status: Status,
        category: str | None,
        group: _DeliveryGroup,
    ) -> None:
        group.add(raw, len(records))
        publish, dlq = self._sink.publish, self._topics.dlq
        for record in records:
            if record.topic == dlq:
                publish(record, _DeadLetterDelivery(self, group, record))
            else:
                publish(record, group)
        self._unreported[status] += 1
        if status in DEAD_LETTERED:
            self._metrics.dead_letters.labels(status.value, category or "UNKNOWN").inc()
        elif len(records) > 1:  # upserted, but an association failed: its dead letter
            self._metrics.dead_letters.labels(Status.FAILED.value, ASSOCIATION_FAILED).inc()

    def _close(self, group: _DeliveryGroup) -> None:
        """Report the group's counts and latencies, and let it finish once all are acked."""
        for status, count in self._unreported.items():
            if count:
                self._results_by_status[status].inc(count)
                self._unreported[status] = 0
        if group.timestamps_ms:
            now_ms = self._clock.wall() * 1000
            self._metrics.end_to_end_seconds.observe_many(
                [max(now_ms - stamp, 0.0) / 1000 for stamp in group.timestamps_ms]
            )
            group.timestamps_ms = []
        self.emitted_bytes += group.event_bytes
        group.seal()
