"""Tracks which consumed offsets are finished, per partition, and where it is safe to commit.

An offset is finished when its outcome is known and every record published for it (the
result, and the dead-letter record when there is one) has been acknowledged by the broker;
the publisher says so through the partition's `progress` handle. The commit position of a
partition is the first unfinished offset, or one past the last consumed offset when all are
finished, no matter in which order work completes. A commit also carries the offsets
finished past its position (service/core/commit_metadata.py); a partition assigned with such
a commit starts with those offsets `inherited`: reading one again, it is finished at once and
worked on no more (its result is already published). Pure.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from service.core import commit_metadata

TopicPartition = tuple[str, int]

# What `OffsetTracker.consumed` says of an offset read.
REDELIVERED: Final = 0  # at or below one already read in this assignment: skip it
NEW: Final = 1  # to be worked on
DONE_BEFORE: Final = 2  # finished by the partition's previous owner (commit metadata): skip it


class CommitPoint(NamedTuple):
    """A commit: the next offset to read, and the offsets finished past it (encoded)."""

    offset: int
    metadata: str = ""


@dataclass(slots=True, eq=False)
class PartitionProgress:
    """One partition's consumed offsets while it is assigned. A revoked or lost partition's
    progress is dropped, so a late acknowledgement for it finishes nothing in its successor."""

    tp: TopicPartition
    order: deque[int] = field(default_factory=deque)  # consumed, unfinished or not yet passed
    done: set[int] = field(default_factory=set)  # finished, behind an unfinished offset
    next_position: int | None = None
    committed: int | None = None
    committed_metadata: str = ""
    last_consumed: int = -1
    inherited: set[int] = field(default_factory=set)  # finished by the previous owner

    def finish(self, offset: int) -> None:
        order = self.order
        if not order or offset < order[0]:
            return  # not tracked (or already passed)
        if offset != order[0]:
            self.done.add(offset)
            return
        order.popleft()
        done, last = self.done, offset
        while order and order[0] in done:
            last = order.popleft()
            done.discard(last)
        self.next_position = order[0] if order else last + 1

    def unfinished(self) -> int:
        return len(self.order) - len(self.done)

    def finished_past(self, position: int) -> list[int]:
        """Offsets past `position` that are finished: here, or by the previous owner."""
        return [*self.done, *(offset for offset in self.inherited if offset > position)]


class OffsetTracker:
    """Per-partition unfinished work and commit positions."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, PartitionProgress] = {}

    def assign(self, tp: TopicPartition, committed: CommitPoint | None = None) -> None:
        """Track a partition; `committed`: the group's commit it starts from, whose metadata
        names offsets past it that its previous owner finished."""
        state = self._partitions.setdefault(tp, PartitionProgress(tp))
        if committed is not None and committed.offset >= 0:
            state.inherited = commit_metadata.decode(committed.offset, committed.metadata)

    def forget(self, tp: TopicPartition) -> None:
        """The partition was revoked or lost: stop tracking it; late acks are ignored."""
        self._partitions.pop(tp, None)

    def consumed(self, tp: TopicPartition, offset: int) -> int:
        """An event was read: NEW, unfinished until its progress handle finishes it;
        REDELIVERED for an offset at or below one already read in this assignment (the client
        handed it over again: librdkafka can, around pause, resume and seek; it must not be
        worked on twice); DONE_BEFORE for one the previous owner finished (finished now)."""
        state = self._partitions.get(tp)
        if state is None:
            state = self._partitions[tp] = PartitionProgress(tp)
        if offset <= state.last_consumed:
            return REDELIVERED
        state.last_consumed = offset
        if not state.order and state.next_position is None:
            state.next_position = offset
        state.order.append(offset)
        inherited = state.inherited
        if inherited and offset in inherited:
            inherited.discard(offset)
            state.finish(offset)
            return DONE_BEFORE
        return NEW

    def unconsume(self, tp: TopicPartition, offset: int) -> None:
        """Take back the last offset `consumed` took as NEW: its event was not worked on, and
        the partition is read again from it (sought back: the Schema Registry could not give
        its schema). Its commit position stays where it was, or becomes `offset` when nothing
        was tracked before: everything before `offset` is finished either way."""
        state = self._partitions.get(tp)
        if state is None or not state.order or state.order[-1] != offset:
            return
        state.order.pop()
        state.last_consumed = offset - 1

    def progress(self, tp: TopicPartition) -> PartitionProgress | None:
        """The partition's current progress, to finish offsets on later (None: not tracked)."""
        return self._partitions.get(tp)

    def commit_points(
        self, max_metadata_bytes: int = commit_metadata.DEFAULT_MAX_BYTES
    ) -> dict[TopicPartition, CommitPoint]:
        """What to commit, for partitions whose position or finished offsets past it changed
        since the last commit."""
        points: dict[TopicPartition, CommitPoint] = {}
        for tp, state in self._partitions.items():
            position = state.next_position
            if position is None:
                continue
            finished = state.finished_past(position)
            metadata = (
                commit_metadata.encode(position, finished, max_metadata_bytes) if finished else ""
            )
            if position != state.committed or metadata != state.committed_metadata:
                points[tp] = CommitPoint(position, metadata)
        return points

    def caught_up(self) -> list[TopicPartition]:
        """Partitions with nothing unfinished: everything the consumer gave them is done."""
        return [tp for tp, state in self._partitions.items() if not state.order]

    def advance(self, positions: dict[TopicPartition, int]) -> None:
        """Move caught-up partitions to the consumer's position, which is past what it never
        hands over (transaction markers, aborted records): else their commit stays one short
        of the end, and an idle partition reads lag 1 for good."""
        for tp, position in positions.items():
            state = self._partitions.get(tp)
            if state is None or state.order or position < 0:
                continue
            if state.next_position is None or position > state.next_position:
                state.next_position = position

    def committed_positions(self) -> dict[TopicPartition, int]:
        """The positions last committed by this member, for the partitions it tracks."""
        return {
            tp: state.committed
            for tp, state in self._partitions.items()
            if state.committed is not None
        }

    def mark_committed(self, points: dict[TopicPartition, CommitPoint]) -> None:
        for tp, point in points.items():
            state = self._partitions.get(tp)
            if state is not None:
                state.committed, state.committed_metadata = point

    def unfinished(self, tp: TopicPartition | None = None) -> int:
        """How many consumed events are not finished (in one partition, or in all)."""
        if tp is not None:
            state = self._partitions.get(tp)
            return state.unfinished() if state else 0
        return sum(state.unfinished() for state in self._partitions.values())

    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)
