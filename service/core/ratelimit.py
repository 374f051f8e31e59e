"""A client-side limiter for HubSpot's rolling request window. Pure apart from a lock.

Each request reserves a slot: at most `max_requests` slots fall in any `interval_s`.
`observe` adapts the budget from HubSpot's `X-HubSpot-RateLimit-*` headers at run time:
`-Max` and `-Interval-Milliseconds` replace the configured budget, and `-Remaining`
(which counts the whole app, every replica sharing the token) caps what this process
may still send in the current window, so replicas slow down together.
"""

from __future__ import annotations

import contextlib
import math
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.core.clock import Clock


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


def seconds_until_midnight(wall_epoch_s: float, zone: ZoneInfo) -> float:
    """Seconds from `wall_epoch_s` to the next midnight in `zone` (HubSpot's daily reset)."""
    moment = datetime.fromtimestamp(wall_epoch_s, tz=zone)
    midnight = datetime.combine(moment.date() + timedelta(days=1), time(0), tzinfo=zone)
    return max(midnight.timestamp() - wall_epoch_s, 0.0)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_PACING_CATCH_UP = 3
_DECAY_PER_REPLY = 0.1
_PROBE_WAIT_S = 0.25


class RateLimiter:
    """Hands out send times so no rolling window holds more than this process's share.

    The share is HubSpot's `-Max` minus an estimate of what other clients of the same app
    (other replicas sharing the token) sent in the window: the server's count
    (`Max - Remaining`) minus this process's own sends. The estimate rises at once and
    decays slowly; while others are active a small margin is kept free so that replicas
    racing for the last slots do not overrun the window. Sends are paced evenly over the
    window (no bursts that empty it for the others), and until the first reply has been
    seen, one request at a time probes the budget.
    """

    def __init__(
        self,
        max_requests: int,
        interval_s: float,
        clock: Clock,
        *,
        guard_s: float = 0.05,
        shared_margin: int = 4,
    ) -> None:
        self._server_max = max_requests
        self._interval = interval_s
        self._clock = clock
        self._guard_s = guard_s
        self._shared_margin = shared_margin
        self._foreign = 0.0
        self._last_reply = 0.0
        self._floor_share = 0.0
        self._observed = False
        self._first_seen = 0.0
        # This process's sends, oldest first, over the last two windows: the current window's
        # slots are its tail, and replies compare their counts with it.
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        # After a hold for a spent daily budget or refused credentials, one thread probes
        # (and resends while its probe meets transient failures); the others wait until a
        # request sent since the hold began is accepted.
        self._hold_started = -math.inf
        self._probing = False
        self._probe_owner: int | None = None
        self._last_slot: dict[int, float] = {}  # by thread: the slot it may give back
        self._lock = threading.Lock()

    @property
    def budget(self) -> tuple[int, float]:
        """This process's current share of requests, and the window length in seconds."""
        return self._capacity(), self._interval

    def try_acquire(self) -> float:
        """Take a slot now and return 0, or return how long to wait before asking again."""
        with self._lock:
            now = self._clock.monotonic()
            me = threading.get_ident()
            if self._probe_owner is not None and self._probe_owner != me:
                return _PROBE_WAIT_S
            window = self._interval + self._guard_s
            sent = self._sent
            in_window = len(sent) - bisect_left(sent, now - window)
            capacity = self._capacity()
            ready_at = self._blocked_until
            if in_window:
                # Even pacing, measured over the last few sends: a send that went late (a
                # thread woke up late) lets the next ones catch up instead of losing its slot.
                back = min(in_window, _PACING_CATCH_UP)
                ready_at = max(ready_at, sent[-back] + back * window / capacity)
            if in_window >= capacity:
                ready_at = max(ready_at, sent[-capacity] + window)
            if now < ready_at:
                return max(ready_at - now, 0.001)
            if self._probing:
                self._probe_owner = me
            sent.append(now)
            self._last_slot[me] = now
            while sent[0] < now - self._interval - window:
                sent.popleft()
            return 0.0

    def give_back(self) -> None:
        """The calling thread sends nothing with the slot it last took: the slot frees."""
        with self._lock:
            slot = self._last_slot.pop(threading.get_ident(), None)
            if slot is not None:
                with contextlib.suppress(ValueError):  # already aged out of the window
                    self._sent.remove(slot)

    def leave_probe(self) -> None:
        """The calling thread has nothing more to send: if it was probing after a hold,
        another thread may probe instead (else every worker would wait for this one)."""
        with self._lock:
            if self._probe_owner == threading.get_ident():
                self._probe_owner = None

    def observe(self, headers: RateLimitHeaders, sent_at: float) -> None:
        """Adopt the server's budget and estimate other clients' share of it."""
        with self._lock:
            if not self._observed:
                self._observed, self._first_seen = True, self._clock.monotonic()
            if headers.max_requests and headers.max_requests > 0:
                self._server_max = headers.max_requests
            if headers.interval_s and headers.interval_s > 0:
                self._interval = headers.interval_s
            if headers.remaining is None:
                return
            now = self._clock.monotonic()
            # HubSpot counted its window when the request arrived, about when it was sent:
            # compare with this process's sends in the window before `sent_at`, not before
            # now (a reply's latency would otherwise count its own recent sends as others').
            sent = self._sent  # in send order: count by bisection, not by a scan
            own = bisect_right(sent, sent_at) - bisect_right(sent, sent_at - self._interval)
            foreign = self._projected(max(0, self._server_max - headers.remaining - own), now)
            self._foreign = self._smoothed(foreign, now)
            if headers.remaining <= 0:
                self._block(self._next_own_expiry(now, default=sent_at + self._interval))

    def set_guaranteed_share(self, share: float) -> None:
        """This process's fair part of the budget (its share of the input partitions).

        However busy other replicas keep the window, this part stays available, so a replica
        that joins a saturated group is not starved; above it, spare budget is shared
        through the estimate of other clients' use. A replica that owns every partition
        claims no guaranteed part (other users of the token are then respected).
        """
        with self._lock:
            self._floor_share = min(max(share, 0.0), 1.0)

    def back_off(self, seconds: float | None = None) -> None:
        """A 429 said the window is full: send nothing for `seconds`, or until a slot frees."""
        with self._lock:
            now = self._clock.monotonic()
            if seconds is None:
                until = self._next_own_expiry(now, default=now + self._interval)
                seconds = min(max(until - now, 1.0), self._interval)
            self._block(now + seconds)

    def hold_then_probe(self, seconds: float, sent_at: float) -> bool:
        """A request sent at `sent_at` met a spent daily budget or refused credentials: send
        nothing for `seconds`, then let one thread probe until `probe_passed`. False (and
        nothing changes) for a request sent before the current hold began (or as it began):
        it is held for."""
        with self._lock:
            if sent_at <= self._hold_started:
                return False
            now = self._clock.monotonic()
            self._hold_started = now
            self._block(now + seconds)
            self._probing, self._probe_owner = True, None
            return True

    def probe_passed(self, sent_at: float) -> None:
        """HubSpot accepted a request sent at `sent_at` (neither credentials nor the daily
        budget refused it): if it was sent since the hold began, the hold is over."""
        with self._lock:
            if self._probing and sent_at > self._hold_started:
                self._probing, self._probe_owner = False, None

    def _capacity(self) -> int:
        if not self._observed:
            return 1  # probe first: other replicas may already be using the budget
        foreign = round(self._foreign) if self._foreign >= 1.5 else 0  # below: timing noise
        if foreign == 0:
            return self._server_max
        spare = self._server_max - foreign - self._shared_margin
        # A replica that owns every partition has no peers to be fair to: it respects others.
        share = self._floor_share if self._floor_share < 1.0 else 0.0
        guaranteed = int((self._server_max - self._shared_margin) * share)
        return max(1, spare, guaranteed)

    def _smoothed(self, foreign: float, now: float) -> float:
        """Rise at once; fall by a tenth per reply, or faster when replies are far apart: a
        high estimate allows few requests, and so few replies that it would hardly fall
        (after a rolling restart whose predecessor had filled the window: for minutes)."""
        since, self._last_reply = now - self._last_reply, now
        if foreign >= self._foreign:
            return foreign
        weight = max(_DECAY_PER_REPLY, 1.0 - math.exp(-since / self._interval))
        return self._foreign + weight * (foreign - self._foreign)

    def _projected(self, foreign: int, now: float) -> float:
        """Within its first window a new process has seen only part of the others' use:
        project what it saw over the whole window, so replicas starting together do not
        all assume the budget is theirs."""
        seen_for = now - self._first_seen
        if seen_for >= self._interval:
            return float(foreign)
        projected = foreign * self._interval / max(seen_for, self._interval / 10)
        return min(projected, float(self._server_max))  # no window holds more than that

    def _next_own_expiry(self, now: float, default: float) -> float:
        """When this process's oldest send in the window leaves it (HubSpot then has room)."""
        window = self._interval + self._guard_s
        first = bisect_left(self._sent, now - window)
        return self._sent[first] + window if first < len(self._sent) else default

    def _block(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)
