"""Kafka through confluent-kafka: the input consumer and the results/dead-letter producer.

Owns client configuration, translation of confluent-kafka types into the service's value
types, rebalance callbacks and the statistics that give consumer lag. Does not decide
what to commit or publish (the pipeline does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from service.core.errors import CommitError, ConfigError, ServiceError, TransactionError
from service.core.model import RawMessage
from service.core.offsets import CommitPoint
from service.core.offsets import TopicPartition as PartitionKey
from service.core.ports import DeliveryCallback, RebalanceListener
from service.core.records import OutboundRecord

log = logging.getLogger(__name__)

_ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner picks
_COMMITTED_TIMEOUT_S = 10.0
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


# What the service's guarantees rest on: KAFKA_EXTRA_CONFIG may not change these (the
# settings refuse them, see config.KAFKA_KEYS_THE_SERVICE_SETS).
CONSUMER_OWNED: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
    "partition.assignment.strategy": "cooperative-sticky",  # the rebalance handling's protocol
    "statistics.interval.ms": 5_000,  # the lag metric (and the alerts on it) come from these
}
PRODUCER_OWNED: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}
# Tuned defaults: KAFKA_EXTRA_CONFIG, applied after them, may change these.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "max.poll.interval.ms": 300_000,
}
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 5,
    "compression.type": "lz4",
    "message.timeout.ms": 300_000,
}


def consumer_config(common: dict[str, Any], group_id: str) -> dict[str, Any]:
    """`common` (which holds KAFKA_EXTRA_CONFIG) over the defaults; the owned keys over both."""
    return {**CONSUMER_DEFAULTS, **common, "group.id": group_id, **CONSUMER_OWNED}


def producer_config(common: dict[str, Any]) -> dict[str, Any]:
    return {**PRODUCER_DEFAULTS, **common, **PRODUCER_OWNED}


class KafkaSource:
    """The input topic as a consumer-group member with manual commits."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self._topic = topic
        self._ends: dict[PartitionKey, _PartitionEnds] = {}
        self._consumer = Consumer({**config, "stats_cb": self._on_stats})

    def subscribe(self, listener: RebalanceListener) -> None:
        def assigned(_: Consumer, partitions: list[TopicPartition]) -> None:
            listener.on_assigned(_tps(partitions))

        def revoked(_: Consumer, partitions: list[TopicPartition]) -> None:
            listener.on_revoked(_tps(partitions))
            self._departed(partitions)

        def lost(_: Consumer, partitions: list[TopicPartition]) -> None:
            listener.on_lost(_tps(partitions))
            self._departed(partitions)

        self._consumer.subscribe([self._topic], on_assign=assigned, on_revoke=revoked, on_lost=lost)

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        messages = self._consumer.consume(num_messages=max_messages, timeout=timeout_s)
        return [raw for message in messages if (raw := _raw(message)) is not None]

    def commit(self, points: dict[PartitionKey, CommitPoint]) -> None:
        offsets = _offsets(points)
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if _code(exc) != KafkaError.OFFSET_METADATA_TOO_LARGE:
                raise CommitError(f"offset commit failed: {exc.args[0]}") from exc
            log.warning(
                "the broker refused the commit's metadata as too large (its "
                "offset.metadata.max.bytes is below KAFKA_COMMIT_METADATA_MAX_BYTES); "
                "committing without it, so the next owner redoes finished events"
            )
            self.commit({tp: CommitPoint(point.offset) for tp, point in points.items()})

    def committed(self, partitions: list[PartitionKey]) -> dict[PartitionKey, CommitPoint]:
        try:
            found = self._consumer.committed(
                [TopicPartition(t, p) for t, p in partitions], timeout=_COMMITTED_TIMEOUT_S
            )
        except KafkaException as exc:
            log.warning(
                "could not read the committed offsets of %s (%s); events finished past them "
                "by their previous owner are redone",
                partitions,
                exc.args[0],
            )
            return {}
        return {
            (tp.topic, tp.partition): CommitPoint(tp.offset, tp.metadata or "")
            for tp in found
            if tp.error is None and tp.offset >= 0
        }

    def pause(self, partitions: list[PartitionKey]) -> None:
        self._consumer.pause([TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: list[PartitionKey]) -> None:
        """Resume fetching at once. librdkafka's fetcher only notices a resume when it next
        re-decides what to fetch, up to a second later; a seek to the application's position
        (where resuming starts anyway) wakes it now."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        self._consumer.resume(tps)
        try:
            for position in self._consumer.position(tps):
                if position.offset >= 0:
                    self._consumer.seek(position)
        except KafkaException as exc:  # e.g. revoked meanwhile: it then resumes on its own
            log.debug("could not hurry the resumed fetch: %s", exc.args[0])

    def seek(self, tp: PartitionKey, offset: int) -> None:
        """The next message of the partition is at `offset` again; what was fetched past it
        is dropped (librdkafka discards the fetched messages of the old position)."""
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:
            raise ServiceError(
                f"could not seek {tp[0]}[{tp[1]}] back to offset {offset}: {exc.args[0]}"
            ) from exc

    def _departed(self, partitions: list[TopicPartition]) -> None:
        for tp in _tps(partitions):
            self._ends.pop(tp, None)  # reported again, fresh, if it comes back
        self._unpause_departing(partitions)

    def _unpause_departing(self, partitions: list[TopicPartition]) -> None:
        """librdkafka keeps the application's pause on a partition that leaves the assignment:
        assigned back later, it would never be fetched again. A departing partition is resumed
        (without a seek: its position is no longer this member's to set)."""
        try:
            self._consumer.resume(partitions)
        except KafkaException as exc:
            log.debug("could not clear the pause of departing partitions: %s", exc.args[0])

    def positions(self, partitions: list[PartitionKey]) -> dict[PartitionKey, int]:
        try:
            found = self._consumer.position([TopicPartition(t, p) for t, p in partitions])
        except KafkaException as exc:  # e.g. revoked meanwhile: positions come next time
            log.debug("could not read the consumer's positions: %s", exc.args[0])
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.error is None}

    def lag(self, committed: Mapping[PartitionKey, int]) -> dict[PartitionKey, int]:
        lags: dict[PartitionKey, int] = {}
        for tp, ends in self._ends.items():
            position = committed.get(tp, ends.committed)
            if position is None:
                position = ends.start
            lags[tp] = max(ends.end - position, 0)
        return lags

    def group_metadata(self) -> object:
        return self._consumer.consumer_group_metadata()

    def partition_count(self) -> int:
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=5)
        except KafkaException:
            return 0
        topic = metadata.topics.get(self._topic)
        return len(topic.partitions) if topic is not None and topic.error is None else 0

    def close(self) -> None:
        self._consumer.close()

    def _on_stats(self, document: str) -> None:
        stats = orjson.loads(document)
        topic = stats.get("topics", {}).get(self._topic, {})
        for partition_id, partition in topic.get("partitions", {}).items():
            ends = _partition_ends(partition)
            if int(partition_id) >= 0 and ends is not None:
                self._ends[(self._topic, int(partition_id))] = ends


