"""How finished work is made durable: plain offset commits, or Kafka transactions.

- at_least_once: the consumer commits positions whose outcomes the broker acknowledged.
- exactly_once: outcomes are produced in offset order inside a transaction; committing
  flushes the producer, then sends the positions to the transaction with the consumer's
  group metadata (fencing zombies) and commits it, so a `read_committed` reader sees each
  input offset's result exactly once.
Errors raise ServiceError subclasses; the pipeline decides what they mean.
"""

from __future__ import annotations

from typing import Protocol

from service.core.errors import CommitError
from service.core.offsets import OffsetTracker, TopicPartition
from service.core.ports import EventSource, TransactionalSink


class Committer(Protocol):
    exactly_once: bool

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """Make finished work durable; returns the positions committed."""
        ...


class OffsetCommitter:
    """at_least_once: commit the acknowledged positions through the consumer."""

    exactly_once = False

    def __init__(self, source: EventSource) -> None:
        self._source = source

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        positions = _selected(tracker.commit_positions(), only)
        if positions:
            self._source.commit(positions)
            tracker.mark_committed(positions)
        return positions


class TransactionCommitter:
    """exactly_once: commit records and positions together in one Kafka transaction."""

    exactly_once = True

    def __init__(
        self, source: EventSource, sink: TransactionalSink, flush_timeout_s: float
    ) -> None:
        self._source = source
        self._sink = sink
        self._flush_timeout_s = flush_timeout_s

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        unacknowledged = self._sink.flush(self._flush_timeout_s)
        if unacknowledged:
            # Their offsets are not finished yet, but committing would make the records
            # visible: after a crash before the next commit they would be produced again.
            raise CommitError(
                f"{unacknowledged} records not acknowledged within "
                f"{self._flush_timeout_s:.0f} s; the transaction commits next time"
            )
        positions = tracker.commit_positions()
        if positions:
            self._sink.commit_transaction(positions, self._source.group_metadata())
            tracker.mark_committed(positions)
        return positions


def _selected(
    positions: dict[TopicPartition, int], only: set[TopicPartition] | None
) -> dict[TopicPartition, int]:
    if only is None:
        return positions
    return {tp: position for tp, position in positions.items() if tp in only}
