"""Backoff for transient HubSpot failures: capped exponential with full jitter. Pure."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """`delay(attempt)` is uniform in [0, min(cap, base * 2**attempt)], never below `floor`."""

    base_s: float = 1.0
    cap_s: float = 30.0
    rand: Callable[[], float] = random.random

    def delay(self, attempt: int, floor_s: float = 0.0) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 30))
        return max(floor_s, ceiling * self.rand())
