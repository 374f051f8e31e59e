"""Partitions parked while the Schema Registry cannot give a record's schema.

When a record of a registry format cannot be decoded because the registry is unreachable
(or answers 5xx, or refuses the credentials), nothing is marked for it: its partition is
parked at that record. The consumer is sought back to the record's offset (what it fetched
past it is dropped and fetched again later, so nothing is skipped or reordered) and the
partition is paused; the loop drops the partition's messages still in hand. Readiness
reports `schema_registry` with the reason. Every retry interval (1 s, doubling to 30 s) the
loop reads one parked record again; once that works (the registry answers, whatever it says
of the record) every parked partition is released: sought to its parked offset again and
resumed (unless backpressure holds all consumption paused: then its resume brings them
back), and readiness is restored. Other partitions go on meanwhile: records whose schemas
the client has cached decode while the registry is down. A partition that leaves the
assignment is forgotten (its next owner reads it from the last commit). Runs on the loop's
thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from service.core.clock import Clock
from service.core.errors import SchemaRegistryUnavailableError
from service.core.health import Health
from service.core.model import RawMessage
from service.core.offsets import TopicPartition
from service.core.ports import EventSource, Metrics

log = logging.getLogger(__name__)

SCHEMA_REGISTRY_BLOCK = "schema_registry"
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0


class Parking:
    """The parked partitions, each with the record it waits on."""

    def __init__(
        self,
        source: EventSource,
        read: Callable[[RawMessage], object],
        clock: Clock,
        health: Health,
        metrics: Metrics,
    ) -> None:
        self._source, self._read, self._clock = source, read, clock
        self._health, self._metrics = health, metrics
        self._parked: dict[TopicPartition, RawMessage] = {}
        self._wait_s = FIRST_RETRY_S
        self._next_try = 0.0

    @property
    def partitions(self) -> frozenset[TopicPartition]:
        return frozenset(self._parked)

    def holds(self, tp: TopicPartition) -> bool:
        return tp in self._parked

    def park(self, raw: RawMessage, error: SchemaRegistryUnavailableError) -> None:
        """Seek the record's partition back to it and pause it (ServiceError if the client
        refuses: the loop must stop rather than skip the record)."""
        tp = (raw.topic, raw.partition)
        self._source.seek(tp, raw.offset)
        self._source.pause([tp])
        if not self._parked:
            self._wait_s = FIRST_RETRY_S
            self._next_try = self._clock.monotonic() + self._wait_s
        self._parked[tp] = raw
        self._unavailable(error)
        log.warning(
            "schema registry unavailable (%s): partition %s[%d] paused at offset %d until it "
            "answers",
            error,
            raw.topic,
            raw.partition,
            raw.offset,
        )

    def retry(self) -> dict[TopicPartition, int]:
        """When due, read one parked record again; once that works, every parked partition is
        released: returns them with the offset to seek to (empty: still parked, or none)."""
        if not self._parked or self._clock.monotonic() < self._next_try:
            return {}
        probe = next(iter(self._parked.values()))
        try:
            self._read(probe)
        except SchemaRegistryUnavailableError as exc:
            self._wait_s = min(self._wait_s * 2, MAX_RETRY_S)
            self._next_try = self._clock.monotonic() + self._wait_s
            self._unavailable(exc)
            log.warning(
                "schema registry still unavailable (%s); %d partition(s) paused, next try in "
                "%.0f s",
                exc,
                len(self._parked),
                self._wait_s,
            )
            return {}
        return self._release()

    def forget(self, partitions: set[TopicPartition]) -> None:
        """The partitions left the assignment: not this member's to resume any more."""
        for tp in partitions:
            self._parked.pop(tp, None)
        if not self._parked:
            self._health.unblock(SCHEMA_REGISTRY_BLOCK)
        self._metrics.registry_paused_partitions.set(len(self._parked))

    def _release(self) -> dict[TopicPartition, int]:
        released = {tp: raw.offset for tp, raw in self._parked.items()}
        self._parked.clear()
        self._health.unblock(SCHEMA_REGISTRY_BLOCK)
        self._metrics.registry_paused_partitions.set(0)
        log.info("schema registry answers again; resuming partitions %s", sorted(released))
        return released

    def _unavailable(self, error: SchemaRegistryUnavailableError) -> None:
        self._metrics.schema_registry_unavailable.inc()
        self._metrics.registry_paused_partitions.set(len(self._parked))
        count = len(self._parked)
        self._health.block(
            SCHEMA_REGISTRY_BLOCK, f"unavailable, {count} partition(s) paused: {error}"
        )
