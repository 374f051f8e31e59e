"""How finished work is made durable: plain offset commits, or Kafka transactions.

- at_least_once: the consumer commits positions whose outcomes the broker acknowledged.
Both carry, in each commit's metadata, the offsets finished past its position
(service/core/commit_metadata.py), so the partition's next owner does not redo them.
- exactly_once: outcomes are produced in offset order inside a transaction; committing
  flushes the producer, then sends the positions to the transaction with the consumer's
  group metadata (fencing zombies) and commits it, so a `read_committed` reader sees each
  input offset's result exactly once.
Errors raise ServiceError subclasses; the pipeline decides what they mean.
"""

from __future__ import annotations

from typing import Protocol

from service.core.commit_metadata import DEFAULT_MAX_BYTES
from service.core.errors import CommitError
from service.core.offsets import CommitPoint, OffsetTracker, TopicPartition
from service.core.ports import EventSource, TransactionalSink


class Committer(Protocol):
    exactly_once: bool

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommitPoint]:
        """Make finished work durable; returns what was committed."""
        ...


class OffsetCommitter:
    """at_least_once: commit the acknowledged positions through the consumer."""

    exactly_once = False

    def __init__(self, source: EventSource, max_metadata_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._source = source
        self._max_metadata_bytes = max_metadata_bytes

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommitPoint]:
        points = _selected(tracker.commit_points(self._max_metadata_bytes), only)
        if points:
            self._source.commit(points)
            tracker.mark_committed(points)
        return points


class TransactionCommitter:
    """exactly_once: commit records and positions together in one Kafka transaction."""

    exactly_once = True

    def __init__(
        self,
        source: EventSource,
        sink: TransactionalSink,
        flush_timeout_s: float,
        max_metadata_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._source = source
        self._sink = sink
        self._flush_timeout_s = flush_timeout_s
        self._max_metadata_bytes = max_metadata_bytes

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommitPoint]:
        unacknowledged = self._sink.flush(self._flush_timeout_s)
        if unacknowledged:
            # Their offsets are not finished yet, but committing would make the records
            # visible: after a crash before the next commit they would be produced again.
            raise CommitError(
                f"{unacknowledged} records not acknowledged within "
                f"{self._flush_timeout_s:.0f} s; the transaction commits next time"
            )
        points = tracker.commit_points(self._max_metadata_bytes)
        if points:
            self._sink.commit_transaction(points, self._source.group_metadata())
            tracker.mark_committed(points)
        return points


def _selected(
    points: dict[TopicPartition, CommitPoint], only: set[TopicPartition] | None
) -> dict[TopicPartition, CommitPoint]:
    if only is None:
        return points
    return {tp: point for tp, point in points.items() if tp in only}
