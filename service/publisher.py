"""Publishes every event's outcome records and follows their delivery.

Owns the step from a final outcome to records handed to the sink: result (and dead-letter)
records per event, in offset order per partition when exactly_once asks for it, outcome
metrics, and the delivery callbacks that tell the OffsetTracker when an offset is finished.
A record the broker refuses becomes `fatal` (the loop stops without committing past it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from service.clock import Clock
from service.errors import DeliveryError, ServiceError
from service.metrics import Metrics
from service.model import BatchOutcome, RawMessage, Rejection, Status, log_context
from service.offsets import OffsetTracker, TopicPartition
from service.ordering import InOrderRelease
from service.ports import RecordSink
from service.records import OutboundRecord, Topics, records_for_input, records_for_rejection

log = logging.getLogger(__name__)


class _Outcome(NamedTuple):
    raw: RawMessage
    records: list[OutboundRecord]
    status: Status
    category: str | None


class OutcomePublisher:
    """Turns outcomes into published records; `emitted_bytes` counts the events done."""

    def __init__(
        self,
        *,
        sink: RecordSink,
        tracker: OffsetTracker,
        metrics: Metrics,
        clock: Clock,
        topics: Topics,
        in_offset_order: bool,
    ) -> None:
        self._sink, self._tracker, self._metrics = sink, tracker, metrics
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
        if self._release is not None:
            self._release.forget(tp)

    def rejection(self, rejection: Rejection) -> None:
        records = records_for_rejection(rejection, self._topics)
        self._publish(_Outcome(rejection.raw, records, Status.INVALID, rejection.category))
        self._report_counts()

    def batch(self, outcome: BatchOutcome) -> None:
        if log.isEnabledFor(logging.DEBUG):
            statuses = [o.status.value for o in outcome.by_trace_id.values()]
            log.debug(
                "batch finished: %d upserted, %d failed",
                statuses.count("upserted"),
                statuses.count("failed"),
                extra=log_context(outcome.batch.seq, outcome.batch.inputs),
            )
        coalesced = 0
        for item in outcome.batch.inputs:
            result = outcome.by_trace_id[item.trace_id]
            category = result.error.category if result.error else None
            coalesced += len(item.events) - 1
            per_event = records_for_input(item, result, self._topics)
            for event, records in zip(item.events, per_event, strict=True):
                self._publish(_Outcome(event.raw, records, result.status, category))
        self._metrics.coalesced_events.inc(coalesced)
        self._report_counts()

    def _publish(self, outcome: _Outcome) -> None:
        if self._release is None:
            self._emit(outcome)
            return
        raw = outcome.raw
        for ready in self._release.ready((raw.topic, raw.partition), raw.offset, outcome):
            self._emit(ready)

    def _emit(self, outcome: _Outcome) -> None:
        raw, records, status, category = outcome
        tp = (raw.topic, raw.partition)
        self._tracker.outcome_published(tp, raw.offset, len(records))
        self.emitted_bytes += raw.size
        self._count(raw, status, category)
        for record in records:
            self._sink.publish(record, self._delivery_callback(tp, raw.offset))

    def _count(self, raw: RawMessage, status: Status, category: str | None) -> None:
        self._unreported[status] += 1
        if status is not Status.UPSERTED:
            self._metrics.dead_letters.labels(status.value, category or "UNKNOWN").inc()
        if raw.timestamp_ms is not None:
            age = self._clock.wall() - raw.timestamp_ms / 1000
            self._metrics.end_to_end_seconds.observe(max(age, 0.0))

    def _report_counts(self) -> None:
        """Add the results counted since the last report (one counter update per status)."""
        for status, count in self._unreported.items():
            if count:
                self._results_by_status[status].inc(count)
                self._unreported[status] = 0

    def _delivery_callback(self, tp: TopicPartition, offset: int) -> Callable[[str | None], None]:
        def delivered(error: str | None) -> None:
            if error is None:
                self._tracker.delivered(tp, offset)
                return
            self._metrics.delivery_errors.inc()
            log.error(
                "broker refused an outcome record: %s",
                error,
                extra={"topic": tp[0], "partition": tp[1], "offset": offset},
            )
            self.fatal = DeliveryError(error, topic=tp[0], partition=tp[1], offset=offset)

        return delivered
