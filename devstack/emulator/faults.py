"""Which fault, if any, strikes the next request to a HubSpot endpoint.

Owns the deterministic queue ("the next N requests get fault X", optionally only requests
of one operation such as "upsert"), the random draw from the configured per-kind
probabilities, and content rules ("any upsert with an input whose hs_name is poison-1 gets
500"). A fault is a kind (an HTTP status such as "503", or "timeout": hold the request then
answer 504, or "drop": close the connection without an answer) and a moment: "before"
processing (nothing stored) or "after" (stored, then the error: the client cannot know the
outcome). It picks faults; `flow` carries them out.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from devstack.emulator.config import FaultWhen
from devstack.emulator.configcheck import FAULT_KINDS
from devstack.emulator.objectconfig import ContentFault

# The operations a queued fault may be limited to (see flow.Operation and app).
OPERATIONS = ("upsert", "read", "create", "associate_default", "associate", "read_associations")


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
        self._queue: deque[tuple[Fault, str | None]] = deque()
        self._lock = threading.Lock()

    def queue(
        self, kind: str, count: int = 1, when: str = "before", operation: str | None = None
    ) -> None:
        """The next `count` requests (of `operation` only, when given) get fault `kind`."""
        fault = make_fault(kind, when)
        if count < 1:
            raise ValueError("count must be at least 1")
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; known: {list(OPERATIONS)}")
        with self._lock:
            self._queue.extend([(fault, operation)] * count)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_queued_json(fault, operation) for fault, operation in self._queue]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def next(
        self, rates: Mapping[str, float], when: FaultWhen, operation: str = "upsert"
    ) -> Fault | None:
        """The fault for the `operation` request being handled now, or None."""
        with self._lock:
            for position, (fault, only) in enumerate(self._queue):
                if only is None or only == operation:
                    del self._queue[position]
                    return fault
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


def content_fault(rules: Sequence[ContentFault], object_type: str, raw: bytes) -> Fault | None:
    """The fault of the first rule an input of this upsert body matches, or None (a body
    that is not a batch matches nothing: processing answers it)."""
    try:
        inputs = orjson.loads(raw).get("inputs")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(inputs, list):
        return None
    for rule in rules:
        if rule.object_type in (None, object_type) and any(_matches(rule, i) for i in inputs):
            return Fault(rule.fault_kind(), rule.when)
    return None


def _matches(rule: ContentFault, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    properties = item.get("properties")
    if isinstance(properties, dict) and properties.get(rule.property) == rule.equals:
        return True
    return item.get("idProperty") == rule.property and item.get("id") == rule.equals


def _queued_json(fault: Fault, operation: str | None) -> dict[str, Any]:
    found = fault.to_json()
    if operation is not None:
        found["operation"] = operation
    return found


def make_fault(kind: str, when: str) -> Fault:
    """A validated Fault; raises ValueError naming the allowed values."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; known: {list(FAULT_KINDS)}")
    if when == "before":
        return Fault(kind, "before")
    if when == "after":
        return Fault(kind, "after")
    raise ValueError(f"when must be 'before' or 'after', not {when!r}")
