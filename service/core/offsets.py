"""Tracks which consumed offsets are finished, per partition, and where it is safe to commit.

An offset is finished when its outcome is known and every record published for it (the
result, and the dead-letter record when there is one) has been acknowledged by the broker;
the publisher says so through the partition's `progress` handle. The commit position of a
partition is the first unfinished offset, or one past the last consumed offset when all are
finished, no matter in which order work completes. Pure.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass(slots=True, eq=False)
class PartitionProgress:
    """One partition's consumed offsets while it is assigned. A revoked or lost partition's
    progress is dropped, so a late acknowledgement for it finishes nothing in its successor."""

    tp: TopicPartition
    order: deque[int] = field(default_factory=deque)  # consumed, unfinished or not yet passed
    done: set[int] = field(default_factory=set)  # finished, behind an unfinished offset
    next_position: int | None = None
    committed: int | None = None
    last_consumed: int = -1

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


class OffsetTracker:
    """Per-partition unfinished work and commit positions."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, PartitionProgress] = {}

    def assign(self, tp: TopicPartition) -> None:
        self._partitions.setdefault(tp, PartitionProgress(tp))

    def forget(self, tp: TopicPartition) -> None:
        """The partition was revoked or lost: stop tracking it; late acks are ignored."""
        self._partitions.pop(tp, None)

    def consumed(self, tp: TopicPartition, offset: int) -> bool:
        """An event was read; it is unfinished until its progress handle finishes it. False
        for an offset at or below one already read in this assignment: the client handed it
        over again (librdkafka can, around pause, resume and seek), and it must not be worked
        on twice (a second result, in exactly_once a duplicate)."""
        state = self._partitions.get(tp)
        if state is None:
            state = self._partitions[tp] = PartitionProgress(tp)
        if offset <= state.last_consumed:
            return False
        state.last_consumed = offset
        if not state.order and state.next_position is None:
            state.next_position = offset
        state.order.append(offset)
        return True

    def progress(self, tp: TopicPartition) -> PartitionProgress | None:
        """The partition's current progress, to finish offsets on later (None: not tracked)."""
        return self._partitions.get(tp)

    def commit_positions(self, *, only_changed: bool = True) -> dict[TopicPartition, int]:
        """Positions to commit (next offset to read), for partitions that moved since the last."""
        positions: dict[TopicPartition, int] = {}
        for tp, state in self._partitions.items():
            position = state.next_position
            if position is None or (only_changed and position == state.committed):
                continue
            positions[tp] = position
        return positions

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

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        for tp, position in positions.items():
            state = self._partitions.get(tp)
            if state is not None:
                state.committed = position

    def unfinished(self, tp: TopicPartition | None = None) -> int:
        """How many consumed events are not finished (in one partition, or in all)."""
        if tp is not None:
            state = self._partitions.get(tp)
            return state.unfinished() if state else 0
        return sum(state.unfinished() for state in self._partitions.values())

    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)
