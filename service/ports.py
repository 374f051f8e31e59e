"""The small interfaces the pipeline needs from the outside world; adapters implement them.

The pipeline imports only these Protocols, never confluent-kafka or httpx, so the loop can
be driven by in-memory fakes in unit tests and by the real adapters in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from service.model import RawMessage
from service.offsets import TopicPartition
from service.records import OutboundRecord
from service.responses import HttpReply


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

    def commit(self, positions: dict[TopicPartition, int]) -> None: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

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

    def publish(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None: ...

    def poll(self, timeout_s: float) -> None: ...

    def flush(self, timeout_s: float) -> int: ...

    def close(self) -> None: ...


class TransactionalSink(RecordSink, Protocol):
    """A sink whose records and the consumer's offsets are committed in one transaction."""

    def commit_transaction(self, positions: dict[TopicPartition, int], group: object) -> None:
        """Commit the open transaction with `positions`, then open the next one."""
        ...


class UpsertTransport(Protocol):
    """One HTTP POST of a batch upsert body; transport failures raise TransientHubSpotError."""

    def post(self, body: bytes) -> HttpReply: ...

    def close(self) -> None: ...
