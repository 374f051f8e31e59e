"""The two Kafkas the contract suite runs against: the in-memory fakes the unit tests drive
the loop with (tests/unit/fake_kafka.py) and the real adapters (service/adapters/kafka.py)
on the session's broker. Each gives topics, a way to write input records, and the service's
source and sink on them; what the suite asserts must hold for both.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from confluent_kafka import Producer

from service.adapters.kafka import KafkaSink, KafkaSource, consumer_config, producer_config
from service.core.model import RawMessage
from service.core.offsets import CommitPoint, TopicPartition
from service.core.ports import EventSource, RecordSink
from service.core.records import OutboundRecord
from tests.kafka_support import TopicFactory
from tests.unit.fake_kafka import FakeSink, FakeSource, write


class Produced(NamedTuple):
    """An input record, written to one partition."""

    partition: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


class Backend(Protocol):
    patience_s: float  # how long to poll for what should arrive
    quiet_s: float  # how long to poll to be sure nothing arrives

    def topic(self, partitions: int = 1, max_message_bytes: int | None = None) -> str: ...

    def produce(self, topic: str, records: Sequence[Produced]) -> None: ...

    def source(self, topic: str, group: str) -> EventSource:
        """A new member of consumer group `group`, reading `topic` (not yet subscribed)."""
        ...

    def sink(self) -> RecordSink: ...

    def close(self) -> None:
        """Close every source and sink still open."""
        ...


class FakeBackend:
    """Topics as in-memory logs that FakeSinks append to and FakeSources read."""

    patience_s = 0.5
    quiet_s = 0.05

    def __init__(self) -> None:
        self._logs: dict[str, list[RawMessage]] = {}
        self._partitions: dict[str, int] = {}
        self._max_bytes: dict[str, int] = {}
        self._groups: dict[str, dict[TopicPartition, CommitPoint]] = {}

    def topic(self, partitions: int = 1, max_message_bytes: int | None = None) -> str:
        name = f"contract-{uuid.uuid4().hex[:12]}"
        self._logs[name], self._partitions[name] = [], partitions
        if max_message_bytes is not None:
            self._max_bytes[name] = max_message_bytes
        return name

    def produce(self, topic: str, records: Sequence[Produced]) -> None:
        for partition, key, value, headers in records:
            write(self._logs[topic], partition, OutboundRecord(topic, key, value, headers))

    def source(self, topic: str, group: str) -> EventSource:
        commits = self._groups.setdefault(group, {})
        return FakeSource(
            self._logs[topic], topic=topic, partitions=self._partitions[topic], commits=commits
        )

    def sink(self) -> RecordSink:
        return FakeSink(max_bytes=self._max_bytes, log=self._logs, partitions=self._partitions)

    def close(self) -> None:
        return


class KafkaBackend:
    """The service's adapters on a real broker; topics from the session's topic factory."""

    patience_s = 30.0
    quiet_s = 2.0

    def __init__(self, bootstrap: str, make_topic: TopicFactory) -> None:
        self._common = {"bootstrap.servers": bootstrap}
        self._make_topic = make_topic
        self._sources: list[KafkaSource] = []
        self._sinks: list[KafkaSink] = []

    def topic(self, partitions: int = 1, max_message_bytes: int | None = None) -> str:
        limit = None if max_message_bytes is None else {"max.message.bytes": f"{max_message_bytes}"}
        return self._make_topic(partitions=partitions, prefix="contract", config=limit)

    def produce(self, topic: str, records: Sequence[Produced]) -> None:
        producer = Producer(self._common)
        failed: list[object] = []
        for partition, key, value, headers in records:
            sent: list[tuple[str, str | bytes]] = list(headers or [])
            producer.produce(
                topic,
                value,
                key,
                partition=partition,
                headers=sent or None,
                on_delivery=lambda error, _: failed.append(error) if error else None,
            )
        assert producer.flush(30) == 0, "the broker did not take every record"
        assert failed == [], failed

    def source(self, topic: str, group: str) -> EventSource:
        source = KafkaSource(consumer_config(self._common, group), topic)
        self._sources.append(source)
        return source

    def sink(self) -> RecordSink:
        sink = KafkaSink(producer_config(self._common))
        self._sinks.append(sink)
        return sink

    def close(self) -> None:
        for source in self._sources:
            with contextlib.suppress(RuntimeError):  # closed by the test already
                source.close()
        for sink in self._sinks:
            sink.close()
