"""The small interfaces the loop needs from the outside world; adapters implement them.

The loop imports only these Protocols, never confluent-kafka, httpx, prometheus_client or
OpenTelemetry, so it can be driven by in-memory fakes in unit tests and by the real adapters
in production: the event source and record sink (Kafka), the decoder of the registry formats
(the Schema Registry), the upsert transport (HubSpot over HTTP), the metrics it updates
(Prometheus, service/adapters/prometheus.py) and the spans it opens (OpenTelemetry,
service/adapters/tracing/; service/core/tracing.py when tracing is off).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Protocol

from service.core.model import Batch, BatchOutcome, RawMessage, Rejection, TraceHeaders
from service.core.offsets import CommitPoint, TopicPartition
from service.core.records import OutboundRecord
from service.core.responses import HttpReply


class DeliveryCallback(Protocol):
    """Called once per published record: `error` is None when the broker acknowledged it, else
    the error (its str() says what went wrong); `record` is the sink's view of the record."""

    def __call__(self, error: object | None, record: object = None, /) -> None: ...


class RebalanceListener(Protocol):
    def on_assigned(self, partitions: list[TopicPartition]) -> None: ...

    def on_revoked(self, partitions: list[TopicPartition]) -> None: ...

    def on_lost(self, partitions: list[TopicPartition]) -> None: ...


