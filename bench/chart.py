"""`throughput.png`: records/s and requests per 10 s over time, against the limit.

One column per run (from the emulator's request log, i.e. as HubSpot saw the traffic): on
top, inputs upserted per second (1-s bins, and the 10-s rolling mean) against the records/s
ceiling; below, requests counted in the trailing window against the window's limit, with
every 429 marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bench.analysis import Request
from bench.modes import Limit


def _per_second(requests: Sequence[Request], start: float, seconds: int) -> list[float]:
    bins = [0.0] * seconds
    for r in requests:
        n = int(r.received - start)
        if r.ok and 0 <= n < seconds:
            bins[n] += r.inputs
    return bins


def _rolling_mean(values: Sequence[float], width: int) -> list[float]:
    out, total = [], 0.0
    for n, value in enumerate(values):
        total += value
        if n >= width:
            total -= values[n - width]
        out.append(total / min(n + 1, width))
    return out


def _trailing_counts(
    requests: Sequence[Request], start: float, end: float, interval_s: float, step: float
) -> tuple[list[float], list[int]]:
    stamps = [r.received - start for r in requests if r.counted]
    xs, ys = [], []
    low = 0
    high = 0
    t = 0.0
    while t <= end - start + step:
        while high < len(stamps) and stamps[high] <= t:
            high += 1
        while low < high and stamps[low] <= t - interval_s:
            low += 1
        xs.append(t)
        ys.append(high - low)
        t += step
    return xs, ys


def plot(path: Path, panels: Mapping[str, Sequence[Request]], limit: Limit) -> Path | None:
    """Draw one column per panel; returns the path, or None when there is nothing to draw."""
    panels = {title: list(reqs) for title, reqs in panels.items() if reqs}
    if not panels:
        return None
    fig, axes = plt.subplots(
        2, len(panels), figsize=(5.5 * len(panels), 7), squeeze=False, sharex="col"
    )
    for column, (title, requests) in enumerate(panels.items()):
        start = requests[0].received
        end = max(r.answered for r in requests)
        seconds = max(1, int(end - start) + 1)
        per_s = _per_second(requests, start, seconds)
        top, bottom = axes[0][column], axes[1][column]
        xs = [n + 0.5 for n in range(seconds)]
        top.bar(xs, per_s, width=1.0, color="#9ecae1", label="inputs upserted per second")
        width = max(1, round(limit.interval_s))
        top.plot(xs, _rolling_mean(per_s, width), color="#08519c", label=f"{width}-s rolling mean")
        top.axhline(limit.records_per_s, color="#d62728", linestyle="--",
                    label=f"limit {limit.records_per_s:,.0f} records/s")  # fmt: skip
        top.set_title(title)
        top.set_ylabel("records/s")
        top.legend(loc="lower right", fontsize=8)
        tx, ty = _trailing_counts(requests, start, end, limit.interval_s, 0.1)
        bottom.plot(tx, ty, color="#31a354", label=f"requests in the last {limit.interval_s:g} s")
        bottom.axhline(limit.requests, color="#d62728", linestyle="--",
                       label=f"limit {limit.requests}")  # fmt: skip
        throttled = [r.received - start for r in requests if r.status == 429]
        if throttled:
            bottom.scatter(throttled, [limit.requests] * len(throttled), marker="x",
                           color="#d62728", zorder=3, label=f"429 ({len(throttled)})")  # fmt: skip
        bottom.set_xlabel("seconds since the first request")
        bottom.set_ylabel(f"requests per {limit.interval_s:g} s")
        bottom.set_ylim(0, limit.requests * 1.25)
        bottom.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