class _PartitionEnds(NamedTuple):
    """What librdkafka's statistics say of an assigned partition: its end (the last stable
    offset, as a read_committed consumer sees it), the group's committed offset when there is
    one, and its start (the low watermark)."""

    end: int
    committed: int | None
    start: int


def _partition_ends(partition: dict[str, Any]) -> _PartitionEnds | None:
    """librdkafka's own `consumer_lag` counts from the offset committed through the consumer,
    which in exactly_once mode (offsets sent with the transaction) it learns only at
    assignment; the service computes lag from its own commits instead."""
    if partition.get("fetch_state") in (None, "none", "stopping", "stopped"):
        return None  # not being fetched: not this member's, or not yet started
    end = partition.get("ls_offset", -1)
    if end < 0:
        end = partition.get("hi_offset", -1)
    start = partition.get("lo_offset", -1)
    if end < 0 or start < 0:
        return None
    committed = partition.get("committed_offset", -1)
    return _PartitionEnds(end, committed if committed >= 0 else None, start)


def _offsets(points: Mapping[PartitionKey, CommitPoint]) -> list[TopicPartition]:
    return [
        TopicPartition(topic, partition, point.offset, metadata=point.metadata)
        if point.metadata
        else TopicPartition(topic, partition, point.offset)
        for (topic, partition), point in points.items()
    ]


def _code(exc: KafkaException) -> int | None:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


def _tps(partitions: list[TopicPartition]) -> list[PartitionKey]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _raw(message: Message) -> RawMessage | None:
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            return None
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer error: %s", error)
        return None
    _, timestamp = message.timestamp()
    return RawMessage(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        message.headers(),
        timestamp if timestamp > 0 else None,
    )


