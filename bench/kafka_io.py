"""Topics for one run, and what the bench reads back from Kafka: counts and timestamps."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, TopicPartition

from devstack.kafka import create_topics, watermark_offsets


@dataclass(frozen=True, slots=True)
class RunTopics:
    input: str
    output: str
    dlq: str
    group: str
    partitions: int


def new_topics(bootstrap: str, label: str, partitions: int) -> RunTopics:
    """Fresh input, result and dead-letter topics and a fresh group for one run."""
    suffix = f"{label}-{uuid.uuid4().hex[:6]}"
    topics = RunTopics(
        input=f"events-{suffix}",
        output=f"results-{suffix}",
        dlq=f"dlq-{suffix}",
        group=f"group-{suffix}",
        partitions=partitions,
    )
    create_topics(bootstrap, {topics.input: partitions, topics.output: partitions, topics.dlq: 1})
    return topics


class TopicWatch:
    """Counts records in a topic from its high watermarks (no need to read them)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-watch-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        metadata = self._consumer.list_topics(topic, timeout=10)
        self._partitions = sorted(metadata.topics[topic].partitions)

    def highs(self) -> dict[int, int]:
        return {
            p: watermark_offsets(self._consumer, TopicPartition(self._topic, p), 10)[1]
            for p in self._partitions
        }

    def count(self) -> int:
        return sum(self.highs().values())

    def wait_for(
        self,
        expected: int,
        deadline_s: float,
        *,
        interval_s: float = 0.25,
        on_tick: Callable[[int], None] | None = None,
    ) -> int:
        """Poll until `expected` records are in the topic or `deadline_s` (monotonic) passes."""
        while True:
            count = self.count()
            if on_tick is not None:
                on_tick(count)
            if count >= expected or time.monotonic() >= deadline_s:
                return count
            time.sleep(interval_s)

    def last_timestamp_ms(self) -> int | None:
        """The newest record's Kafka timestamp (the last record of each partition, max)."""
        highs = {p: h for p, h in self.highs().items() if h > 0}
        if not highs:
            return None
        self._consumer.assign([TopicPartition(self._topic, p, h - 1) for p, h in highs.items()])
        newest: int | None = None
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        try:
            while len(seen) < len(highs) and time.monotonic() < deadline:
                message = self._consumer.poll(0.5)
                if message is None or message.error():
                    continue
                _, stamp = message.timestamp()
                newest = stamp if newest is None else max(newest, stamp)
                seen.add(message.partition() or 0)
        finally:
            self._consumer.unassign()
        return newest

    def close(self) -> None:
        self._consumer.close()


@dataclass(frozen=True, slots=True)
class ResultStamp:
    """A result record's Kafka timestamp and the input event (partition, offset) it answers."""

    source: tuple[int, int]
    timestamp_ms: int
    status: str


def read_results(bootstrap: str, topic: str, timeout_s: float = 120) -> list[ResultStamp]:
    """Every result record in `topic` (up to the high watermarks), with its timestamp."""
    watch = TopicWatch(bootstrap, topic)
    highs = {p: h for p, h in watch.highs().items() if h > 0}
    watch.close()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in highs])
    stamps: list[ResultStamp] = []
    done: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(done) < len(highs) and time.monotonic() < deadline:
            for message in consumer.consume(1_000, 0.5):
                if message.error():
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                document = orjson.loads(message.value() or b"{}")
                source = document.get("source") or {}
                _, stamp = message.timestamp()
                stamps.append(
                    ResultStamp(
                        (int(source.get("partition", -1)), int(source.get("offset", -1))),
                        stamp,
                        str(document.get("status")),
                    )
                )
                if offset >= highs[partition] - 1:
                    done.add(partition)
        return stamps
    finally:
        consumer.close()
