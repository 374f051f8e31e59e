from __future__ import annotations

import itertools
import random

import pytest

from service.core.clock import FakeClock
from service.core.ratelimit import RateLimiter, RateLimitHeaders, read_headers
from tests.unit.fakes import acquire_from_another_thread


def _headers(
    max_requests: int | None = 190, remaining: int | None = None, interval_s: float | None = 10.0
) -> RateLimitHeaders:
    return RateLimitHeaders(max_requests, remaining, interval_s, None, None)


def test_no_rolling_window_holds_more_than_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, 10.0, clock, guard_s=0.0)
    limiter.observe(_headers(max_requests=3), clock.monotonic())
    sends = []
    for _ in range(10):
        while (wait := limiter.try_acquire()) > 0:
            clock.advance(wait)
        sends.append(clock.monotonic())
        clock.advance(0.1)
    for start in sends:
        assert sum(1 for t in sends if start <= t < start + 10.0) <= 3
    assert sends[3] - sends[0] >= 10.0


def test_budget_adapts_to_hubspots_headers_at_run_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    limiter.observe(_headers(max_requests=100, interval_s=5.0), clock.monotonic())
    assert limiter.budget == (100, 5.0)


def test_other_replicas_usage_shrinks_this_replicas_share() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, shared_margin=4)
    limiter.observe(_headers(), clock.monotonic())
    clock.advance(10.0)  # past the first window: what it sees is no longer projected
    for _ in range(10):
        _take(limiter, clock)
    # The app has used 130 requests in the window; 10 of them were ours.
    limiter.observe(_headers(remaining=60), clock.monotonic())
    share, _ = limiter.budget
    assert share == 190 - 120 - 4
    # When the others go quiet the share grows back, gradually.
    clock.advance(10.1)
    shares = []
    for _ in range(30):
        _take(limiter, clock)
        limiter.observe(_headers(remaining=189), clock.monotonic())
        shares.append(limiter.budget[0])
    assert shares == sorted(shares)
    assert shares[-1] > share


def test_no_remaining_budget_blocks_until_the_window_has_passed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    limiter.observe(_headers(remaining=0), clock.monotonic())
    assert limiter.try_acquire() == pytest.approx(10.0)


def test_a_429_backs_off_every_later_request() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    limiter.back_off(3.0)
    assert limiter.try_acquire() == pytest.approx(3.0)
    clock.advance(3.0)
    assert limiter.try_acquire() == 0


def test_headers_are_read_case_insensitively_and_bad_values_ignored() -> None:
    parsed = read_headers(
        {
            "x-hubspot-ratelimit-max": "190",
            "x-hubspot-ratelimit-remaining": "x",
            "x-hubspot-ratelimit-interval-milliseconds": "10000",
            "x-hubspot-ratelimit-daily-remaining": "5",
        }
    )
    assert parsed.max_requests == 190 and parsed.remaining is None
    assert parsed.interval_s == 10.0 and parsed.daily_remaining == 5


def test_a_fresh_limiter_probes_with_one_request_until_it_has_seen_a_reply() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    assert limiter.try_acquire() == 0
    assert limiter.try_acquire() > 0
    limiter.observe(_headers(remaining=189), clock.monotonic())
    clock.advance(0.1)
    assert limiter.try_acquire() == 0


def test_sends_are_paced_evenly_over_the_window_not_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, guard_s=0.0)
    limiter.observe(_headers(remaining=190), clock.monotonic())
    sends = [_take(limiter, clock) for _ in range(190)]
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert min(gaps) >= 10.0 / 190 - 1e-9
    assert sends[-1] - sends[0] == pytest.approx(189 * 10.0 / 190)


def test_a_429_without_retry_after_waits_until_the_oldest_own_slot_frees() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, guard_s=0.0)
    limiter.observe(_headers(remaining=190), clock.monotonic())
    _take(limiter, clock)
    clock.advance(7.0)
    limiter.back_off(None)
    assert limiter.try_acquire() == pytest.approx(3.0)


def _take(limiter: RateLimiter, clock: FakeClock) -> float:
    while (wait := limiter.try_acquire()) > 0:
        clock.advance(wait)
    return clock.monotonic()


def test_a_replica_joining_a_saturated_budget_still_gets_its_partitions_share() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, shared_margin=4)
    limiter.set_guaranteed_share(2 / 6)
    limiter.observe(_headers(remaining=4), clock.monotonic())  # the others use 186
    assert limiter.budget[0] == int(186 * 2 / 6)
    limiter.set_guaranteed_share(0.0)
    assert limiter.budget[0] == 1


def test_a_replica_owning_every_partition_claims_no_guarantee_over_other_users() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, shared_margin=4)
    limiter.set_guaranteed_share(1.0)
    limiter.observe(_headers(remaining=190), clock.monotonic())
    clock.advance(10.0)
    limiter.observe(_headers(remaining=40), clock.monotonic())
    assert limiter.budget[0] == 190 - 150 - 4


def test_in_its_first_window_a_replica_projects_what_the_others_are_using() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, shared_margin=4)
    limiter.set_guaranteed_share(1 / 3)
    limiter.observe(_headers(remaining=190), clock.monotonic())
    clock.advance(2.0)
    limiter.observe(_headers(remaining=150), clock.monotonic())  # others: 40 in 2 s
    assert limiter.budget[0] == int(186 / 3)  # 200 projected: only the guaranteed share


