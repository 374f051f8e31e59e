"""When and how the loop's finished work is committed.

Every commit interval, and when partitions leave (then a failure is retried once at once:
nobody would retry it later). Partitions with nothing unfinished commit at the consumer's
position (past transaction markers), once everything it handed over is tracked. A commit
that fails for good is returned as the error that stops the loop: in exactly_once mode the
open transaction holds the records of partitions that leave, so a failed last commit stops
the service (the restart aborts the transaction).
"""

from __future__ import annotations

import logging

from service.core.clock import Clock
from service.core.errors import CommitError, ServiceError, TransactionError
from service.core.offsets import CommitPoint, OffsetTracker, TopicPartition
from service.core.ports import EventSource, Metrics
from service.loop.commit import Committer

log = logging.getLogger(__name__)


class Checkpoint:
    def __init__(
        self,
        *,
        committer: Committer,
        tracker: OffsetTracker,
        source: EventSource,
        metrics: Metrics,
        clock: Clock,
        interval_s: float,
    ) -> None:
        self._committer, self._tracker, self._source = committer, tracker, source
        self._metrics, self._clock, self._interval_s = metrics, clock, interval_s
        self._next = 0.0

    @property
    def exactly_once(self) -> bool:
        return self._committer.exactly_once

    def due(self) -> bool:
        """True once per commit interval."""
        now = self._clock.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval_s
        return True

    def commit(
        self, only: set[TopicPartition] | None, *, last: bool, positions_trusted: bool
    ) -> ServiceError | None:
        """Commit finished work (of `only`; None: all); the error that must stop the loop, if
        any. `positions_trusted`: the consumer's positions may stand in for caught-up
        partitions (everything it handed over is tracked)."""
        if positions_trusted:
            self._advance_caught_up()
        for attempt in range(2 if last else 1):
            try:
                points = self._committer.commit(self._tracker, only)
            except CommitError as exc:
                self._metrics.commits.labels("failed").inc()
                log.warning("commit failed (%s); %s", exc, _after_failed_commit(last, attempt))
                continue
            except ServiceError as exc:
                self._metrics.commits.labels("failed").inc()
                log.error("commit failed: %s", exc)
                return exc
            if points:
                self._report(points)
            return None
        if last and self._committer.exactly_once:  # the open transaction holds their records
            return TransactionError(
                "could not commit before partitions left; restarting aborts the transaction "
                "(their next owner redoes the events)"
            )
        return None

    def _advance_caught_up(self) -> None:
        caught_up = self._tracker.caught_up()
        if caught_up:
            self._tracker.advance(self._source.positions(caught_up))

    def _report(self, points: dict[TopicPartition, CommitPoint]) -> None:
        self._metrics.commits.labels("ok").inc()
        wall = self._clock.wall()
        for (topic, partition), point in points.items():
            self._metrics.committed_offset.labels(topic, str(partition)).set(point.offset)
            self._metrics.last_commit_timestamp.labels(topic, str(partition)).set(wall)


def _after_failed_commit(last: bool, attempt: int) -> str:
    if not last:
        return "will retry"
    if attempt == 0:
        return "retrying once before the partitions leave"
    return "the partitions' next owner redoes their events since the last commit (duplicates)"
