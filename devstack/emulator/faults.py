"""Which fault, if any, strikes the next upsert request.

Owns the deterministic queue ("the next N requests get fault X") and the random draw from
the configured per-kind probabilities. A fault is a kind (an HTTP status such as "503", or
"timeout": hold the request then answer 504, or "drop": close the connection without an
answer) and a moment: "before" processing (nothing stored) or "after" (stored, then the
error: the client cannot know the outcome). It picks faults; `app` carries them out.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.emulator.config import FAULT_KINDS, FaultWhen


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault to apply to one request."""

    kind: str
    when: FaultWhen

    @property
    def status(self) -> int | None:
        """The HTTP status answered (504 for a timeout; None for a dropped connection)."""
        if self.kind == "drop":
            return None
        if self.kind == "timeout":
            return 504
        return int(self.kind)

    def to_json(self) -> dict[str, Any]:
        return {"fault": self.kind, "when": self.when}


class FaultPlan:
    """Queued faults first, then a random draw. Thread-safe."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def queue(self, kind: str, count: int = 1, when: str = "before") -> None:
        """The next `count` requests get fault `kind`, applied `when`."""
        fault = make_fault(kind, when)
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.extend([fault] * count)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._queue]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def next(self, rates: Mapping[str, float], when: FaultWhen) -> Fault | None:
        """The fault for the request being handled now, or None."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self._draw(rates, when)

    def _draw(self, rates: Mapping[str, float], when: FaultWhen) -> Fault | None:
        if not rates:
            return None
        roll = self._rng.random()
        for kind, probability in rates.items():
            if roll < probability:
                return Fault(kind, when)
            roll -= probability
        return None


def make_fault(kind: str, when: str) -> Fault:
    """A validated Fault; raises ValueError naming the allowed values."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; known: {list(FAULT_KINDS)}")
    if when == "before":
        return Fault(kind, "before")
    if when == "after":
        return Fault(kind, "after")
    raise ValueError(f"when must be 'before' or 'after', not {when!r}")
