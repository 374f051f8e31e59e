"""Figures computed from the emulator's request log (what HubSpot would have seen).

The key one is the sustained rate. HubSpot's limit is a rolling window: at most L requests
in any interval I (190 in 10 s). A client that uses the whole budget sends request n+L
exactly I after request n, whatever burst it started with, so the time between request n and
request n+L (over every n) measures how much of the budget was used, free of the start-up
burst and of the drained tail: sustained records/s = inputs in those L requests / that time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from devstack.emulator import RequestEntry


def epoch_s(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class Request:
    received: float
    answered: float
    status: int | None
    inputs: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def counted(self) -> bool:
        """Counted against the burst window: every answered request except a 429."""
        return self.status is not None and self.status != 429


def requests_from_log(entries: Sequence[RequestEntry]) -> list[Request]:
    parsed = [
        Request(epoch_s(e["receivedAt"]), epoch_s(e["answeredAt"]), e["status"], e["inputs"])
        for e in entries
    ]
    return sorted(parsed, key=lambda r: r.received)


def sustained(requests: Sequence[Request], limit: int) -> dict[str, float | int | None]:
    """Mean time from request n to request n+limit, and the records/s that gives."""
    counted = [r for r in requests if r.counted]
    spans = [counted[n + limit].received - counted[n].received for n in range(len(counted) - limit)]
    if not spans:
        return {"windows_measured": 0, "mean_span_s": None, "records_per_s": None}
    inputs = [r.inputs if r.ok else 0 for r in counted]
    prefix = [0]
    for value in inputs:
        prefix.append(prefix[-1] + value)
    window_inputs = sum(prefix[n + limit] - prefix[n] for n in range(len(spans)))
    return {
        "windows_measured": len(spans),
        "mean_span_s": statistics.fmean(spans),
        "min_span_s": min(spans),
        "records_per_s": window_inputs / sum(spans),
        "requests_per_s": limit / statistics.fmean(spans),
    }


def aligned_windows(requests: Sequence[Request], interval_s: float) -> list[dict[str, float | int]]:
    """Requests and inputs in consecutive whole windows from the first request (cross-check)."""
    if not requests:
        return []
    start = requests[0].received
    end = requests[-1].received
    windows = []
    n = 0
    while start + (n + 1) * interval_s <= end:
        low, high = start + n * interval_s, start + (n + 1) * interval_s
        inside = [r for r in requests if low <= r.received < high]
        windows.append(
            {
                "start_s": round(n * interval_s, 3),
                "requests": sum(1 for r in inside if r.counted),
                "inputs": sum(r.inputs for r in inside if r.ok),
                "status_429": sum(1 for r in inside if r.status == 429),
            }
        )
        n += 1
    return windows


def summary(requests: Sequence[Request], interval_s: float) -> dict[str, float | int | None]:
    ok = [r for r in requests if r.ok]
    first = requests[0].received if requests else 0.0
    throttled = [r for r in requests if r.status == 429]
    return {
        "requests": len(requests),
        "requests_ok": len(ok),
        "inputs_upserted": sum(r.inputs for r in ok),
        "mean_inputs_per_request": sum(r.inputs for r in ok) / len(ok) if ok else None,
        "status_429": len(throttled),
        "status_429_after_first_window": sum(
            1 for r in throttled if r.received >= first + interval_s
        ),
        "status_429_share": len(throttled) / len(requests) if requests else None,
        "other_errors": sum(1 for r in requests if not r.ok and r.status != 429),
        "first_request_at": first if requests else None,
        "last_answer_at": max((r.answered for r in requests), default=None),
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
