"""How big each scenario is in full, quick and smoke mode.

Full mode is the one to quote; quick mode keeps every scenario meaningful (the API-bound
backlog still spans more than two rate-limit windows) within about five minutes; smoke mode
only checks that everything runs and writes its files, on a small scaled-down budget.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """The emulator's burst window: `requests` per `interval_ms`, 100 inputs per request."""

    requests: int = 190
    interval_ms: int = 10_000
    max_inputs: int = 100

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000

    @property
    def records_per_s(self) -> float:
        """The most inputs per second the limit allows (1,900 for HubSpot's 190 per 10 s)."""
        return self.requests * self.max_inputs / self.interval_s

    @property
    def flag(self) -> str:
        return f"{self.requests}/{self.interval_ms}"


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    limit: Limit
    latency_ms: int
    jitter_ms: int
    batch_max_wait_ms: int
    # 1. API-bound: backlog size and id pool (drawn with a Zipf-like skew).
    api_events: int
    api_pool: int
    # 2. Shared budget: three instances.
    shared_events: int
    shared_pool: int
    shared_instances: int
    # 3. Overhead: events per run, runs (median reported), and the batch window: short, as
    # the backlog fills every batch at once and a long window would only idle at its end.
    overhead_events: int
    overhead_pool: int
    overhead_runs: int
    overhead_batch_max_wait_ms: int
    # 4. Latency: paced production at half the budget, for this long.
    latency_seconds: float
    # 5. Baseline: longest a baseline run may take (its rate is measured over what it did).
    baseline_max_s: float
    # 6. SKIP_UNCHANGED: each id's first snapshot (a warm-up, not measured), then a backlog of
    # snapshots of which 80% equal the id's last one; run with the setting off and on.
    skip_ids: int
    skip_repeats: int


FULL = Mode(
    name="full",
    limit=Limit(),
    latency_ms=150,
    jitter_ms=50,
    batch_max_wait_ms=1_000,
    api_events=150_000,
    api_pool=60_000,
    shared_events=200_000,
    shared_pool=80_000,
    shared_instances=3,
    overhead_events=200_000,
    overhead_pool=60_000,
    overhead_runs=3,
    overhead_batch_max_wait_ms=100,
    latency_seconds=120,
    baseline_max_s=150,
    skip_ids=50_000,
    skip_repeats=150_000,
)

QUICK = Mode(
    name="quick",
    limit=Limit(),
    latency_ms=150,
    jitter_ms=50,
    batch_max_wait_ms=1_000,
    api_events=60_000,
    api_pool=60_000,
    shared_events=70_000,
    shared_pool=60_000,
    shared_instances=3,
    overhead_events=100_000,
    overhead_pool=60_000,
    overhead_runs=3,
    overhead_batch_max_wait_ms=100,
    latency_seconds=40,
    baseline_max_s=40,
    skip_ids=20_000,
    skip_repeats=60_000,
)

# Smoke: a budget scaled down ten times in time (19 per second), so that a few thousand
# events still span several windows; figures are not meaningful, only the plumbing is.
SMOKE = Mode(
    name="smoke",
    limit=Limit(requests=19, interval_ms=1_000),
    latency_ms=20,
    jitter_ms=10,
    batch_max_wait_ms=200,
    api_events=4_000,
    api_pool=4_000,
    shared_events=4_000,
    shared_pool=4_000,
    shared_instances=3,
    overhead_events=3_000,
    overhead_pool=3_000,
    overhead_runs=1,
    overhead_batch_max_wait_ms=100,
    latency_seconds=4,
    baseline_max_s=8,
    skip_ids=1_000,
    skip_repeats=4_000,
)

MODES = {mode.name: mode for mode in (FULL, QUICK, SMOKE)}
