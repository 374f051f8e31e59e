"""exactly_once commits: a transaction commits only once every record in it is acknowledged."""

from __future__ import annotations

import pytest

from service.core.errors import CommitError
from service.core.offsets import CommitPoint, OffsetTracker, TopicPartition
from service.loop.commit import TransactionCommitter
from tests.unit.fake_kafka import FakeSink, FakeSource

TP = ("subscription-events", 0)


class _TransactionalSink(FakeSink):
    def __init__(self, unacknowledged: int) -> None:
        super().__init__()
        self.unacknowledged = unacknowledged
        self.committed: list[dict[TopicPartition, CommitPoint]] = []

    def flush(self, timeout_s: float) -> int:
        return self.unacknowledged

    def commit_transaction(self, points: dict[TopicPartition, CommitPoint], group: object) -> None:
        self.committed.append(points)


def _finished_tracker() -> OffsetTracker:
    tracker = OffsetTracker()
    tracker.consumed(TP, 0)
    progress = tracker.progress(TP)
    assert progress is not None
    progress.finish(0)
    return tracker


def test_records_still_unacknowledged_keep_the_transaction_open() -> None:
    # Committed now, they would be visible while their offsets wait for the next
    # transaction: a crash in between would produce them a second time.
    sink = _TransactionalSink(unacknowledged=2)
    committer = TransactionCommitter(FakeSource([]), sink, flush_timeout_s=1.0)
    with pytest.raises(CommitError, match="2 records not acknowledged"):
        committer.commit(_finished_tracker())
    assert sink.committed == []


def test_with_every_record_acknowledged_the_transaction_commits_its_positions() -> None:
    sink = _TransactionalSink(unacknowledged=0)
    committer = TransactionCommitter(FakeSource([]), sink, flush_timeout_s=1.0)
    assert committer.commit(_finished_tracker()) == {TP: CommitPoint(1)}
    assert sink.committed == [{TP: CommitPoint(1)}]
