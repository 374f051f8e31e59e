"""Sends one batch to HubSpot until every input has a final outcome.

Owns the request loop for a batch: rate-limit slots, retries with backoff for transient
failures, waiting out 429s, holding on refused credentials or the daily limit, and
splitting a batch that HubSpot rejects as a whole so the poison inputs are isolated. Also
what a rejection of an input's content leads to: a merged input is split back into its
events (only the events HubSpot rejects on their own fail), and with
ON_INVALID_PROPERTY=drop an input is resent without the properties HubSpot said do not exist
or are read-only. A transient failure never marks an input failed while HubSpot fails every
request (an outage); an input HubSpot fails transiently again and again while it answers
other requests is isolated like a rejected one and, after a bounded number of attempts over
a bounded time, failed as TRANSIENT_EXHAUSTED. Talks to HubSpot only through the
UpsertTransport port; the batch's state is a BatchRun (service/core/batch_run.py). With
tracing on (the Tracing port), the batch runs in its span and each HTTP attempt in a child
span of it; an outcome is decided by the reply of the attempt it is settled after, and
carries that attempt's trace context (the batch span's, settled before any request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

import orjson

from service.core.batch_run import BatchRun, TransientStreak, TransientStreaks
from service.core.clock import Clock
from service.core.health import Health
from service.core.model import (
    Batch,
    BatchInput,
    BatchOutcome,
    ErrorInfo,
    InputOutcome,
    Status,
    log_context,
)
from service.core.outcomes import MappedReply, invalid_property_names, map_success
from service.core.ports import BatchSpan, Metrics, Tracing, UpsertTransport
from service.core.ratelimit import (
    RateLimiter,
)
from service.core.responses import (
    UNSPECIFIED_POLICY,
    Classified,
    ReplyKind,
    policy_label,
)
from service.core.retry import Backoff
from service.core.tracing import NO_TRACING
from service.loop.associator import AssociationPolicy, Associator
from service.loop.handover import Handover
from service.loop.requester import HoldPolicy, Requester

log = logging.getLogger(__name__)


TRANSIENT_EXHAUSTED = "TRANSIENT_EXHAUSTED"


class InvalidPropertyPolicy(StrEnum):
    """ON_INVALID_PROPERTY: what an input HubSpot refuses for a property that does not exist
    or is read-only comes to."""

    FAIL = "fail"
    DROP = "drop"  # resent without those properties; upserted, listing what was dropped


@dataclass(frozen=True, slots=True)
class CallerPolicy:
    max_body_bytes: int = 4_000_000
    backoff: Backoff = field(default_factory=Backoff)
    auth_retry_s: float = 15.0
    daily_probe_s: float = 300.0
    daily_reset_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    max_unmatched_rounds: int = 10
    on_invalid_property: InvalidPropertyPolicy = InvalidPropertyPolicy.FAIL
    # An input failing transiently while HubSpot answers other requests: isolated (its batch
    # split in halves) after this many attempts, failed after `transient_max_attempts` such
    # attempts and at least `transient_max_s` seconds.
    transient_isolate_after: int = 3
    transient_max_attempts: int = 10
    transient_max_s: float = 300.0


def encode_body(inputs: list[BatchInput]) -> bytes:
    return orjson.dumps({"inputs": [item.to_json() for item in inputs]})


class UpsertCaller:
    """Runs a batch to completion; safe to use from several worker threads at once."""

    def __init__(
        self,
        transport: UpsertTransport,
        *,
        limiter: RateLimiter,
        clock: Clock,
        metrics: Metrics,
        health: Health,
        policy: CallerPolicy,
        aborted: Callable[[], bool],
        handover: Handover | None = None,
        associations: AssociationPolicy | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._tracing = tracing
        self.requester = Requester(
            transport,
            limiter=limiter,
            clock=clock,
            metrics=metrics,
            health=health,
            policy=HoldPolicy(policy.auth_retry_s, policy.daily_probe_s, policy.daily_reset_zone),
            aborted=aborted,
        )
        self._clock = clock
        self._metrics = metrics
        self._policy = policy
        self._handover = handover or Handover()
        self._streaks = TransientStreaks()
        self._associator = (
            Associator(self.requester, clock=clock, metrics=metrics, policy=associations)
            if associations is not None
            else None
        )

    def execute(self, batch: Batch) -> BatchOutcome:
        try:
            with self._tracing.batch(batch) as span:
                outcome = self._execute(batch, span)
                span.finished(outcome)
                return outcome
        finally:
            self.requester.leave_probe()  # e.g. its inputs were handed over mid-probe

    def _execute(self, batch: Batch, span: BatchSpan) -> BatchOutcome:
        run = BatchRun(BatchOutcome(batch))
        run.trace_headers = span.headers()
        self._schedule_derived(run)  # the rest of a split input, deferred: one by one again
        while run.work:
            inputs, handed_over = self._handover.keep(run.seq, run.work.popleft())
            for item in handed_over:
                self._streaks.forget(item.trace_id)
            run.hand_over(handed_over)
            self._schedule_derived(run)
            if not inputs:
                continue
            body = encode_body(inputs)
            if len(body) > self._policy.max_body_bytes and len(inputs) > 1:
                self._split(run, inputs, "body_too_large")
                continue
            reply = self._send(inputs, body, run, span)
            if reply is None:  # some were handed over while it waited: sort them out first
                run.work.appendleft(inputs)
                continue
            self._handle(reply, inputs, run)
            self._schedule_derived(run)
        if self._associator is not None:
            self._associator.associate(run.outcome)
        return run.outcome

    def _handle(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        handlers = {
            ReplyKind.SUCCESS: self._on_success,
            ReplyKind.RATE_LIMITED: self._on_rate_limited,
            ReplyKind.DAILY_LIMITED: self._on_daily_limited,
            ReplyKind.TRANSIENT: self._on_transient,
            ReplyKind.AUTH: self._on_auth,
            ReplyKind.REJECTED: self._on_rejected,
        }
        handlers[reply.kind](reply, inputs, run)

    def _schedule_derived(self, run: BatchRun) -> None:
        """Inputs derived while handling a reply (events of a split merged input, inputs
        without refused properties) go as the next requests; each is a resend."""
        for request in run.schedule_derived():
            split = any(run.in_split(item) for item in request)
            self._metrics.retries.labels("split_merged_input" if split else "drop_properties").inc()

    def _send(
        self, inputs: list[BatchInput], body: bytes, run: BatchRun, span: BatchSpan
    ) -> Classified | None:
        """Send once a slot is free; None when some inputs were handed over meanwhile."""
        on_the_wire = self._handover.on_the_wire(run.seq, inputs)
        sent = self.requester.send(body, on_the_wire=on_the_wire, span=span, inputs=len(inputs))
        run.sent_at = sent.sent_at
        if sent.trace_headers:
            run.trace_headers = sent.trace_headers
        if sent.answered:
            self._metrics.batch_inputs.observe(len(inputs))
        return sent.reply

    def _on_success(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        run.failures = 0
        mapped = map_success(inputs, reply.status, reply.document)
        for item in inputs:
            result = mapped.outcomes.get(item.trace_id)
            if result is not None:
                self._conclude(run, item, result)
        if mapped.rate_limited:  # per-input rate limits: too soon, not lost; never failed
            self._resend_later(mapped.rate_limited, run, UNSPECIFIED_POLICY, reply.retry_after_s)
        if mapped.resend:
            self._resend_unmatched(mapped, run, reply.status)

    def _resend_unmatched(self, mapped: MappedReply, run: BatchRun, http_status: int) -> None:
        """Inputs a reply did not account for go again, each failed once HubSpot's replies
        have left it unaccounted for `max_unmatched_rounds` times."""
        rounds = run.unmatched_rounds
        for item in mapped.resend:
            rounds[item.trace_id] = rounds.get(item.trace_id, 0) + 1
        limit = self._policy.max_unmatched_rounds
        spent = [item for item in mapped.resend if rounds[item.trace_id] > limit]
        if spent:
            error = ErrorInfo(
                "UNMATCHED_RESULT", "HubSpot's reply never named this input", http_status
            )
            self._fail(run, spent, error)
        again = [item for item in mapped.resend if rounds[item.trace_id] <= limit]
        if not again:
            return
        self._metrics.retries.labels("unmatched_input").inc()
        worst = max(rounds[item.trace_id] for item in again)
        self.requester.wait(self._policy.backoff.delay(worst - 1))
        if mapped.resend_one_by_one:
            run.work.extend([item] for item in again)
        else:
            run.work.append(again)

    def _on_rate_limited(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        self._resend_later(inputs, run, policy_label(reply.policy), reply.retry_after_s)

    def _resend_later(
        self, inputs: list[BatchInput], run: BatchRun, policy: str, retry_after_s: float | None
    ) -> None:
        """Rate limited: hold the limiter, and resend these inputs first."""
        self.requester.back_off(retry_after_s, policy)
        run.work.appendleft(inputs)

    def _on_daily_limited(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        self._metrics.rate_limited.labels("DAILY").inc()
        why = "HubSpot answered 429 DAILY"
        self.requester.hold_daily(why, run.sent_at, log_context(run.seq, inputs))
        run.work.appendleft(inputs)

    def _on_transient(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        reason = str(reply.status) if reply.status else "transport"
        self._metrics.retries.labels(reason).inc()
        streak = self._streaks.failed(inputs, run.sent_at, self.requester.answered_sent_at)
        if len(inputs) == 1 and self._exhausted(streak):
            self._fail_exhausted(run, inputs, reason, streak)
            return
        attempt = max(run.failures, streak.attempts - 1)  # an input's streak spans batches
        delay = self._policy.backoff.delay(attempt, floor_s=reply.retry_after_s or 0.0)
        run.failures += 1
        if self._deferred(run, inputs, streak, delay):
            return
        log.warning(
            "transient failure (%s: %s); retrying in %.2fs",
            reason,
            reply.message,
            delay,
            extra=log_context(run.seq, inputs),
        )
        self.requester.wait(delay)
        if len(inputs) > 1 and self._isolate(streak):
            self._split(run, inputs, "isolate_transient")
        else:
            run.work.appendleft(inputs)

    def _deferred(
        self, run: BatchRun, inputs: list[BatchInput], streak: TransientStreak, delay: float
    ) -> bool:
        """An input isolated as failing again and again leaves this batch: the loop sends it
        again after `delay` on its own, and the rest of the batch (and its ids) go on."""
        isolated = len(inputs) == 1 and streak.attempts >= self._policy.transient_isolate_after
        if not isolated:
            return False
        run.defer(inputs[0])
        run.outcome.retry_in_s = max(run.outcome.retry_in_s, delay)
        self._metrics.retries.labels("deferred").inc()
        log.warning(
            "an input failed transiently %d times; it goes again in %.2fs on its own",
            streak.attempts,
            delay,
            extra=log_context(run.seq, inputs),
        )
        return True

    def _isolate(self, streak: TransientStreak) -> bool:
        """Split a batch failing transiently again and again: once HubSpot answered other
        requests meanwhile, or (nothing else being sent) after many attempts."""
        policy = self._policy
        if streak.attempts < policy.transient_isolate_after:
            return False
        return streak.proven > 0 or streak.attempts >= policy.transient_max_attempts

    def _exhausted(self, streak: TransientStreak) -> bool:
        """An input failed transiently `transient_max_attempts` times while HubSpot answered
        other requests, over at least `transient_max_s`: the input is the problem."""
        policy = self._policy
        long_enough = self._clock.monotonic() - streak.first_failed_at >= policy.transient_max_s
        return streak.proven >= policy.transient_max_attempts and long_enough

    def _fail_exhausted(
        self, run: BatchRun, inputs: list[BatchInput], reason: str, streak: TransientStreak
    ) -> None:
        elapsed = self._clock.monotonic() - streak.first_failed_at
        message = (
            f"HubSpot answered {reason} to this input {streak.attempts} times over "
            f"{elapsed:.0f} s while it answered other requests"
        )
        log.error("giving up on an input: %s", message, extra=log_context(run.seq, inputs))
        status = int(reason) if reason.isdigit() else None
        self._fail(run, inputs, ErrorInfo(TRANSIENT_EXHAUSTED, message, status, content=True))

    def _on_auth(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        self.requester.hold_auth(reply, run.sent_at, log_context(run.seq, inputs))
        run.work.appendleft(inputs)

    def _on_rejected(self, reply: Classified, inputs: list[BatchInput], run: BatchRun) -> None:
        run.failures = 0
        context = log_context(run.seq, inputs)
        if len(inputs) > 1 and _splittable(reply):
            log.info("HubSpot rejected the batch (%s); splitting it", reply.message, extra=context)
            self._split(run, inputs, "isolate_rejected")
            return
        log.warning("HubSpot rejected %d input(s): %s", len(inputs), reply.message, extra=context)
        error = ErrorInfo(
            reply.category or "REJECTED",
            reply.message,
            reply.status,
            invalid_properties=invalid_property_names(reply.document or {}),
            content=_splittable(reply),
        )
        self._fail(run, inputs, error)

    def _split(self, run: BatchRun, inputs: list[BatchInput], reason: str) -> None:
        self._metrics.retries.labels(reason).inc()
        half = len(inputs) // 2
        run.work.extendleft([inputs[half:], inputs[:half]])

    def _fail(self, run: BatchRun, inputs: list[BatchInput], error: ErrorInfo) -> None:
        for item in inputs:
            self._conclude(run, item, InputOutcome(Status.FAILED, error=error))

    def _conclude(self, run: BatchRun, item: BatchInput, result: InputOutcome) -> None:
        """An input's outcome from HubSpot. A failure for properties that do not exist or are
        read-only is resent without them (ON_INVALID_PROPERTY=drop); one about the content of a
        merged input is split back into its events; anything else is final."""
        error = result.error
        if result.status is Status.FAILED and error is not None:
            if self._dropped(run, item, error):
                return
            if error.content and run.split(item):
                self._metrics.merged_inputs_split.inc()
                log.info(
                    "HubSpot rejected a merged input (%s); resending its %d events one by one",
                    error.category,
                    len(item.events),
                    extra=log_context(run.seq, [item]),
                )
                return
        self._streaks.forget(item.trace_id)
        run.settle(item, result)

    def _dropped(self, run: BatchRun, item: BatchInput, error: ErrorInfo) -> bool:
        names = error.invalid_properties
        if self._policy.on_invalid_property is not InvalidPropertyPolicy.DROP or not names:
            return False
        dropped = run.drop(item, names)
        if not dropped:
            return False
        self._metrics.dropped_properties.inc(len(dropped))
        log.warning(
            "HubSpot refused properties %s (%s); resending without them",
            list(dropped),
            error.category,
            extra=log_context(run.seq, [item]),
        )
        return True


def _splittable(reply: Classified) -> bool:
    """A whole-request 400/413 may be caused by one input; a non-unique idProperty never is."""
    if reply.status not in (400, 413):
        return False
    return "non-unique" not in reply.message
