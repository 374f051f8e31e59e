"""One request to HubSpot under the app's shared budget and holds; used by every worker.

Owns what every HubSpot request goes through, whatever it carries (upserts, reads of
association targets, associations): waiting for a rate-limit slot, posting through the
transport port, reading the reply (service/core/responses.py), following HubSpot's
rate-limit headers, and the holds a reply starts or ends: a 429 backs the limiter off, the
daily limit and refused credentials hold every worker (readiness says why) until a probe
passes. It decides nothing about what the request carried: its callers do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from service.core.clock import Clock
from service.core.errors import AuthError, CallAbortedError, TransientHubSpotError
from service.core.health import AUTH_BLOCK, DAILY_BLOCK, Health
from service.core.model import TraceHeaders
from service.core.ports import BatchSpan, Metrics, RequestSpan, UpsertTransport
from service.core.ratelimit import (
    RateLimiter,
    RateLimitHeaders,
    read_headers,
    seconds_until_midnight,
)
from service.core.responses import Classified, HttpReply, ReplyKind, classify, policy_label
from service.core.tracing import NO_SPAN

log = logging.getLogger(__name__)

_WAIT_SLICE_S = 0.25
WINDOW_READING_VALID_S = 60.0  # a burst-window reading with no reply since says nothing
# Replies that do not show the credentials and the daily budget work: a probe goes on.
_PROBE_FAILING = frozenset({ReplyKind.AUTH, ReplyKind.DAILY_LIMITED, ReplyKind.TRANSIENT})


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    auth_retry_s: float = 15.0
    daily_probe_s: float = 300.0
    daily_reset_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


@dataclass(frozen=True, slots=True)
class Sent:
    """A request's reply (None: it was not sent after all), when it was sent (the slot's ask,
    compared with holds: never later than the slot), and whether HubSpot answered it (False
    for a transport failure)."""

    reply: Classified | None
    sent_at: float
    answered: bool = False
    trace_headers: TraceHeaders = ()  # the context of the attempt's span (tracing on)


class Requester:
    """Sends requests under the shared limiter; safe to use from several threads at once."""

    def __init__(
        self,
        transport: UpsertTransport,
        *,
        limiter: RateLimiter,
        clock: Clock,
        metrics: Metrics,
        health: Health,
        policy: HoldPolicy,
        aborted: Callable[[], bool],
    ) -> None:
        self._transport, self._limiter, self._clock = transport, limiter, clock
        self._metrics, self._health, self._policy = metrics, health, policy
        self._aborted = aborted
        # When the latest request HubSpot answered (anything but a transient failure) was
        # sent: proof, to a worker whose input keeps failing, that HubSpot is up.
        self.answered_sent_at = float("-inf")

    def send(
        self,
        body: bytes,
        *,
        path: str | None = None,
        on_the_wire: AbstractContextManager[bool] | None = None,
        span: BatchSpan = NO_SPAN,
        inputs: int = 0,
    ) -> Sent:
        """Post `body` (to `path`; None: the upsert path) once a slot is free. `on_the_wire`
        says, once the slot is taken, whether to send after all (False: the slot is given
        back) and spans the request. With tracing on, the attempt is a child span of `span`
        (a batch's, carrying `inputs` inputs)."""
        sent_at, waited = self._take_slot()
        started = self._clock.monotonic()
        with on_the_wire or nullcontext(True) as allowed:
            if not allowed:
                self._limiter.give_back()  # unused: another request may take it
                return Sent(None, sent_at)
            with span.request(inputs, waited) as attempt:
                reply = self._post(body, path, started, attempt)
            headers = attempt.headers()
        if not isinstance(reply, HttpReply):
            return Sent(reply, sent_at, trace_headers=headers)
        return Sent(self._read(reply, started, sent_at), sent_at, True, headers)

    def leave_probe(self) -> None:
        """This thread is done with its batch: a probe it held passes to another."""
        self._limiter.leave_probe()

    # -- holds a reply starts ------------------------------------------------------------

    def back_off(self, retry_after_s: float | None, policy: str | None) -> None:
        """Rate limited (429, or per-input RATE_LIMITS errors): hold the limiter."""
        self._metrics.rate_limited.labels(policy_label(policy)).inc()
        self._metrics.retries.labels("rate_limited").inc()
        self._limiter.back_off(retry_after_s)

    def hold_daily(self, why: str, sent_at: float, context: dict[str, object]) -> None:
        """Stop sending until the daily reset, or until a probe after `daily_probe_s`
        succeeds (nothing new for a request sent before the current hold began)."""
        until_reset = seconds_until_midnight(self._clock.wall(), self._policy.daily_reset_zone)
        wait = min(until_reset, self._policy.daily_probe_s)
        if not self._limiter.hold_then_probe(wait, sent_at):
            return
        self._health.block(DAILY_BLOCK, f"{why}; next attempt in {wait:.0f}s")
        log.warning("daily limit reached (%s); next attempt in %.0fs", why, wait, extra=context)

    def hold_auth(self, reply: Classified, sent_at: float, context: dict[str, object]) -> None:
        """HubSpot refused the credentials: hold every worker; probe every auth_retry_s."""
        self._metrics.auth_failures.labels(str(reply.status)).inc()
        why = f"HubSpot refused the credentials (HTTP {reply.status}): {reply.message}"
        if self._limiter.hold_then_probe(self._policy.auth_retry_s, sent_at):
            self._health.block(AUTH_BLOCK, why)
            log.error("%s; holding", why, extra=context)

    def wait(self, seconds: float) -> None:
        """Sleep `seconds` in slices; raises CallAbortedError once the service stops hard."""
        deadline = self._clock.monotonic() + seconds
        while True:
            if self._aborted():
                raise CallAbortedError("stopping")
            left = deadline - self._clock.monotonic()
            if left <= 0:
                return
            self._clock.sleep(min(left, _WAIT_SLICE_S))

    # -- one request -------------------------------------------------------------------------

    def _take_slot(self) -> tuple[float, float]:
        """Wait for a slot; returns when the successful ask began (at or before the slot),
        and how long it waited for the slot (the rate-limit wait)."""
        first = None
        while True:
            asked = self._clock.monotonic()
            first = asked if first is None else first
            wait = self._limiter.try_acquire()
            if wait <= 0:
                return asked, asked - first
            self.wait(min(wait, _WAIT_SLICE_S))

    def _post(
        self, body: bytes, path: str | None, started: float, attempt: RequestSpan
    ) -> HttpReply | Classified:
        """The reply, or what a transport failure means."""
        try:
            reply = self._transport.post(body, path)
        except TransientHubSpotError as exc:
            attempt.failed(exc)
            self._metrics.requests.labels("error", ReplyKind.TRANSIENT.value).inc()
            return Classified(ReplyKind.TRANSIENT, 0, None, str(exc), None, None)
        except AuthError as exc:
            attempt.failed(exc)
            self._metrics.requests.labels("error", ReplyKind.AUTH.value).inc()
            return Classified(ReplyKind.AUTH, exc.status or 401, exc.category, str(exc), None, None)
        finally:
            elapsed = self._clock.monotonic() - started
            self._metrics.request_seconds.observe(elapsed, attempt.exemplar())
        attempt.replied(reply.status)
        return reply

    def _read(self, reply: HttpReply, started: float, sent_at: float) -> Classified:
        classified = classify(reply, self._clock.wall())
        self._observe_headers(reply.headers, started, sent_at)  # may hold: budget spent
        self._lift_holds(classified.kind, sent_at)
        if classified.kind is not ReplyKind.TRANSIENT:
            self.answered_sent_at = max(self.answered_sent_at, sent_at)
        self._metrics.requests.labels(f"{reply.status // 100}xx", classified.kind.value).inc()
        return classified

    def _lift_holds(self, kind: ReplyKind, sent_at: float) -> None:
        """A reply HubSpot did not refuse for credentials or the daily budget ends those holds
        (readiness and the limiter alike) if its request was sent since they began; a 429
        DAILY still shows the credentials work."""
        if kind is ReplyKind.DAILY_LIMITED:
            self._health.unblock(AUTH_BLOCK, sent_at=sent_at)
        if kind in _PROBE_FAILING:
            return
        self._health.unblock(AUTH_BLOCK, sent_at=sent_at)
        self._health.unblock(DAILY_BLOCK, sent_at=sent_at)
        self._limiter.probe_passed(sent_at)

    def _observe_headers(self, headers: Mapping[str, str], started: float, sent_at: float) -> None:
        limits = read_headers(headers)
        self._limiter.observe(limits, started)
        if limits.daily_remaining is not None and limits.daily_remaining <= 0:
            self.hold_daily("the daily budget has no requests left", sent_at, {})
        self._report_limits(limits)

    def _report_limits(self, limits: RateLimitHeaders) -> None:
        """Export what the reply said of HubSpot's budgets, for as long as it holds: a burst
        window's reading for a minute, the daily budget's until HubSpot resets it."""
        until_reset = seconds_until_midnight(self._clock.wall(), self._policy.daily_reset_zone)
        gauges = (
            (self._metrics.ratelimit_max, limits.max_requests, WINDOW_READING_VALID_S),
            (self._metrics.ratelimit_remaining, limits.remaining, WINDOW_READING_VALID_S),
            (self._metrics.daily_limit, limits.daily, until_reset),
            (self._metrics.daily_remaining, limits.daily_remaining, until_reset),
        )
        for gauge, value, valid_for_s in gauges:
            if value is not None:
                gauge.set(value, valid_for_s)
