"""Tracks which consumed offsets are finished, per partition, and where it is safe to commit.

An offset is finished when its outcome is known and every record published for it (the
result, and the dead-letter record when there is one) has been acknowledged by the broker.
The commit position of a partition is the first unfinished offset, or one past the last
consumed offset when all are finished, no matter in which order work completes. Pure.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]

# One outstanding unit stands for "outcome not known yet"; it is traded for the number of
# records published once the outcome is known.
_OUTCOME_PENDING = 1


@dataclass(slots=True)
class _PartitionState:
    order: deque[int] = field(default_factory=deque)
    outstanding: dict[int, int] = field(default_factory=dict)
    next_position: int | None = None
    committed: int | None = None

    def advance(self) -> None:
        while self.order and self.outstanding[self.order[0]] == 0:
            offset = self.order.popleft()
            del self.outstanding[offset]
            self.next_position = offset + 1


class OffsetTracker:
    """Per-partition outstanding work and commit positions."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _PartitionState] = {}

    def assign(self, tp: TopicPartition) -> None:
        self._partitions.setdefault(tp, _PartitionState())

    def forget(self, tp: TopicPartition) -> None:
        """The partition was revoked or lost: stop tracking it; late acks are ignored."""
        self._partitions.pop(tp, None)

    def consumed(self, tp: TopicPartition, offset: int) -> None:
        """An event was read; it is unfinished until its outcome is delivered."""
        state = self._partitions.get(tp)
        if state is None:
            state = self._partitions[tp] = _PartitionState()
        if not state.order and state.next_position is None:
            state.next_position = offset
        state.order.append(offset)
        state.outstanding[offset] = _OUTCOME_PENDING

    def outcome_published(self, tp: TopicPartition, offset: int, records: int) -> None:
        """The event's outcome is known and `records` records were handed to the producer."""
        self._adjust(tp, offset, records - _OUTCOME_PENDING)

    def delivered(self, tp: TopicPartition, offset: int) -> None:
        """The broker acknowledged one record published for this event."""
        self._adjust(tp, offset, -1)

    def commit_positions(self, *, only_changed: bool = True) -> dict[TopicPartition, int]:
        """Positions to commit (next offset to read), for partitions that moved since the last."""
        positions: dict[TopicPartition, int] = {}
        for tp, state in self._partitions.items():
            position = state.next_position
            if position is None or (only_changed and position == state.committed):
                continue
            positions[tp] = position
        return positions

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        for tp, position in positions.items():
            state = self._partitions.get(tp)
            if state is not None:
                state.committed = position

    def unfinished(self, tp: TopicPartition | None = None) -> int:
        """How many consumed events are not finished (in one partition, or in all)."""
        if tp is not None:
            state = self._partitions.get(tp)
            return len(state.order) if state else 0
        return sum(len(state.order) for state in self._partitions.values())

    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)

    def _adjust(self, tp: TopicPartition, offset: int, delta: int) -> None:
        state = self._partitions.get(tp)
        if state is None or offset not in state.outstanding:
            return
        state.outstanding[offset] += delta
        if state.outstanding[offset] == 0 and state.order[0] == offset:
            state.advance()
