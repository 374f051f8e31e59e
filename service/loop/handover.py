"""Partitions handed over while a batch holding their events was still running. Thread-safe.

When a partition is revoked and its batch in flight does not finish within the rebalance
timeout (HubSpot failing, a rate-limit or daily hold), the partition goes to another member,
which reads the events again from the last commit and upserts them, and then newer ones for
the same ids. A late request of the old batch would write the older values over those, so:
- no request of that batch sends the handed-over inputs any more (they get no outcome here;
  their next owner gives them their results), and
- the member waits, up to a bound, for a request already on the wire to end before it lets
  the partition go.
An input counts as handed over when every event it carries belongs to handed-over
partitions (an input whose id spans an owned partition too is still this member's to send).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from service.core.model import Batch, BatchInput
from service.core.offsets import TopicPartition

log = logging.getLogger(__name__)


class Handover:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._handed_over: dict[int, set[TopicPartition]] = {}  # by batch seq
        self._on_the_wire: set[int] = set()

    def hand_over(
        self, partitions: set[TopicPartition], seqs: Iterable[int], wait_s: float
    ) -> bool:
        """From now on the batches `seqs` send nothing of `partitions`. Waits up to `wait_s`
        for their requests on the wire to end; True when none is left on the wire."""
        pending = set(seqs)
        with self._changed:
            for seq in pending:
                self._handed_over.setdefault(seq, set()).update(partitions)
            return self._changed.wait_for(
                lambda: self._on_the_wire.isdisjoint(pending), timeout=wait_s
            )

    def keep(self, seq: int, inputs: list[BatchInput]) -> tuple[list[BatchInput], list[BatchInput]]:
        """The inputs still this member's to send, and those handed over."""
        with self._changed:
            gone = self._handed_over.get(seq)
            if not gone:
                return inputs, []
            kept: list[BatchInput] = []
            dropped: list[BatchInput] = []
            for item in inputs:
                (dropped if _all_in(item, gone) else kept).append(item)
        return kept, dropped

    @contextmanager
    def on_the_wire(self, seq: int, inputs: list[BatchInput]) -> Iterator[bool]:
        """Around a request: yields False (send nothing) if an input was handed over since it
        was last checked; otherwise the request counts as on the wire until the block ends."""
        with self._changed:
            gone = self._handed_over.get(seq)
            if gone and any(_all_in(item, gone) for item in inputs):
                allowed = False
            else:
                allowed = True
                self._on_the_wire.add(seq)
        try:
            yield allowed
        finally:
            if allowed:
                with self._changed:
                    self._on_the_wire.discard(seq)
                    self._changed.notify_all()

    def finished(self, seq: int) -> None:
        """The batch came back to the loop: forget it."""
        with self._changed:
            self._handed_over.pop(seq, None)


def hand_over_running(
    handover: Handover, running: list[Batch], partitions: set[TopicPartition], wait_s: float
) -> None:
    """Batches still running with events of `partitions` send none of them any more, and a
    request of theirs on the wire gets up to `wait_s` to end: the partitions' next owner
    redoes those events, and an older write must not land after its newer ones."""
    seqs = [batch.seq for batch in running if batch.touches(partitions)]
    if not seqs:
        return
    log.warning(
        "partitions %s handed over with batches %s unfinished: those send none of their "
        "events any more; the partitions' next owner redoes them",
        sorted(partitions),
        seqs,
    )
    if not handover.hand_over(partitions, seqs, wait_s) and wait_s > 0:
        log.error(
            "a request of batches %s was still on the wire after %.0f s; it may land after "
            "the next owner's writes for the same ids",
            seqs,
            wait_s,
        )


def _all_in(item: BatchInput, partitions: set[TopicPartition]) -> bool:
    return all((event.raw.topic, event.raw.partition) in partitions for event in item.events)
