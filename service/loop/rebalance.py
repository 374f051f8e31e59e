"""What happens when partitions come and go: the consumer group's rebalance callbacks.

- Assigned: the partitions are tracked from the group's commit, whose metadata names the
  offsets past it that their previous owner finished (those are not worked on again).
- Revoked (a rebalance hands them to another member, or the consumer closes): every event
  consumed from them is finished first, in per-id order (what is buffered or held back is
  sent, in-flight batches complete, results are acknowledged), within the rebalance timeout,
  and then committed: a routine deploy or scale event repeats nothing. Work that cannot
  finish in time (HubSpot failing, a rate-limit, daily or credentials hold) is handed over:
  its batches send none of those events any more, a request on the wire gets a bound to
  end, and the commit records what did finish past the position, for the next owner.
- Lost (the session timed out: another member may already own them): nothing is waited for
  or committed; in exactly_once mode the service stops (its transaction holds their records).

Runs inside the consumer's poll, on the loop's thread; the loop itself (service/loop/
pipeline.py) does the work through the PartitionWork interface.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from service.core.clock import Clock
from service.core.errors import ServiceError, TransactionError
from service.core.offsets import CommitPoint, TopicPartition
from service.core.ports import EventSource

log = logging.getLogger(__name__)

WIRE_GRACE_S = 5.0  # beyond HubSpot's request timeout, for a reply being read


class PartitionWork(Protocol):
    """What the loop does for partitions that come and go."""

    def take_in(
        self, partitions: list[TopicPartition], committed: dict[TopicPartition, CommitPoint]
    ) -> None:
        """Start tracking `partitions` from the group's commits."""
        ...

    def finish(self, partitions: set[TopicPartition] | None, deadline: float) -> bool:
        """Send and deliver every consumed event of `partitions` (None: all) until `deadline`;
        True when all of it is finished."""
        ...

    def drop_waiting(self, partitions: set[TopicPartition]) -> None:
        """Forget the events of `partitions` not yet sent (their next owner reads them again)."""
        ...

    def hand_over(self, partitions: set[TopicPartition], wait_s: float) -> None:
        """Batches in flight send nothing of `partitions` any more; wait up to `wait_s` for a
        request of theirs on the wire to end."""
        ...

    def commit(self, only: set[TopicPartition] | None = None, *, last: bool = False) -> None: ...

    def let_go(self, partitions: set[TopicPartition]) -> None:
        """Stop tracking `partitions`: late acknowledgements finish nothing any more."""
        ...

    def fail(self, error: ServiceError) -> None: ...


@dataclass(frozen=True, slots=True)
class RebalanceConfig:
    rebalance_timeout_s: float = 60.0  # to finish revoked partitions' events
    request_timeout_s: float = 30.0  # HubSpot's: how long a request may stay on the wire
    exactly_once: bool = False


class Rebalance:
    """The consumer group's rebalance listener."""

    def __init__(
        self,
        work: PartitionWork,
        source: EventSource,
        clock: Clock,
        config: RebalanceConfig,
        hard_stop: threading.Event,
    ) -> None:
        self._work, self._source, self._clock = work, source, clock
        self._config, self._hard_stop = config, hard_stop

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", partitions)
        committed = self._source.committed(partitions) if partitions else {}
        inherited = {tp: point for tp, point in committed.items() if point.metadata}
        if inherited:
            log.info("commits of %s record events finished past them", sorted(inherited))
        self._work.take_in(partitions, committed)

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked: %s; finishing their events", partitions)
        revoked = set(partitions)
        # Past the drain deadline (closing) nothing more is waited for.
        deadline = self._clock.monotonic() + self._config.rebalance_timeout_s
        if self._hard_stop.is_set() or not self._work.finish(revoked, deadline):
            self._work.drop_waiting(revoked)
            self._work.hand_over(revoked, self._config.request_timeout_s + WIRE_GRACE_S)
        self._work.commit(only=revoked, last=True)
        self._work.let_go(revoked)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost: %s; their work will not be committed", partitions)
        if self._config.exactly_once:
            self._work.fail(TransactionError("partitions lost in exactly_once mode; restarting"))
        lost = set(partitions)
        self._work.drop_waiting(lost)
        self._work.hand_over(lost, 0.0)  # another member may already have them: no waiting
        self._work.let_go(lost)
