"""A small pool of daemon threads that run batches through the HubSpot caller.

Daemon threads, not concurrent.futures: a worker stuck in a long wait must never keep the
process alive after the drain timeout. Finished work is collected by the main loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from service.core.model import Batch, BatchOutcome


@dataclass(frozen=True, slots=True)
class Finished:
    batch: Batch
    outcome: BatchOutcome | None
    error: BaseException | None


class Workers:
    """Runs `work(batch)` on up to `count` threads; results come back through `finished`."""

    def __init__(self, count: int, work: Callable[[Batch], BatchOutcome]) -> None:
        self._work = work
        self._tasks: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"upsert-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()
        self._running: dict[int, Batch] = {}  # by seq; read and written by the loop only

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def running(self) -> list[Batch]:
        """The batches submitted and not yet collected."""
        return list(self._running.values())

    def submit(self, batch: Batch) -> None:
        self._running[batch.seq] = batch
        self._tasks.put(batch)

    def finished(self, wait_s: float = 0.0) -> list[Finished]:
        """Everything finished so far; waits up to `wait_s` for the first one. (The loop asks
        every turn: no exception is raised when nothing finished, which costs.)"""
        done = self._done
        results: list[Finished] = []
        if done.empty():
            if wait_s <= 0:
                return results
            try:
                results.append(done.get(timeout=wait_s))
            except queue.Empty:
                return results
        while not done.empty():  # the loop is the only reader: a get cannot block here
            results.append(done.get_nowait())
        for item in results:
            self._running.pop(item.batch.seq, None)
        return results

    def stop(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)

    def _loop(self) -> None:
        while (batch := self._tasks.get()) is not None:
            try:
                self._done.put(Finished(batch, self._work(batch), None))
            except BaseException as exc:  # handed to the main loop
                self._done.put(Finished(batch, None, exc))