class EventSource(Protocol):
    """The input topic, read as a consumer group member."""

    def subscribe(self, listener: RebalanceListener) -> None: ...

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]: ...

    def commit(self, points: dict[TopicPartition, CommitPoint]) -> None: ...

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, CommitPoint]:
        """The group's committed offsets (with their metadata) of `partitions`; those it
        could not read are left out."""
        ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Hand over the partition's messages again from `offset` (an assigned partition);
        what was fetched past it is dropped. Raises ServiceError when the client refuses."""
        ...

    def positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The consumer's position per partition: the next offset it would hand over, past
        transaction markers and aborted records (negative when unknown)."""
        ...

    def lag(self, committed: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Messages from each partition's committed position to its end, as last reported:
        from `committed` where given (the service's own commits, which in exactly_once mode
        the consumer never sees), else from the group's committed offset, else from the
        partition's start."""
        ...

    def partition_count(self) -> int:
        """How many partitions the input topic has (0 when unknown)."""
        ...

    def group_metadata(self) -> object:
        """The consumer group metadata that fences zombie producers in a transaction."""
        ...

    def close(self) -> None: ...


class RecordSink(Protocol):
    """The output and dead-letter topics."""

    def publish(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        """Hand `record` to the broker; `on_delivery` is called once with the outcome (at
        once when the client refuses it, e.g. for its size)."""
        ...

    def too_large(self, error: object) -> bool:
        """Whether a delivery error means the record is bigger than the topic takes."""
        ...

    def poll(self, timeout_s: float) -> None: ...

    def flush(self, timeout_s: float) -> int: ...

    def close(self) -> None: ...


class TransactionalSink(RecordSink, Protocol):
    """A sink whose records and the consumer's offsets are committed in one transaction."""

    def commit_transaction(self, points: dict[TopicPartition, CommitPoint], group: object) -> None:
        """Commit the open transaction with the offsets `points`, then open the next one."""
        ...


class EventDecoder(Protocol):
    """Reads a record's value into plain Python data: dicts, lists, text, numbers, booleans,
    None, and `Decimal`, `datetime` and `date` for the formats' decimal and time types.

    Raises UnreadableEventError (its category says why) for a record it cannot read, and
    SchemaRegistryUnavailableError when the registry cannot give the record's schema for now
    (the record must be read again later, not marked)."""

    def decode(self, raw: RawMessage) -> object: ...


class UpsertTransport(Protocol):
    """One HTTP POST to HubSpot: of a batch upsert body, or to another path of the CRM API
    (`path` from the API root, e.g. `/crm/v3/objects/contacts/batch/read`); transport
    failures raise TransientHubSpotError."""

    def post(self, body: bytes, path: str | None = None) -> HttpReply: ...

    def close(self) -> None: ...


# -- metrics: what the loop updates; service/adapters/prometheus.py defines and exports them --


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...

    def labels(self, *values: str) -> Counter: ...


class Gauge(Protocol):
    def set(self, value: float) -> None: ...

    def labels(self, *values: str) -> Gauge: ...


class Histogram(Protocol):
    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        """`exemplar`: labels (a trace id) that one observation of a bucket may carry."""
        ...


class BulkHistogram(Protocol):
    """Takes a whole batch of observations at once (one per event of a batch)."""

    def observe_many(self, values: Iterable[float]) -> None: ...


class ReportedGauge(Protocol):
    """A value someone else reports (HubSpot's budget): exported only while it holds."""

    def set(self, value: float, valid_for_s: float = ...) -> None: ...


class Readiness(Protocol):
    """Readiness as a gauge: ready, or one bounded word saying why not."""

    def set(self, reason: str) -> None: ...


class Metrics(Protocol):
    """The metrics the loop updates, by role; names and help texts live in the adapter."""

    # events
    events_consumed: Counter
    events_skipped: Counter  # by reason: redelivered, finished_before
    results: Counter  # by status
    dead_letters: Counter  # by status, category
    coalesced_events: Counter
    merged_inputs_split: Counter
    dropped_properties: Counter
    dead_letters_truncated: Counter
    end_to_end_seconds: BulkHistogram
    # SKIP_UNCHANGED
    skipped_inputs: Counter
    skipped_properties: Counter
    skip_cache_ids: Gauge
    skip_cache_lookups: Counter  # by result: hit, miss
    skip_cache_evictions: Counter  # by reason: capacity, expired
    # HubSpot
    batch_inputs: Histogram
    requests: Counter  # by status class, outcome
    request_seconds: Histogram
    retries: Counter  # by reason
    rate_limited: Counter  # by policy
    associations: Counter  # by status: associated, skipped, failed
    association_requests: Counter  # by operation (read, associate), outcome
    association_cache: Counter  # by result: hit, miss
    auth_failures: Counter  # by status
    ratelimit_remaining: ReportedGauge
    ratelimit_max: ReportedGauge
    daily_remaining: ReportedGauge
    daily_limit: ReportedGauge
    # work in progress
    in_flight_batches: Gauge
    buffered_events: Gauge
    buffered_bytes: Gauge
    ready: Readiness
    delivery_errors: Counter
    # the Schema Registry
    schema_registry_unavailable: Counter
    registry_paused_partitions: Gauge
    # Kafka
    paused_partitions: Gauge
    consumer_lag: Gauge  # by topic, partition
    committed_offset: Gauge  # by topic, partition
    last_commit_timestamp: Gauge  # by topic, partition
    commits: Counter  # by outcome

    def forget_partition(self, tp: TopicPartition) -> None:
        """The partition left this member: drop its per-partition series."""
        ...


# -- tracing: the spans the loop opens; names and attributes live in the adapter ---------------


class RequestSpan(Protocol):
    """One HTTP attempt of a batch's request loop; the current span of its thread while open."""

    def __enter__(self) -> RequestSpan: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def replied(self, status: int) -> None:
        """HubSpot answered with HTTP `status`."""
        ...

    def failed(self, error: BaseException) -> None:
        """The attempt got no reply (`error`: the transport's failure, no secret in it)."""
        ...

    def exemplar(self) -> dict[str, str] | None:
        """The exemplar labels of this attempt's duration (None: not sampled, or off)."""
        ...

    def headers(self) -> TraceHeaders:
        """Its trace context, as the records of the outcomes its reply decides carry it."""
        ...


class BatchSpan(Protocol):
    """One batch's run on a worker thread; the current span of that thread while open."""

    def __enter__(self) -> BatchSpan: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def request(self, inputs: int, waited_s: float) -> RequestSpan:
        """The next HTTP attempt, of `inputs` inputs, sent after `waited_s` seconds of waiting
        for a rate-limit slot."""
        ...

    def finished(self, outcome: BatchOutcome) -> None:
        """What the batch came to (counts, not contents)."""
        ...

    def headers(self) -> TraceHeaders: ...


class Tracing(Protocol):
    """Where the loop's spans come from."""

    def batch(self, batch: Batch) -> BatchSpan:
        """A span for `batch`, following from its events' producers (their Kafka headers)."""
        ...

    def rejected(self, rejection: Rejection) -> TraceHeaders:
        """A span (started and ended) for an event that could not be read; its context."""
        ...