class KafkaSink:
    """The results and dead-letter topics, through one idempotent producer."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)

    def publish(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        try:
            self._produce(record, on_delivery)
        except KafkaException as exc:  # refused before it left, e.g. over message.max.bytes
            on_delivery(exc.args[0] if exc.args else exc, None)

    def too_large(self, error: object) -> bool:
        return isinstance(error, KafkaError) and error.code() in _TOO_LARGE

    def _produce(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        topic, key, value, headers = record
        while True:
            try:
                # positional (topic, value, key, partition, callback, on_delivery (an alias
                # of callback), timestamp, headers): no keyword matching in C per record
                self._producer.produce(
                    topic,
                    value,
                    key,
                    _ANY_PARTITION,
                    on_delivery,
                    None,
                    0,
                    headers,  # type: ignore[arg-type]  # list is invariant
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def poll(self, timeout_s: float) -> None:
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        return self._producer.flush(timeout_s)

    def close(self) -> None:
        self._producer.flush(10)


class TransactionalKafkaSink(KafkaSink):
    """The sink in exactly_once mode: records and offsets commit in one transaction.

    `transactional.id` must be stable for one replica (so a restarted process fences its
    predecessor) and unique across replicas. A transaction that cannot commit is aborted
    and raised as TransactionError: the service stops, and its restart resumes from the
    last committed transaction (aborted records are invisible to read_committed readers).
    """

    def __init__(
        self, config: dict[str, Any], transactional_id: str, timeout_s: float = 60
    ) -> None:
        self._timeout_s = timeout_s
        transactional = {
            **config,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": 60_000,
            "message.timeout.ms": 60_000,
        }
        super().__init__(transactional)  # refused settings: ConfigError, as for any client
        try:
            self._producer.init_transactions(timeout_s)
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise TransactionError(f"cannot start Kafka transactions: {exc.args[0]}") from exc
        self._open = True

    def commit_transaction(self, points: dict[PartitionKey, CommitPoint], group: object) -> None:
        offsets = _offsets(points)
        try:
            self._producer.send_offsets_to_transaction(offsets, group, self._timeout_s)
            self._commit_with_retries()
            self._producer.begin_transaction()
        except KafkaException as exc:
            self._abort_quietly()
            raise TransactionError(f"transaction failed and was aborted: {exc.args[0]}") from exc

    def close(self) -> None:
        self._abort_quietly()

    def _commit_with_retries(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                self._producer.commit_transaction(self._timeout_s)
                return
            except KafkaException as exc:
                error = exc.args[0]
                retriable = isinstance(error, KafkaError) and error.retriable()
                if not retriable or attempt == attempts - 1:
                    raise

    def _abort_quietly(self) -> None:
        try:
            self._producer.abort_transaction(10)
        except KafkaException as exc:
            log.warning("could not abort the open transaction: %s", exc.args[0])


@contextmanager
def settings_refusals_as_config_errors() -> Iterator[None]:
    """A client librdkafka will not create (an unknown property, a bad value, an unreadable
    certificate) is a settings problem: one line, not a traceback."""
    try:
        yield
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else exc
        raise ConfigError(f"the Kafka client refused its settings: {reason}") from None


def check_topics(config: dict[str, Any], topics: list[str], timeout_s: float = 15.0) -> None:
    """Fail fast, with one clear line, when the broker is unreachable, refuses the credentials
    or the TLS handshake, or a topic is missing."""
    seen: list[KafkaError] = []
    settings = {key: value for key, value in config.items() if key != "stats_cb"}
    with settings_refusals_as_config_errors():
        probe = Producer({**settings, "error_cb": seen.append})
    servers = config.get("bootstrap.servers")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            metadata = probe.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            probe.poll(0)  # serves error_cb: authentication and TLS failures arrive there
            refused = next((e for e in seen if e.code() in _REFUSALS), None)
            if refused is not None:
                auth = refused.code() == KafkaError._AUTHENTICATION
                reason = "authentication failed" if auth else "TLS handshake failed"
                raise ConfigError(f"Kafka at {servers}: {reason}: {refused.str()}") from None
            if time.monotonic() >= deadline:
                raise ConfigError(f"cannot reach Kafka at {servers}: {exc.args[0]}") from None
    missing = [topic for topic in topics if topic not in metadata.topics]
    if missing:
        raise ConfigError(f"Kafka topics do not exist: {', '.join(missing)}")


_REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})


_PRODUCER_MAX_DEFAULT = 1_000_000  # librdkafka's message.max.bytes


def largest_record(config: dict[str, Any], topic: str, timeout_s: float = 10.0) -> int | None:
    """The biggest record `topic` takes: its `max.message.bytes`, or the producer's own
    `message.max.bytes` when that is smaller; None when the broker does not say."""
    settings = {key: value for key, value in config.items() if key != "stats_cb"}
    producer_max = int(config.get("message.max.bytes", _PRODUCER_MAX_DEFAULT))
    admin = AdminClient(settings)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result()
        topic_max = int(entries["max.message.bytes"].value)
    except (KafkaException, KeyError, ValueError, TypeError) as exc:
        log.warning("could not read %s's max.message.bytes: %s", topic, exc)
        return None
    return min(topic_max, producer_max)
