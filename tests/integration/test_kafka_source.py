"""The Kafka adapter's consumer on the real broker: what the loop relies on it for."""

from __future__ import annotations

import time
import uuid

import pytest

from service.adapters.kafka import KafkaSource, consumer_config
from service.offsets import TopicPartition
from tests.integration.support import event_bytes, new_topics, produce

pytestmark = [pytest.mark.kafka]


class _Listener:
    def __init__(self) -> None:
        self.assigned: list[TopicPartition] = []

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.assigned.extend(partitions)

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        return

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        return


def test_consumption_restarts_promptly_after_each_pause_and_nothing_is_skipped(
    kafka_bootstrap: str,
) -> None:
    # A backlog the consumer prefetches a good part of, as in a busy service.
    topics = new_topics(kafka_bootstrap, partitions=3)
    total = 40_000
    produce(
        kafka_bootstrap, topics.input, [event_bytes(f"s-{n}", plan="gold") for n in range(total)]
    )
    common = {"bootstrap.servers": kafka_bootstrap}
    source = KafkaSource(consumer_config(common, f"g-{uuid.uuid4().hex[:8]}"), topics.input)
    listener = _Listener()
    try:
        source.subscribe(listener)
        seen: list[tuple[int, int]] = []
        deadline = time.monotonic() + 30
        while len(seen) < 20_000 and time.monotonic() < deadline:
            seen += [(m.partition, m.offset) for m in source.poll(500, 0.5)]
        gaps = []
        for _ in range(5):  # the delay without help depends on the fetcher's phase: repeat
            source.pause(listener.assigned)
            for _ in range(4):
                assert source.poll(500, 0.05) == []  # paused: nothing is handed out
            source.resume(listener.assigned)
            resumed = time.monotonic()
            while not (batch := source.poll(500, 0.01)):
                assert time.monotonic() - resumed < 5, "no message after resuming"
            gaps.append(time.monotonic() - resumed)
            seen += [(m.partition, m.offset) for m in batch]
        # librdkafka alone fetches again up to a second after a resume (about 0.5 s each).
        assert sum(gaps) < 1.0, gaps
        while len(seen) < total and time.monotonic() < deadline:
            seen += [(m.partition, m.offset) for m in source.poll(500, 0.2)]
        assert len(seen) == len(set(seen)) == total
    finally:
        source.close()
