from __future__ import annotations

from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core.clock import FakeClock
from service.core.model import Rejection
from service.core.offsets import OffsetTracker
from service.core.records import Topics
from service.loop.publisher import OutcomePublisher
from tests.unit.factories import raw
from tests.unit.fakes import FakeSink

TP = ("subscription-events", 0)


def _in_order_publisher(sink: FakeSink, tracker: OffsetTracker) -> OutcomePublisher:
    return OutcomePublisher(
        sink=sink,
        tracker=tracker,
        metrics=Metrics(CollectorRegistry()),
        clock=FakeClock(),
        topics=Topics(output="out", dlq="dlq"),
        in_offset_order=True,
    )


def _consume(publisher: OutcomePublisher, tracker: OffsetTracker, *offsets: int) -> list[Rejection]:
    rejections = []
    for offset in offsets:
        message = raw(b"not json", offset=offset)
        tracker.consumed(TP, offset)
        publisher.consumed(message)
        rejections.append(Rejection(message, "NOT_JSON", "bad"))
    return rejections


def test_outcomes_dropped_with_their_partition_leave_the_buffer() -> None:
    # exactly_once: an outcome waits for the earlier offsets of its partition. When the
    # partition is revoked it is dropped (the next owner redoes it), and so is an outcome
    # that arrives afterwards: both stop counting as buffered, or the buffer never drains.
    sink, tracker = FakeSink(), OffsetTracker()
    tracker.assign(TP)
    publisher = _in_order_publisher(sink, tracker)
    _, second, third = _consume(publisher, tracker, 0, 1, 2)
    publisher.rejection(second)  # waits for offset 0
    assert sink.records == [] and publisher.emitted_bytes == 0
    tracker.forget(TP)
    publisher.forget(TP)
    assert publisher.emitted_bytes == second.raw.size
    publisher.rejection(third)  # late: its partition is gone
    assert sink.records == []
    assert publisher.emitted_bytes == second.raw.size + third.raw.size


def test_in_order_outcomes_are_published_when_the_gap_closes() -> None:
    sink, tracker = FakeSink(), OffsetTracker()
    tracker.assign(TP)
    publisher = _in_order_publisher(sink, tracker)
    first, second = _consume(publisher, tracker, 0, 1)
    publisher.rejection(second)
    publisher.rejection(first)
    results = [r for r in sink.records if r.topic == "out"]
    assert len(results) == 2
    assert publisher.emitted_bytes == first.raw.size + second.raw.size
