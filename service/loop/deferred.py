"""Inputs a batch deferred, waiting to be sent again as batches of their own.

An input HubSpot keeps failing transiently leaves its batch (service/loop/caller.py), so the
rest of that batch and its ids go on; the loop sends it again once its backoff is due. Its id
stays in flight in the batcher meanwhile, so its newer events keep waiting behind it (per-id
order). Owned and used by the loop's thread only.
"""

from __future__ import annotations

from service.core.model import Batch
from service.core.offsets import TopicPartition


class DeferredBatches:
    """Batches to send again, each with the time it is due."""

    def __init__(self) -> None:
        self._waiting: list[tuple[float, Batch]] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def add(self, due: float, batch: Batch) -> None:
        self._waiting.append((due, batch))

    def take_due(
        self, now: float, room: int, partitions: set[TopicPartition] | None = None
    ) -> list[Batch]:
        """Up to `room` batches that are due (with events of `partitions`; None: any)."""
        taken: list[Batch] = []
        waiting: list[tuple[float, Batch]] = []
        for due, batch in self._waiting:
            wanted = partitions is None or batch.touches(partitions)
            if len(taken) < room and due <= now and wanted:
                taken.append(batch)
            else:
                waiting.append((due, batch))
        self._waiting = waiting
        return taken

    def drop(self, partitions: set[TopicPartition]) -> list[Batch]:
        """Forget the batches with events of `partitions` (they leave); returns them."""
        dropped = [batch for _, batch in self._waiting if batch.touches(partitions)]
        self._waiting = [(due, b) for due, b in self._waiting if not b.touches(partitions)]
        return dropped

    def touching(self, partitions: set[TopicPartition]) -> bool:
        return any(batch.touches(partitions) for _, batch in self._waiting)
