"""Releases per-partition outcomes in offset order. Pure.

In exactly-once mode an outcome may be published only when every earlier offset of its
partition has been published, so that the records inside a transaction are exactly those
of the offsets it commits. Out-of-order completions wait here until the gap closes.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from service.core.offsets import TopicPartition

Payload = TypeVar("Payload")


class InOrderRelease(Generic[Payload]):
    """Holds payloads by (partition, offset) and hands back the contiguous prefix."""

    def __init__(self) -> None:
        self._order: dict[TopicPartition, deque[int]] = {}
        self._waiting: dict[TopicPartition, dict[int, Payload]] = {}

    def consumed(self, tp: TopicPartition, offset: int) -> None:
        self._order.setdefault(tp, deque()).append(offset)

    def ready(self, tp: TopicPartition, offset: int, payload: Payload) -> list[Payload]:
        """Record a finished offset; returns every payload that may now be published, in order."""
        order = self._order.get(tp)
        if order is None:
            return []
        waiting = self._waiting.setdefault(tp, {})
        waiting[offset] = payload
        released: list[Payload] = []
        while order and order[0] in waiting:
            released.append(waiting.pop(order.popleft()))
        return released

    def held(self) -> int:
        return sum(len(waiting) for waiting in self._waiting.values())

    def tracks(self, tp: TopicPartition) -> bool:
        return tp in self._order

    def forget(self, tp: TopicPartition) -> list[Payload]:
        """Stop tracking the partition; returns the payloads that were waiting (dropped)."""
        self._order.pop(tp, None)
        return list(self._waiting.pop(tp, {}).values())
