"""`python -m service redrive`: send dead letters back to the input topic.

Composition-root level: reads the settings (the same as `run`, security included) and uses
confluent-kafka directly. Reads KAFKA_DLQ_TOPIC with its own consumer group from the group's
committed position up to the end offsets present at start, keeps the records that match the
filters, and republishes them to KAFKA_INPUT_TOPIC with their original key, value and
headers (the `error.*` and `source.*` block the dead letter appended is removed) plus a
`redrive.count` header, to the input partition each came from. A dead letter whose value
was cut to fit the dead-letter topic (`dlq.truncated`) is sent with its original value,
read back from the input topic at its source position while retention keeps it (checked
against the recorded sha256); one whose original is gone is skipped and counted. Records
already redriven `max_redrives` times are skipped, which stops loops. Progress is committed
only after the producer has delivered everything, so a second run resends nothing;
`--dry-run` lists what would be sent and commits nothing. SIGTERM or SIGINT (a Kubernetes
Job's pod being stopped) ends the reading: what was sent is delivered and committed, the run
exits 0, and the next run carries on from there.
"""

from __future__ import annotations

import hashlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from service.adapters.kafka import producer_config, settings_refusals_as_config_errors
from service.core.errors import ConfigError, ServiceError
from service.core.records import (
    DEAD_LETTER_HEADERS,
    HTTP_STATUS_HEADER,
    ORIGINAL_SHA256_HEADER,
    TRUNCATED_HEADERS,
)
from service.entry.kafka_clients import kafka_common_config
from service.entry.settings import Settings

REDRIVE_COUNT = "redrive.count"
STATUSES = ("failed", "invalid")
DEFAULT_MAX_REDRIVES = 3
_ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks


@dataclass(frozen=True)
class RedriveOptions:
    """What to select and how: the command line's options."""

    categories: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    max_redrives: int = DEFAULT_MAX_REDRIVES
    dry_run: bool = False
    group: str | None = None
    idle_timeout_s: float = 30.0


@dataclass
class Summary:
    sent: int = 0
    skipped_by_filter: int = 0
    skipped_by_loop_guard: int = 0
    skipped_original_gone: int = 0
    stopped: bool = False
    lines: list[str] = field(default_factory=list)

    def line(self, *, dry_run: bool) -> str:
        verb = "would send" if dry_run else "sent"
        stopped = "; stopped by a signal, the next run carries on" if self.stopped else ""
        return (
            f"redrive: {verb} {self.sent}, skipped by filter {self.skipped_by_filter}, "
            f"skipped by loop guard {self.skipped_by_loop_guard}, "
            f"skipped as cut with the original gone {self.skipped_original_gone}"
            f"{stopped}"
        )


def parse_instant(text: str) -> datetime:
    """An ISO 8601 timestamp; without a zone it is taken as UTC."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not an ISO 8601 timestamp: {text!r}") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | None:
    for key, value in reversed(headers):
        if key == name:
            return (value or b"").decode("utf-8", errors="replace")
    return None


def redrive_count(headers: Sequence[tuple[str, bytes | None]]) -> int:
    text = _header(headers, REDRIVE_COUNT)
    try:
        return max(0, int(text)) if text is not None else 0
    except ValueError:
        return 0


def republished_headers(
    headers: Sequence[tuple[str, bytes | None]],
) -> list[tuple[str, str | bytes]]:
    """The event's own headers (without the block the dead letter appended, and without
    earlier redrives' counts), and the new count."""
    count = redrive_count(headers)
    kept: list[tuple[str, str | bytes]] = [
        (key, value or b"")
        for key, value in _before_dead_letter_block(headers)
        if key != REDRIVE_COUNT
    ]
    kept.append((REDRIVE_COUNT, str(count + 1).encode()))
    return kept


def _before_dead_letter_block(
    headers: Sequence[tuple[str, bytes | None]],
) -> Sequence[tuple[str, bytes | None]]:
    """The headers before the trailing ones `dead_letter` (and `cut_to_fit`) appended: an
    event's own `error.*` or `source.*` headers stay."""
    names = [key for key, _ in headers]
    if tuple(names[-len(TRUNCATED_HEADERS) :]) == TRUNCATED_HEADERS:
        headers = headers[: -len(TRUNCATED_HEADERS)]
        names = names[: -len(TRUNCATED_HEADERS)]
    size = len(DEAD_LETTER_HEADERS)
    for trailing in ([HTTP_STATUS_HEADER], []):
        end = len(names) - len(trailing)
        if (
            end >= size
            and names[end:] == trailing
            and tuple(names[end - size : end]) == DEAD_LETTER_HEADERS
        ):
            return headers[: end - size]
    return headers


