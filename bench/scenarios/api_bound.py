"""1. API-bound: a large backlog with repeated ids against HubSpot's 190 requests per 10 s.

Shows the service keeps the budget full (sustained records/s against 1,900), sends full
requests (mean inputs per request), and never overruns the window once it has adapted (429s
after the first window). The baseline loop runs on the same events for comparison.
"""

from __future__ import annotations

from typing import Any

from bench import analysis
from bench.report import Check, ScenarioResult, at_least, below, info, number, percent
from bench.scenarios.common import BacklogRun, Context, run_backlog
from bench.workload import distinct_ids, skewed_events

NAME = "api_bound"
TARGET_FRACTION = 0.97
TARGET_MEAN_INPUTS = 99.0


def figures(run: BacklogRun, limit_requests: int, interval_s: float) -> dict[str, Any]:
    """Everything measured about one run against the limited emulator."""
    requests = run.requests
    summary = analysis.summary(requests, interval_s)
    sustained = analysis.sustained(requests, limit_requests)
    first, last = summary["first_request_at"], run.last_result_at
    span = (last - first) if first is not None and last is not None else None
    return {
        **run.to_json(),
        **summary,
        "sustained": sustained,
        "run_span_s": span,
        "events_per_s_run": run.results / span if span else None,
        "records_per_s_run": (summary["inputs_upserted"] or 0) / span if span else None,
        "aligned_windows": analysis.aligned_windows(requests, interval_s),
    }


def run(ctx: Context) -> ScenarioResult:
    mode = ctx.mode
    limit = mode.limit
    events = skewed_events(mode.api_events, mode.api_pool, seed=1)
    ctx.log(f"{NAME}: {len(events):,} events, {distinct_ids(events):,} distinct ids")
    common: dict[str, Any] = {
        "limit": limit,
        "latency_ms": mode.latency_ms,
        "jitter_ms": mode.jitter_ms,
    }
    service_run = run_backlog(ctx, f"{NAME}-service", events, kind="service", **common)
    baseline_run = run_backlog(
        ctx, f"{NAME}-baseline", events, kind="baseline", max_seconds=mode.baseline_max_s, **common
    )
    service = figures(service_run, limit.requests, limit.interval_s)
    baseline = figures(baseline_run, limit.requests, limit.interval_s)
    result = ScenarioResult(
        NAME,
        config={
            "events": len(events),
            "distinct_ids": distinct_ids(events),
            "id_pool": mode.api_pool,
            "limit": f"{limit.requests} per {limit.interval_ms} ms",
            "limit_records_per_s": limit.records_per_s,
            "latency_ms": mode.latency_ms,
            "jitter_ms": mode.jitter_ms,
            "batch_max_wait_ms": mode.batch_max_wait_ms,
            "baseline_max_s": mode.baseline_max_s,
        },
        measured={"service": service, "baseline": baseline, "ratio": ratios(service, baseline)},
    )
    result.checks = checks(service, baseline, limit.records_per_s)
    ctx.charts["API-bound: the service"] = service_run.requests
    ctx.charts["API-bound: baseline loop"] = baseline_run.requests
    return result


def sustained_rate(figs: dict[str, Any]) -> float | None:
    value = figs["sustained"]["records_per_s"]
    return float(value) if value is not None else None


def windows_shown(windows: list[dict[str, Any]], most: int = 6) -> str:
    """Counted requests in each whole window from the first request, e.g. `190, 4, 185`."""
    counts = [str(w["requests"]) for w in windows[:most]]
    return ", ".join(counts) + (", ..." if len(windows) > most else "") if counts else "n/a"


def ratios(service: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        "records_per_s_sustained": ratio(sustained_rate(service), sustained_rate(baseline)),
        "records_per_s_run": ratio(service["records_per_s_run"], baseline["records_per_s_run"]),
        "events_per_s_run": ratio(service["events_per_s_run"], baseline["events_per_s_run"]),
    }


def checks(service: dict[str, Any], baseline: dict[str, Any], ceiling: float) -> list[Check]:
    rate = sustained_rate(service)
    fraction = rate / ceiling if rate is not None else None
    base_rate = sustained_rate(baseline) or baseline["records_per_s_run"]
    base_fraction = base_rate / ceiling if base_rate is not None else None
    mean_inputs = service["mean_inputs_per_request"]
    late_429 = service["status_429_after_first_window"]
    ratio = rate / base_rate if rate is not None and base_rate else None
    event_ratio = ratios(service, baseline)["events_per_s_run"]
    return [
        at_least(
            f"records/s sustained (of {ceiling:,.0f})",
            fraction,
            TARGET_FRACTION,
            f"{number(rate)} ({percent(fraction)})",
            f">= {TARGET_FRACTION:.0%} of the limit",
        ),
        at_least(
            "mean inputs per request",
            mean_inputs,
            TARGET_MEAN_INPUTS,
            number(mean_inputs, 2),
            f">= {TARGET_MEAN_INPUTS:.0f}",
        ),
        below("429s after the first window", late_429, 1, str(late_429), "0"),
        info("429s in total", str(service["status_429"]), service["status_429"]),
        info("requests per whole window", windows_shown(service["aligned_windows"])),
        info(
            "events/s (coalescing: events > records)",
            number(service["events_per_s_run"]),
            service["events_per_s_run"],
        ),
        info(
            "records/s over the whole run",
            number(service["records_per_s_run"]),
            service["records_per_s_run"],
        ),
        info(
            "baseline records/s (service x)",
            f"{number(base_rate)} ({percent(base_fraction)}) x{number(ratio, 1)}",
            base_rate,
        ),
        info(
            "baseline events/s (service x)",
            f"{number(baseline['events_per_s_run'])} x{number(event_ratio, 1)}",
            baseline["events_per_s_run"],
        ),
    ]
