"""Kafka in memory: the event source and record sink the unit tests drive the loop with.

They behave as service/adapters/kafka.py's KafkaSource and KafkaSink do on a real broker, as
far as the loop relies on it; tests/contract runs one suite against both, so they cannot
drift apart. What they add for tests (`revoke`, `assign`, `on_poll`, `commit_failures`,
`app_positions`, `ends`, `fail_with`, and the lists they record into) plays the broker or the
group.

Where they knowingly differ: the fake source is assigned its partitions in `subscribe`, Kafka
in a poll soon after (the contract asks only that a partition is assigned before its first
message); its lag comes from `ends`, which tests set (Kafka's from statistics every 5 s); it
takes commit metadata of any size (a broker refuses more than offset.metadata.max.bytes,
which the adapter works around); the fake sink has no producer-side size limit refused at
`publish` (only the topic's, reported on poll), and counts a record's size without Kafka's
per-record overhead.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping

from service.core.model import RawMessage
from service.core.offsets import CommitPoint, TopicPartition
from service.core.ports import DeliveryCallback, RebalanceListener
from service.core.records import OutboundRecord

INPUT_TOPIC = "subscription-events"
UNKNOWN_POSITION = -1001  # librdkafka's OFFSET_INVALID: nothing handed over in this assignment
TOO_LARGE = "Broker: Message size too large"


class FakeSource:
    """An input topic read by one member of a consumer group.

    `messages` is the topic's log in the order it was written (tests may append to it), with
    each partition's offsets increasing. Like a consumer with auto.offset.reset=earliest, the
    member is assigned every partition when it subscribes and reads each from the group's
    committed offset (`commits`, which several sources may share as one group), hands over
    only assigned, unpaused partitions, each in offset order, and reads a partition assigned
    again from the group's commit. Closing revokes what it holds.
    """

    def __init__(
        self,
        messages: list[RawMessage],
        *,
        topic: str = INPUT_TOPIC,
        partitions: int = 1,
        commits: dict[TopicPartition, CommitPoint] | None = None,
    ) -> None:
        self.messages = messages
        self.topic = topic
        self.partitions = partitions
        self.commits = commits if commits is not None else {}  # the group's, with metadata
        self.committed_offsets: dict[TopicPartition, int] = {}  # what this member committed
        self.paused: set[TopicPartition] = set()
        self.assignment: set[TopicPartition] = set()
        self.listener: RebalanceListener | None = None
        self.on_poll: Callable[[], None] | None = None  # runs first in each poll, as a
        # rebalance or a signal would arrive while the loop waits in the consumer's poll
        self.commit_failures: list[Exception] = []  # raised by the next commits, in turn
        self.ends: dict[TopicPartition, int] = {}  # end offsets, as statistics would report
        self.app_positions: dict[TopicPartition, int] = {}  # positions to report instead of
        # the member's own, e.g. past a transaction marker the log here does not hold
        self._next: dict[TopicPartition, int] = {}  # next offset to hand over, per partition
        self._read: set[TopicPartition] = set()  # handed something over in this assignment
        self.seeks: list[tuple[TopicPartition, int]] = []

    @property
    def drained(self) -> bool:
        """Every message of the assigned partitions has been handed over."""
        return all(
            m.offset < self._next[(m.topic, m.partition)]
            for m in self.messages
            if (m.topic, m.partition) in self.assignment
        )

    def subscribe(self, listener: RebalanceListener) -> None:
        self.listener = listener
        self.assign([(self.topic, n) for n in range(self.partitions)])

    def assign(self, partitions: list[TopicPartition]) -> None:
        """A rebalance gives this member `partitions`, read from the group's commit on."""
        assert self.listener is not None, "subscribe first"
        for tp in partitions:
            self.assignment.add(tp)
            point = self.commits.get(tp)
            self._next[tp] = point.offset if point is not None else 0
            self._read.discard(tp)
        self.listener.on_assigned(partitions)

    def revoke(self, partitions: list[TopicPartition]) -> None:
        """A rebalance takes `partitions` away (as the consumer's revoke callback does)."""
        assert self.listener is not None, "subscribe first"
        self.listener.on_revoked(partitions)
        for tp in partitions:
            self.assignment.discard(tp)
            self.paused.discard(tp)  # assigned back later, it is read again
            self._next.pop(tp, None)
            self._read.discard(tp)

    def lose(self, partitions: list[TopicPartition]) -> None:
        """The group takes `partitions` away without asking (as the consumer's lost callback
        does, e.g. after a session timeout): another member may already have them."""
        assert self.listener is not None, "subscribe first"
        self.listener.on_lost(partitions)
        for tp in partitions:
            self.assignment.discard(tp)
            self.paused.discard(tp)
            self._next.pop(tp, None)
            self._read.discard(tp)

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        if self.on_poll is not None:
            self.on_poll()
        chunk: list[RawMessage] = []
        for message in self.messages:
            if len(chunk) >= max_messages:
                break
            tp = (message.topic, message.partition)
            if tp in self.paused or message.offset < self._next.get(tp, message.offset + 1):
                continue
            chunk.append(message)
            self._next[tp] = message.offset + 1
            self._read.add(tp)
        return chunk

    def commit(self, points: dict[TopicPartition, CommitPoint]) -> None:
        if self.commit_failures:
            raise self.commit_failures.pop(0)
        self.commits.update(points)
        self.committed_offsets.update({tp: point.offset for tp, point in points.items()})

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, CommitPoint]:
        return {tp: self.commits[tp] for tp in partitions if tp in self.commits}

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update(partitions)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Hand the partition over again from `offset` (the messages after it come again)."""
        self.seeks.append((tp, offset))
        self._next[tp] = offset

    def positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.app_positions.get(tp, self._position(tp)) for tp in partitions}

    def _position(self, tp: TopicPartition) -> int:
        return self._next[tp] if tp in self._read else UNKNOWN_POSITION

    def lag(self, committed: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        return {
            tp: end - committed.get(tp, self.committed_offsets.get(tp, 0))
            for tp, end in self.ends.items()
        }

    def group_metadata(self) -> object:
        return None

    def partition_count(self) -> int:
        return self.partitions

    def close(self) -> None:
        if self.listener is not None and self.assignment:
            self.revoke(sorted(self.assignment))


class FakeSink:
    """A producer: acknowledges what it was given on `poll` or `flush` (each delivery
    callback once, with None), unless told to fail every record with `fail_with`.

    A record bigger than its topic takes (`max_bytes`: one limit for every topic, or one per
    topic) is refused with TOO_LARGE. With `log`, acknowledged records are appended to their
    topic's list there (keyed ones to partition crc32(key) mod `partitions`, as librdkafka's
    default partitioner does), where a FakeSource can read them.
    """

    def __init__(
        self,
        fail_with: str | None = None,
        max_bytes: int | Mapping[str, int] | None = None,
        *,
        log: dict[str, list[RawMessage]] | None = None,
        partitions: Mapping[str, int] | None = None,
    ) -> None:
        self.records: list[OutboundRecord] = []
        self.refused: list[OutboundRecord] = []
        self._pending: list[tuple[OutboundRecord, DeliveryCallback, str | None]] = []
        self._fail_with = fail_with
        self._max_bytes = max_bytes
        self._log = log
        self._partitions = partitions or {}

    def publish(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        limit = self._limit(record.topic)
        if limit is not None and _size(record) > limit:
            self.refused.append(record)
            self._pending.append((record, on_delivery, TOO_LARGE))
            return
        self.records.append(record)
        self._pending.append((record, on_delivery, self._fail_with))

    def _limit(self, topic: str) -> int | None:
        if isinstance(self._max_bytes, Mapping):
            return self._max_bytes.get(topic)
        return self._max_bytes

    def too_large(self, error: object) -> bool:
        return error == TOO_LARGE

    def poll(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        for record, callback, error in pending:
            if error is None:
                self._append(record)
            callback(error, record)

    def _append(self, record: OutboundRecord) -> None:
        if self._log is None:
            return
        log = self._log.setdefault(record.topic, [])
        partition = zlib.crc32(record.key or b"") % self._partitions.get(record.topic, 1)
        write(log, partition, record)

    def flush(self, timeout_s: float) -> int:
        self.poll(0)
        return 0

    def close(self) -> None:
        self.flush(10)


def write(log: list[RawMessage], partition: int, record: OutboundRecord) -> RawMessage:
    """Append `record` to its topic's `log` at the partition's next offset, as the broker
    does: stamped with the time it was produced (CreateTime), no headers handed over as None."""
    offset = sum(1 for m in log if m.partition == partition)
    topic, key, value, headers = record
    message = RawMessage(
        topic, partition, offset, key, value, headers or None, int(time.time() * 1000)
    )
    log.append(message)
    return message


def _size(record: OutboundRecord) -> int:
    headers = sum(len(name) + len(value) for name, value in record.headers or [])
    return len(record.key or b"") + len(record.value or b"") + headers