def source_partition(
    headers: Sequence[tuple[str, bytes | None]], input_topic: str, partitions: int
) -> int | None:
    """The input partition the event came from, when it is still one of the input topic's:
    sent back there, it stays in its id's partition (whatever partitioner the upstream used),
    so no two members hold events of one id. None: let the partitioner place it."""
    if _header(headers, "source.topic") != input_topic:
        return None
    text = _header(headers, "source.partition")
    if text is None or not text.isdigit() or int(text) >= partitions:
        return None
    return int(text)


def selected(
    headers: Sequence[tuple[str, bytes | None]], timestamp_ms: int | None, options: RedriveOptions
) -> bool:
    if options.categories and _header(headers, "error.category") not in options.categories:
        return False
    if options.statuses and _header(headers, "error.status") not in options.statuses:
        return False
    if options.since is None and options.until is None:
        return True
    if timestamp_ms is None:
        return False
    instant = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    if options.since is not None and instant < options.since:
        return False
    return options.until is None or instant < options.until


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` (only the main thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def redrive(
    settings: Settings,
    options: RedriveOptions,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
) -> int:
    """Run one redrive pass; prints one line per record (dry run or loop guard) and a summary.
    Reading ends early when `stop` is set (by SIGTERM or SIGINT when none is given)."""
    stop = stop or threading.Event()
    with _stopped_by_signals(stop):
        return _redrive(settings, options, out, stop)


def _redrive(
    settings: Settings, options: RedriveOptions, out: TextIO, stop: threading.Event
) -> int:
    common = kafka_common_config(settings, "subscription-upserter-redrive")
    group = options.group or f"{settings.kafka_group_id}-redrive"
    with settings_refusals_as_config_errors():
        consumer = Consumer(
            {
                **common,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
    try:
        ranges = _ranges(consumer, settings.kafka_dlq_topic, settings.kafka_input_topic)
        summary = Summary()
        with settings_refusals_as_config_errors():
            producer = None if options.dry_run else Producer(producer_config(common))
        failures: list[str] = []

        input_partitions = _partition_count(consumer, settings.kafka_input_topic)

        originals = Originals(common)

        def send(message: Message, value: bytes | None) -> None:
            headers = list(message.headers() or [])
            partition = source_partition(headers, settings.kafka_input_topic, input_partitions)
            assert producer is not None
            while True:
                try:
                    producer.produce(
                        settings.kafka_input_topic,
                        key=message.key(),
                        value=value,
                        partition=_ANY_PARTITION if partition is None else partition,
                        headers=republished_headers(headers),
                        on_delivery=lambda error, _: failures.append(str(error)) if error else None,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.1)
            producer.poll(0)

        reader = _Reader(options, summary, send, originals, out)
        try:
            positions = _read(consumer, settings.kafka_dlq_topic, ranges, reader, stop)
        finally:
            originals.close()
        if producer is not None:
            remaining = producer.flush(60)
            if remaining or failures:
                reason = failures[0] if failures else f"{remaining} records not delivered"
                raise ServiceError(f"redrive stopped, nothing committed: {reason}")
            commits = [
                TopicPartition(settings.kafka_dlq_topic, partition, offset)
                for partition, offset in positions.items()
            ]
            if commits:
                consumer.commit(offsets=commits, asynchronous=False)
        print(summary.line(dry_run=options.dry_run), file=out)
        return 0
    except KafkaException as exc:
        raise ServiceError(f"redrive failed: {exc.args[0]}") from None
    finally:
        consumer.close()


def _ranges(consumer: Consumer, dlq: str, input_topic: str) -> dict[int, tuple[int, int]]:
    """For each DLQ partition with something to read: (start, end) at the time of the call."""
    try:
        metadata = consumer.list_topics(timeout=15)
    except KafkaException as exc:
        raise ConfigError(f"cannot reach Kafka: {exc.args[0]}") from None
    missing = [topic for topic in (dlq, input_topic) if topic not in metadata.topics]
    if missing:
        raise ConfigError(f"Kafka topics do not exist: {', '.join(missing)}")
    partitions = sorted(metadata.topics[dlq].partitions)
    committed = _committed(consumer, [TopicPartition(dlq, p) for p in partitions])
    ranges: dict[int, tuple[int, int]] = {}
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(dlq, tp.partition), timeout=15)
        start = tp.offset if tp.offset >= 0 else low
        start = max(start, low)
        if start < high:
            ranges[tp.partition] = (start, high)
    return ranges


def _partition_count(consumer: Consumer, topic: str) -> int:
    return len(consumer.list_topics(topic, timeout=15).topics[topic].partitions)


def _committed(
    consumer: Consumer, partitions: list[TopicPartition], timeout_s: float = 30.0
) -> list[TopicPartition]:
    """The group's committed offsets, waiting out a coordinator that is still being elected."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            error = exc.args[0]
            retriable = isinstance(error, KafkaError) and (
                error.retriable()
                or error.code()
                in {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS}
            )
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _read(
    consumer: Consumer,
    dlq: str,
    ranges: dict[int, tuple[int, int]],
    reader: _Reader,
    stop: threading.Event,
) -> dict[int, int]:
    """Process every record in `ranges` (until `stop` is set); returns the next offset to
    commit per partition."""
    positions = {partition: start for partition, (start, _) in ranges.items()}
    if not ranges:
        return positions
    consumer.assign([TopicPartition(dlq, p, start) for p, (start, _) in ranges.items()])
    pending = set(ranges)
    last_progress = time.monotonic()
    while pending and not stop.is_set():
        if time.monotonic() - last_progress > reader.options.idle_timeout_s:
            raise ServiceError(
                f"redrive stopped, nothing committed: no progress on {dlq} partitions "
                f"{sorted(pending)} for {reader.options.idle_timeout_s:.0f}s"
            )
        message = consumer.poll(0.5)
        if message is None:
            continue
        partition = message.partition() or 0
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if partition in pending and (message.offset() or 0) >= ranges[partition][1]:
                    pending.discard(partition)
                continue
            if error.fatal():
                raise KafkaException(error)
            continue
        offset = message.offset() or 0
        if partition not in pending or offset >= ranges[partition][1]:
            pending.discard(partition)
            continue
        last_progress = time.monotonic()
        reader.handle(message)
        positions[partition] = offset + 1
        if offset + 1 >= ranges[partition][1]:
            pending.discard(partition)
    reader.summary.stopped = bool(pending)
    return positions


@dataclass
class _Reader:
    """What redrive does with each dead letter it reads."""

    options: RedriveOptions
    summary: Summary
    send: Callable[[Message, bytes | None], None]
    originals: Originals
    out: TextIO

    def handle(self, message: Message) -> None:
        headers = list(message.headers() or [])
        _, timestamp = message.timestamp()
        if not selected(headers, timestamp if timestamp > 0 else None, self.options):
            self.summary.skipped_by_filter += 1
            return
        where = f"{message.partition()}/{message.offset()}"
        key = (message.key() or b"").decode("utf-8", errors="replace")
        category = _header(headers, "error.category") or "-"
        count = redrive_count(headers)
        if count >= self.options.max_redrives:
            self.summary.skipped_by_loop_guard += 1
            print(
                f"skip {where} key={key!r} {category}: already redriven {count} times "
                f"(--max-redrives {self.options.max_redrives})",
                file=self.out,
            )
            return
        value = self._value(message, headers, f"{where} key={key!r} {category}")
        if value is _GONE:
            return
        self.summary.sent += 1
        if self.options.dry_run:
            reason = (_header(headers, "error.message") or "").replace("\n", " ")[:200]
            print(f"would send {where} key={key!r} {category}: {reason}", file=self.out)
            return
        self.send(message, value if isinstance(value, bytes) else None)

    def _value(
        self, message: Message, headers: Sequence[tuple[str, bytes | None]], what: str
    ) -> bytes | object | None:
        """The value to send: the dead letter's, or for one cut to fit, the original's."""
        if _header(headers, TRUNCATED_HEADERS[0]) is None:
            return message.value()
        original = self.originals.fetch(headers)
        if original is None:
            self.summary.skipped_original_gone += 1
            print(
                f"skip {what}: its value was cut to fit the dead-letter topic and the "
                "original is no longer in the input topic",
                file=self.out,
            )
            return _GONE
        return original


_GONE = object()


class Originals:
    """Reads an event back from the input topic at its source position (for a dead letter
    whose value was cut to fit), checking it against the sha256 the dead letter recorded."""

    def __init__(self, common: dict[str, Any]) -> None:
        self._common = common
        self._consumer: Consumer | None = None

    def fetch(self, headers: Sequence[tuple[str, bytes | None]]) -> bytes | None:
        topic = _header(headers, "source.topic")
        partition, offset = _header(headers, "source.partition"), _header(headers, "source.offset")
        digest = _header(headers, ORIGINAL_SHA256_HEADER)
        if not (topic and partition and offset and digest):
            return None
        if not (partition.isdigit() and offset.isdigit()):
            return None
        value = self._read(topic, int(partition), int(offset))
        if value is None or hashlib.sha256(value).hexdigest() != digest:
            return None
        return value

    def _read(self, topic: str, partition: int, offset: int) -> bytes | None:
        consumer = self._reader()
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + _ORIGINAL_TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if message.offset() == offset:
                return message.value()
            return None  # the offset is gone: the consumer started at a later one
        return None

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    **self._common,
                    "group.id": "subscription-upserter-redrive-originals",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                }
            )
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


_ORIGINAL_TIMEOUT_S = 15.0
