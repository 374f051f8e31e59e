"""Polling a source the same way on either backend, and a rebalance listener that records."""

from __future__ import annotations

import time
from collections.abc import Callable

from service.core.model import RawMessage
from service.core.offsets import TopicPartition
from service.core.ports import EventSource

POLL_TIMEOUT_S = 0.2


class RecordingListener:
    """Records the rebalance callbacks in order, and the partitions held after each."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[TopicPartition]]] = []
        self.held: set[TopicPartition] = set()

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assigned", sorted(partitions)))
        self.held |= set(partitions)

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("revoked", sorted(partitions)))
        self.held -= set(partitions)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("lost", sorted(partitions)))
        self.held -= set(partitions)


def poll_until(
    source: EventSource, done: Callable[[list[RawMessage]], bool], patience_s: float
) -> list[RawMessage]:
    """Poll until `done(everything handed over so far)`; fails after `patience_s`."""
    seen: list[RawMessage] = []
    deadline = time.monotonic() + patience_s
    while not done(seen):
        assert time.monotonic() < deadline, f"still waiting after {patience_s} s; got {seen}"
        seen += source.poll(500, POLL_TIMEOUT_S)
    return seen


def poll_for(source: EventSource, seconds: float) -> list[RawMessage]:
    """Everything the source hands over while it is polled for `seconds` (at least once)."""
    seen = source.poll(500, POLL_TIMEOUT_S)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen += source.poll(500, POLL_TIMEOUT_S)
    return seen


def by_partition(messages: list[RawMessage]) -> dict[int, list[int]]:
    """The offsets handed over, per partition, in the order they came."""
    offsets: dict[int, list[int]] = {}
    for message in messages:
        offsets.setdefault(message.partition, []).append(message.offset)
    return offsets


def count(n: int) -> Callable[[list[RawMessage]], bool]:
    return lambda seen: len(seen) >= n
