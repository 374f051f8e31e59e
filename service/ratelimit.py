"""A client-side limiter for HubSpot's rolling request window. Pure apart from a lock.

Each request reserves a slot: at most `max_requests` slots fall in any `interval_s`.
`observe` adapts the budget from HubSpot's `X-HubSpot-RateLimit-*` headers at run time:
`-Max` and `-Interval-Milliseconds` replace the configured budget, and `-Remaining`
(which counts the whole app, every replica sharing the token) caps what this process
may still send in the current window, so replicas slow down together.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from service.clock import Clock


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    max_requests: int | None
    remaining: int | None
    interval_s: float | None
    daily: int | None
    daily_remaining: int | None


def read_headers(headers: Mapping[str, str]) -> RateLimitHeaders:
    """HubSpot's rate-limit headers, each None when absent or unreadable."""
    interval_ms = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    return RateLimitHeaders(
        max_requests=_int(headers.get("x-hubspot-ratelimit-max")),
        remaining=_int(headers.get("x-hubspot-ratelimit-remaining")),
        interval_s=interval_ms / 1000 if interval_ms else None,
        daily=_int(headers.get("x-hubspot-ratelimit-daily")),
        daily_remaining=_int(headers.get("x-hubspot-ratelimit-daily-remaining")),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class RateLimiter:
    """Hands out send times so no rolling window holds more than the budget."""

    def __init__(self, max_requests: int, interval_s: float, clock: Clock) -> None:
        self._max = max_requests
        self._interval = interval_s
        self._clock = clock
        self._slots: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    @property
    def budget(self) -> tuple[int, float]:
        return self._max, self._interval

    def reserve(self) -> float:
        """Reserve the next slot; returns seconds to wait before sending (0 when free now)."""
        with self._lock:
            now = self._clock.monotonic()
            self._forget_before(now - self._interval)
            start = max(now, self._blocked_until)
            if len(self._slots) >= self._max:
                start = max(start, self._slots[-self._max] + self._interval)
            self._slots.append(start)
            return start - now

    def observe(self, headers: RateLimitHeaders, sent_at: float) -> None:
        """Adopt the server's budget; when the app has little left, hold off new slots."""
        with self._lock:
            if headers.max_requests and headers.max_requests > 0:
                self._max = headers.max_requests
            if headers.interval_s and headers.interval_s > 0:
                self._interval = headers.interval_s
            if headers.remaining is not None and headers.remaining <= 0:
                self._block(sent_at + self._interval)

    def back_off(self, seconds: float) -> None:
        """A 429 said the window is full: send nothing for `seconds`."""
        with self._lock:
            self._block(self._clock.monotonic() + seconds)

    def _block(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)

    def _forget_before(self, horizon: float) -> None:
        while self._slots and self._slots[0] < horizon:
            self._slots.popleft()
