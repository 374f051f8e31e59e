"""Time for the emulator: the `Clock` protocol, the real clock, and HubSpot's timestamp format.

Owns the only place that reads the system time; everything else takes a `Clock`, so tests
can drive time by hand (see `FakeClock`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the emulator reads time: `monotonic()` for windows, `now()` for timestamps."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to (for tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 7, 12, 0, tzinfo=UTC)
        self._mono = 1000.0

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._now += timedelta(seconds=seconds)


def iso_millis(moment: datetime) -> str:
    """`2026-11-07T05:31:56.123Z`: ISO-8601 UTC with milliseconds, as HubSpot writes it."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such years unpadded; isoformat would pad them
        return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
    # isoformat is much cheaper than strftime; it truncates to milliseconds, ends in +00:00.
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"
