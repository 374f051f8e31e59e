"""The rolling window and the daily counter, driven by a fake clock (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime

from devstack.emulator.clock import FakeClock, iso_millis
from devstack.emulator.ratelimit import (
    DailyCounter,
    RollingWindow,
    next_midnight_utc,
    retry_after_header,
)

WINDOW_S = 10.0


def test_window_allows_up_to_the_limit_then_refuses() -> None:
    window = RollingWindow(FakeClock())
    decisions = [window.acquire("t", 3, WINDOW_S) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]


def test_refused_requests_are_not_counted() -> None:
    clock = FakeClock()
    window = RollingWindow(clock)
    window.acquire("t", 1, WINDOW_S)
    for _ in range(10):
        window.acquire("t", 1, WINDOW_S)

    assert window.usage(WINDOW_S) == {"t": 1}


def test_slots_free_exactly_one_interval_after_each_request() -> None:
    clock = FakeClock()
    window = RollingWindow(clock)
    window.acquire("t", 2, WINDOW_S)
    clock.advance(3)
    window.acquire("t", 2, WINDOW_S)
    clock.advance(6.999)

    refused = window.acquire("t", 2, WINDOW_S)
    assert not refused.allowed
    assert abs(refused.retry_after_s - 0.001) < 1e-6
    clock.advance(0.001)
    assert window.acquire("t", 2, WINDOW_S).allowed
    assert not window.acquire("t", 2, WINDOW_S).allowed


def test_windows_are_independent_per_key() -> None:
    window = RollingWindow(FakeClock())
    window.acquire("a", 1, WINDOW_S)

    assert not window.acquire("a", 1, WINDOW_S).allowed
    assert window.acquire("b", 1, WINDOW_S).allowed


def test_record_counts_without_checking_and_peek_counts_nothing() -> None:
    window = RollingWindow(FakeClock())
    window.record("t", 1, WINDOW_S)
    window.record("t", 1, WINDOW_S)

    assert window.usage(WINDOW_S) == {"t": 2}
    assert not window.peek("t", 1, WINDOW_S).allowed
    assert window.usage(WINDOW_S) == {"t": 2}


def test_unlimited_window_reports_no_limit_and_tracks_the_peak() -> None:
    clock = FakeClock()
    window = RollingWindow(clock)
    for _ in range(500):
        assert window.acquire("t", None, WINDOW_S).allowed
    clock.advance(WINDOW_S)
    window.acquire("t", None, WINDOW_S)

    assert window.acquire("t", None, WINDOW_S).limit is None
    assert window.usage(WINDOW_S) == {"t": 2}
    assert window.peaks() == {"t": 500}


def test_lowering_the_limit_applies_to_the_next_request() -> None:
    window = RollingWindow(FakeClock())
    for _ in range(5):
        window.acquire("t", 10, WINDOW_S)

    assert not window.acquire("t", 5, WINDOW_S).allowed
    assert window.acquire("t", 10, WINDOW_S).remaining == 4


def test_daily_counter_refuses_after_the_limit_until_reset() -> None:
    daily = DailyCounter(FakeClock())
    decisions = [daily.acquire(2) for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert daily.used == 2
    daily.reset()
    assert daily.acquire(2).allowed


def test_daily_counter_rolls_over_at_the_reset_time_and_schedules_the_next() -> None:
    clock = FakeClock(datetime(2026, 11, 7, 23, 0, tzinfo=UTC))
    daily = DailyCounter(clock)
    daily.acquire(1)

    assert iso_millis(daily.reset_at) == "2026-11-08T00:00:00.000Z"
    assert daily.acquire(1).retry_after_s == 3600
    clock.advance(3600)
    assert daily.acquire(1).allowed
    assert iso_millis(daily.reset_at) == "2026-11-09T00:00:00.000Z"


def test_rescheduling_keeps_todays_count() -> None:
    clock = FakeClock()
    daily = DailyCounter(clock)
    daily.acquire(5)
    daily.reschedule(datetime(2026, 11, 7, 13, 0, tzinfo=UTC))

    assert daily.used == 1
    clock.advance(3600)
    assert daily.used == 0


def test_unlimited_daily_budget_counts_but_never_refuses() -> None:
    daily = DailyCounter(FakeClock())
    for _ in range(1000):
        assert daily.acquire(None).allowed

    assert daily.used == 1000


def test_next_midnight_is_strictly_after_now() -> None:
    midnight = datetime(2026, 11, 7, tzinfo=UTC)

    assert next_midnight_utc(midnight) == datetime(2026, 11, 8, tzinfo=UTC)


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.0, 0.2, 1.0, 7.5)] == ["1", "1", "1", "8"]
