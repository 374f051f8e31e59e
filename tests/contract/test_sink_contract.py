"""What the loop relies on the record sink for, true of the fake and of KafkaSink alike."""

from __future__ import annotations

import os
import uuid

from service.core.ports import DeliveryCallback
from service.core.records import OutboundRecord
from tests.contract.backends import Backend
from tests.contract.support import RecordingListener, count, poll_for, poll_until


class _Deliveries:
    """Delivery callbacks that record (record number, error), one per record published."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, object | None]] = []

    def callback(self, number: int) -> DeliveryCallback:
        def on_delivery(error: object | None, _record: object = None) -> None:
            self.calls.append((number, error))

        return on_delivery


def _read_back(backend: Backend, topic: str, n: int) -> list[tuple[object, ...]]:
    """Key, value and headers of what the topic holds (`n` records expected), in order."""
    source = backend.source(topic, f"reader-{uuid.uuid4().hex[:12]}")
    source.subscribe(RecordingListener())
    seen = poll_until(source, count(n), backend.patience_s)
    seen += poll_for(source, backend.quiet_s)
    return [(m.key, m.value, m.headers) for m in seen]


def test_each_record_is_acknowledged_once_and_can_be_read_back(backend: Backend) -> None:
    topic, sink, deliveries = backend.topic(), backend.sink(), _Deliveries()
    records = [
        OutboundRecord(topic, f"k{n}".encode(), f"v{n}".encode(), [("n", f"{n}".encode())])
        for n in range(5)
    ]
    for number, record in enumerate(records):
        sink.publish(record, deliveries.callback(number))
    assert sink.flush(10) == 0  # everything acknowledged
    assert sorted(deliveries.calls, key=lambda call: call[0]) == [(n, None) for n in range(5)]
    sink.poll(0.1)
    assert len(deliveries.calls) == 5  # once each
    assert _read_back(backend, topic, 5) == [record[1:] for record in records]


def test_a_record_bigger_than_the_topic_takes_is_reported_as_too_large(backend: Backend) -> None:
    topic, sink, deliveries = backend.topic(max_message_bytes=4_096), backend.sink(), _Deliveries()
    big = OutboundRecord(topic, b"big", os.urandom(20_000))  # random: compression cannot help
    sink.publish(big, deliveries.callback(0))
    assert sink.flush(10) == 0  # nothing left waiting: the refusal is its outcome
    [(_, error)] = deliveries.calls
    assert error is not None and sink.too_large(error)
    small = OutboundRecord(topic, b"small", b"fits")
    sink.publish(small, deliveries.callback(1))
    assert sink.flush(10) == 0
    assert deliveries.calls[1] == (1, None)
    assert not sink.too_large(None)
    assert _read_back(backend, topic, 1) == [(b"small", b"fits", None)]
