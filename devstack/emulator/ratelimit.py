"""HubSpot's two request budgets: a rolling burst window per token and a daily account count.

Owns the counting only; it never sleeps and never reads the time itself: every method takes
its time from an injected `Clock`, so tests drive it with a fake clock. The caller decides
which requests count (every request not answered 429). Limits are passed on each call, so a
run-time config change takes effect on the next request without losing the counts.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devstack.emulator.clock import Clock

UNLIMITED_HEADER_VALUE = 2_147_483_647


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget's state after a decision: `limit`/`remaining` are None when unlimited."""

    allowed: bool
    limit: int | None
    remaining: int | None
    retry_after_s: float = 0.0


class RollingWindow:
    """Per-key rolling window: at most `limit` counted requests in any `interval_s`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._peak: dict[str, int] = {}
        self._lock = threading.Lock()

    def peek(self, key: str, limit: int | None, interval_s: float) -> Budget:
        """Would a request be allowed now? Counts nothing."""
        with self._lock:
            hits = self._purged(key, interval_s)
            return self._budget(hits, limit, interval_s, allowed=_has_room(len(hits), limit))

    def acquire(self, key: str, limit: int | None, interval_s: float) -> Budget:
        """Count a request if there is room; the budget says whether it was allowed."""
        with self._lock:
            hits = self._purged(key, interval_s)
            if limit is not None and len(hits) >= limit:
                return self._budget(hits, limit, interval_s, allowed=False)
            return self._count(key, hits, limit, interval_s)

    def record(self, key: str, limit: int | None, interval_s: float) -> Budget:
        """Count a request unconditionally (one answered without a rate check, e.g. a 401)."""
        with self._lock:
            return self._count(key, self._purged(key, interval_s), limit, interval_s)

    def usage(self, interval_s: float) -> dict[str, int]:
        """Requests counted in the current window, per key."""
        with self._lock:
            return {key: len(self._purged(key, interval_s)) for key in list(self._hits)}

    def peaks(self) -> dict[str, int]:
        """The most requests ever counted inside one window, per key."""
        with self._lock:
            return dict(self._peak)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
            self._peak.clear()

    def _purged(self, key: str, interval_s: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        horizon = self._clock.monotonic() - interval_s
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits

    def _count(self, key: str, hits: deque[float], limit: int | None, interval_s: float) -> Budget:
        hits.append(self._clock.monotonic())
        self._peak[key] = max(self._peak.get(key, 0), len(hits))
        return self._budget(hits, limit, interval_s, allowed=True)

    def _budget(
        self, hits: deque[float], limit: int | None, interval_s: float, *, allowed: bool
    ) -> Budget:
        if limit is None:
            return Budget(allowed=True, limit=None, remaining=None)
        remaining = max(0, limit - len(hits))
        retry = 0.0
        if remaining == 0 and hits:
            retry = max(0.0, hits[0] + interval_s - self._clock.monotonic())
        return Budget(allowed=allowed, limit=limit, remaining=remaining, retry_after_s=retry)


def next_midnight_utc(now: datetime) -> datetime:
    """The first 00:00 UTC strictly after `now`."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


class DailyCounter:
    """Requests counted since the last daily reset (shared by every token of the account)."""

    def __init__(self, clock: Clock, reset_at: datetime | None = None) -> None:
        self._clock = clock
        self._used = 0
        self._reset_at = reset_at or next_midnight_utc(clock.now())
        self._lock = threading.Lock()

    @property
    def reset_at(self) -> datetime:
        return self._reset_at

    @property
    def used(self) -> int:
        with self._lock:
            self._roll()
            return self._used

    def peek(self, limit: int | None) -> Budget:
        with self._lock:
            self._roll()
            return self._budget(limit, allowed=_has_room(self._used, limit))

    def acquire(self, limit: int | None) -> Budget:
        """Count a request if the daily budget allows it."""
        with self._lock:
            self._roll()
            if not _has_room(self._used, limit):
                return self._budget(limit, allowed=False)
            self._used += 1
            return self._budget(limit, allowed=True)

    def reset(self, next_reset_at: datetime | None = None) -> None:
        """Start a new day now; the next automatic reset is `next_reset_at` or midnight UTC."""
        with self._lock:
            self._used = 0
            self._reset_at = next_reset_at or next_midnight_utc(self._clock.now())

    def reschedule(self, next_reset_at: datetime | None) -> None:
        """Move the next automatic reset (None: next midnight UTC); keeps today's count."""
        with self._lock:
            self._reset_at = next_reset_at or next_midnight_utc(self._clock.now())

    def _roll(self) -> None:
        now = self._clock.now()
        if now < self._reset_at:
            return
        self._used = 0
        while self._reset_at <= now:
            self._reset_at += timedelta(days=1)

    def _budget(self, limit: int | None, *, allowed: bool) -> Budget:
        if limit is None:
            return Budget(allowed=True, limit=None, remaining=None)
        seconds_left = (self._reset_at - self._clock.now()).total_seconds()
        return Budget(
            allowed=allowed,
            limit=limit,
            remaining=max(0, limit - self._used),
            retry_after_s=max(0.0, seconds_left),
        )


def _has_room(used: int, limit: int | None) -> bool:
    return limit is None or used < limit


def retry_after_header(seconds: float) -> str:
    """`Retry-After` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