def test_a_late_send_is_caught_up_by_the_next_ones_without_exceeding_the_pace() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, guard_s=0.0)
    limiter.observe(_headers(remaining=190), clock.monotonic())
    spacing = 10.0 / 190
    sends = [_take(limiter, clock) for _ in range(5)]
    clock.advance(spacing * 1.5)  # the worker that should send next wakes up late
    sends += [_take(limiter, clock) for _ in range(5)]
    late_gap = sends[5] - sends[4]
    assert late_gap == pytest.approx(spacing * 1.5)
    assert sends[6] - sends[5] < spacing  # catching up
    for first in range(len(sends) - 3):  # never faster than the pace over three sends
        assert sends[first + 3] - sends[first] >= 3 * spacing - 1e-9


def test_a_single_replica_with_slow_jittery_replies_keeps_the_whole_budget() -> None:
    # HubSpot counts a request when it arrives; its reply comes 100-200 ms later, and sends
    # are irregular. Comparing the server's count with this process's sends in the window
    # before the reply (not before the send) would take its own sends for other replicas'
    # use whenever the rate changes, and shrink the share.
    rng = random.Random(7)
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, guard_s=0.0)
    limiter.observe(_headers(remaining=189), clock.monotonic())
    sent: list[float] = []
    replies: list[tuple[float, float, int]] = []  # (due, sent_at, remaining)
    shares = []
    for _ in range(800):
        sent_at = _take(limiter, clock)
        sent.append(sent_at)
        counted = sum(1 for t in sent if sent_at - 10.0 < t <= sent_at)
        replies.append((sent_at + rng.uniform(0.1, 0.2), sent_at, 190 - counted))
        if rng.random() < 0.1:
            clock.advance(rng.uniform(0.0, 1.0))  # no batch ready for a moment
        replies.sort()
        while replies and replies[0][0] <= clock.monotonic():
            _, at, remaining = replies.pop(0)
            limiter.observe(_headers(remaining=remaining), at)
        shares.append(limiter.budget[0])
    assert min(shares[200:]) == 190
    assert all(b - a >= 10.0 - 1e-9 for a, b in zip(sent, sent[190:], strict=False))


def _held_limiter() -> tuple[RateLimiter, FakeClock, float]:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    limiter.observe(read_headers({"x-hubspot-ratelimit-remaining": "189"}), clock.monotonic())
    refused_at = clock.monotonic()
    assert limiter.hold_then_probe(300, sent_at=refused_at)
    return limiter, clock, refused_at


def test_after_a_hold_one_worker_probes_and_the_others_wait_until_it_passes() -> None:
    limiter, clock, _ = _held_limiter()
    clock.advance(299)
    assert limiter.try_acquire() > 0 and acquire_from_another_thread(limiter) > 0
    clock.advance(1)
    probe_sent = clock.monotonic()
    assert limiter.try_acquire() == 0  # this worker probes
    for _ in range(20):  # however long its answer takes, nobody else goes
        clock.advance(1)
        assert acquire_from_another_thread(limiter) > 0
    assert limiter.try_acquire() == 0  # the probe's own resend (a transient failure) may
    limiter.probe_passed(probe_sent)
    clock.advance(0.1)
    assert acquire_from_another_thread(limiter) == 0  # the whole budget again, paced


def test_a_late_reply_to_a_request_sent_before_the_hold_neither_ends_nor_renews_it() -> None:
    limiter, clock, refused_at = _held_limiter()
    earlier = refused_at - 5  # another worker's request, out since before the hold
    clock.advance(300)
    assert limiter.try_acquire() == 0  # the probe
    clock.advance(2)
    limiter.probe_passed(earlier)  # its late 200 proves nothing about now
    assert acquire_from_another_thread(limiter) > 0
    assert not limiter.hold_then_probe(300, sent_at=earlier)  # nor does its late 401
    assert limiter.try_acquire() == 0  # the probe goes on


def test_after_a_rolling_restart_the_budget_comes_back_within_a_few_windows() -> None:
    # The old pod filled HubSpot's window just before this one started; nobody else sends.
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock, shared_margin=4)
    limiter.set_guaranteed_share(1.0)
    start, sends = clock.monotonic(), list[float]()
    for _ in range(40 * 100):  # 40 s in 10 ms steps; every send is answered at once
        now = clock.monotonic()
        if limiter.try_acquire() == 0:
            sends.append(now)
            others = 189 if now < start + 1.0 else 0  # the predecessor's, until they age out
            own = sum(1 for t in sends if t > now - 10.0)
            limiter.observe(_headers(remaining=max(0, 190 - others - own)), now)
        clock.advance(0.01)
    last_window = [t for t in sends if t >= start + 30.0]
    assert len(last_window) >= 150, len(last_window)


def test_a_reply_to_a_request_sent_as_the_hold_began_counts_as_sent_before_it() -> None:
    limiter, clock, refused_at = _held_limiter()
    limiter.probe_passed(refused_at)  # same clock reading: not a probe
    assert not limiter.hold_then_probe(300, sent_at=refused_at)
    clock.advance(300)
    assert limiter.try_acquire() == 0  # the probe
    assert acquire_from_another_thread(limiter) > 0


def test_a_slot_given_back_unused_is_free_for_the_next_request() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)  # before any reply: one request at a time
    assert limiter.try_acquire() == 0
    assert acquire_from_another_thread(limiter) > 0
    limiter.give_back()  # its inputs were handed over meanwhile: it sends nothing
    assert acquire_from_another_thread(limiter) == 0


def test_a_worker_leaving_its_probe_lets_another_worker_probe() -> None:
    limiter, clock, _ = _held_limiter()
    clock.advance(300)
    assert limiter.try_acquire() == 0  # this worker probes; a transient failure: it resends
    assert acquire_from_another_thread(limiter) > 0
    limiter.leave_probe()  # ... but its batch ended first (handed over): nobody would probe
    clock.advance(1)
    assert acquire_from_another_thread(limiter) == 0
