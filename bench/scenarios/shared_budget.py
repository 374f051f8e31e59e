"""2. Shared budget: several instances in one consumer group behind one HubSpot app limit.

The instances share the token, so HubSpot counts their requests in one window; each learns
the others' use from X-HubSpot-RateLimit-Remaining. Shows they fill the window together
(aggregate sustained records/s against 1,900) without overrunning it (share of 429s).
The instances join the group before the backlog is produced, so the figures are about
sharing the budget, not about the start-up rebalance.
"""

from __future__ import annotations

from bench.report import ScenarioResult, at_least, below, info, number, percent
from bench.scenarios.api_bound import figures, sustained_rate, windows_shown
from bench.scenarios.common import Context, run_backlog
from bench.workload import distinct_ids, skewed_events

NAME = "shared_budget"
TARGET_FRACTION = 0.90
TARGET_429_SHARE = 0.01
PARTITIONS = 6


def run(ctx: Context) -> ScenarioResult:
    mode = ctx.mode
    limit = mode.limit
    events = skewed_events(mode.shared_events, mode.shared_pool, seed=3)
    ctx.log(
        f"{NAME}: {len(events):,} events, {distinct_ids(events):,} distinct ids, "
        f"{mode.shared_instances} instances"
    )
    run_ = run_backlog(
        ctx,
        f"{NAME}-service",
        events,
        kind="service",
        limit=limit,
        latency_ms=mode.latency_ms,
        jitter_ms=mode.jitter_ms,
        partitions=PARTITIONS,
        instances=mode.shared_instances,
        produce_first=False,
    )
    figs = figures(run_, limit.requests, limit.interval_s)
    ctx.charts[f"Shared budget: {mode.shared_instances} instances"] = run_.requests
    rate = sustained_rate(figs)
    fraction = rate / limit.records_per_s if rate is not None else None
    share = figs["status_429_share"]
    per_instance = ", ".join(f"{n:.0f}" for n in run_.instance_requests)
    result = ScenarioResult(
        NAME,
        config={
            "events": len(events),
            "distinct_ids": distinct_ids(events),
            "id_pool": mode.shared_pool,
            "instances": mode.shared_instances,
            "partitions": PARTITIONS,
            "limit": f"{limit.requests} per {limit.interval_ms} ms (one token, shared)",
            "limit_records_per_s": limit.records_per_s,
            "latency_ms": mode.latency_ms,
            "jitter_ms": mode.jitter_ms,
        },
        measured={"service": figs},
    )
    result.checks = [
        at_least(
            f"aggregate records/s sustained (of {limit.records_per_s:,.0f})",
            fraction,
            TARGET_FRACTION,
            f"{number(rate)} ({percent(fraction)})",
            f">= {TARGET_FRACTION:.0%} of the limit",
        ),
        below(
            "429s as a share of requests",
            share,
            TARGET_429_SHARE,
            f"{percent(share)} ({figs['status_429']}/{figs['requests']})",
            f"< {TARGET_429_SHARE:.0%}",
        ),
        info("requests per instance", per_instance),
        info("requests per whole window", windows_shown(figs["aligned_windows"])),
        info(
            "mean inputs per request",
            number(figs["mean_inputs_per_request"], 2),
            figs["mean_inputs_per_request"],
        ),
    ]
    return result
