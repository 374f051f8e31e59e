from __future__ import annotations

import hashlib

from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core.clock import FakeClock
from service.core.model import Rejection
from service.core.offsets import CommitPoint, OffsetTracker
from service.core.records import Topics
from service.loop.publisher import OutcomePublisher
from tests.unit.factories import raw
from tests.unit.fake_kafka import FakeSink

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


def test_a_dead_letter_too_big_for_its_topic_goes_again_cut_to_fit() -> None:
    # The original value plus the dead letter's headers is over the topic's limit: refused,
    # it would stop the service on one record. It goes again, cut, and says so.
    original = b"x" * 5_000
    sink, tracker = FakeSink(max_bytes=4_000), OffsetTracker()
    tracker.assign(TP)
    metrics = Metrics(CollectorRegistry())
    publisher = OutcomePublisher(
        sink=sink,
        tracker=tracker,
        metrics=metrics,
        clock=FakeClock(),
        topics=Topics(output="out", dlq="dlq", dlq_max_bytes=4_000),
        in_offset_order=False,
    )
    message = raw(original, offset=0)
    tracker.consumed(TP, 0)
    publisher.consumed(message)
    publisher.rejection(Rejection(message, "NOT_JSON", "bad"))
    sink.poll(0)  # the refusal arrives; the cut dead letter is sent
    sink.poll(0)  # and acknowledged
    assert [r.topic for r in sink.refused] == ["dlq"]
    [dead] = [r for r in sink.records if r.topic == "dlq"]
    headers = dict(dead.headers or [])
    assert headers["dlq.truncated"] == b"true"
    assert headers["dlq.original.size"] == b"5000"
    assert headers["dlq.original.sha256"] == hashlib.sha256(original).hexdigest().encode()
    assert headers["source.offset"] == b"0" and headers["error.category"] == b"NOT_JSON"
    assert original.startswith(dead.value or b"") and 0 < len(dead.value or b"") < 4_000
    assert publisher.fatal is None
    assert {tp: p.offset for tp, p in tracker.commit_points().items()} == {TP: 1}
    assert (
        metrics.registry.get_sample_value("subscription_upserter_dead_letters_truncated_total") == 1
    )


def test_a_dead_letter_refused_for_another_reason_still_stops_the_service() -> None:
    sink, tracker = FakeSink(fail_with="Broker: Topic authorization failed"), OffsetTracker()
    tracker.assign(TP)
    publisher = _in_order_publisher(sink, tracker)
    [rejection] = _consume(publisher, tracker, 0)
    publisher.rejection(rejection)
    sink.poll(0)
    assert publisher.fatal is not None
    assert tracker.commit_points() == {TP: CommitPoint(0)}
