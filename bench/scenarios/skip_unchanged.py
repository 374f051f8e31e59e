"""6. SKIP_UNCHANGED: a backlog of whole snapshots, mostly repeating what HubSpot holds.

One stream, two runs side by side under the same 190 requests / 10 s: the service with
SKIP_UNCHANGED off, then on (fresh topics, group and emulator each). First every id's first
snapshot, finished before the measured interval (HubSpot holds the ids, as in a service
that has been running); then, measured, a backlog of snapshots of random ids, 80% equal to
the id's previous one, the rest changing one or two values. Shows what the budget buys each
way: events absorbed per request and events/s end to end; and that HubSpot ends up holding
every id's last snapshot both ways.
"""

from __future__ import annotations

from typing import Any

from bench.report import Check, ScenarioResult, info, number, percent
from bench.scenarios.common import BacklogRun, Context, Read, run_backlog
from bench.workload import SnapshotStream, snapshot_stream

NAME = "skip_unchanged"
UNCHANGED_SHARE = 0.8
SKIPPED = "subscription_upserter_skip_unchanged_inputs_total"
LEFT_OUT = "subscription_upserter_skip_unchanged_properties_total"


def figures(run: BacklogRun, stream: SnapshotStream) -> dict[str, Any]:
    requests = run.requests
    sent = [r for r in requests if r.ok]
    return {
        **run.to_json(),
        "requests": len(requests),
        "requests_ok": len(sent),
        "inputs_sent": sum(r.inputs for r in sent),
        "events_per_request": run.results / len(requests) if requests else None,
        "inputs_skipped": run.metrics.get(SKIPPED),
        "properties_left_out": run.metrics.get(LEFT_OUT),
        "hubspot_holds_last_snapshots": holds_last(run, stream),
    }


def holds_last(run: BacklogRun, stream: SnapshotStream) -> bool:
    """Whether HubSpot holds every id's last snapshot, value for value."""
    store = run.store
    return len(store) == len(stream.last) and all(
        sub_id in store and store[sub_id]["properties"] == {**store[sub_id]["properties"], **last}
        for sub_id, last in stream.last.items()
    )


def run(ctx: Context) -> ScenarioResult:
    mode = ctx.mode
    stream = snapshot_stream(mode.skip_ids, mode.skip_repeats, UNCHANGED_SHARE)
    ctx.log(
        f"{NAME}: {mode.skip_ids:,} ids' first snapshots, then {len(stream.events):,} "
        f"snapshots, {stream.unchanged:,} equal to their id's previous one"
    )
    read = Read(metrics=(SKIPPED, LEFT_OUT), store=True)
    common: dict[str, Any] = {
        "kind": "service",
        "limit": mode.limit,
        "latency_ms": mode.latency_ms,
        "jitter_ms": mode.jitter_ms,
        "read": read,
        "produce_first": False,
        "warm_up": stream.warm_up,
    }
    off_run = run_backlog(ctx, f"{NAME}-off", stream.events, **common)
    on_run = run_backlog(
        ctx, f"{NAME}-on", stream.events, settings={"SKIP_UNCHANGED": "true"}, **common
    )
    off, on = figures(off_run, stream), figures(on_run, stream)
    result = ScenarioResult(
        NAME,
        config={
            "events": len(stream.events),
            "ids": mode.skip_ids,
            "repeats": mode.skip_repeats,
            "unchanged_share_of_repeats": UNCHANGED_SHARE,
            "unchanged_events": stream.unchanged,
            "limit": f"{mode.limit.requests} per {mode.limit.interval_ms} ms",
            "latency_ms": mode.latency_ms,
            "jitter_ms": mode.jitter_ms,
            "batch_max_wait_ms": mode.batch_max_wait_ms,
        },
        measured={"off": off, "on": on},
    )
    result.checks = checks(off, on, len(stream.events))
    ctx.charts["SKIP_UNCHANGED off"] = off_run.requests
    ctx.charts["SKIP_UNCHANGED on"] = on_run.requests
    return result


def checks(off: dict[str, Any], on: dict[str, Any], events: int) -> list[Check]:
    def ratio(key: str) -> float | None:
        a, b = on[key], off[key]
        return a / b if a is not None and b else None

    both_hold = off["hubspot_holds_last_snapshots"] and on["hubspot_holds_last_snapshots"]
    skipped = on["inputs_skipped"]
    return [
        info(
            "events per request: off / on",
            f"{number(off['events_per_request'], 1)} / {number(on['events_per_request'], 1)} "
            f"x{number(ratio('events_per_request'), 1)}",
            on["events_per_request"],
        ),
        info(
            "events/s: off / on",
            f"{number(off['events_per_s'])} / {number(on['events_per_s'])} "
            f"x{number(ratio('events_per_s'), 1)}",
            on["events_per_s"],
        ),
        info("requests: off / on", f"{off['requests']:,} / {on['requests']:,}", on["requests"]),
        info(
            "inputs sent: off / on",
            f"{off['inputs_sent']:,} / {on['inputs_sent']:,}",
            on["inputs_sent"],
        ),
        info(
            "on: inputs not sent; properties left out",
            f"{number(skipped)} ({percent(skipped / events if skipped else None)} of events); "
            f"{number(on['properties_left_out'])}",
            skipped,
        ),
        Check(
            "HubSpot holds every id's last snapshot",
            "yes, both" if both_hold else "NO",
            1.0 if both_hold else 0.0,
            "off and on",
            bool(both_hold),
        ),
    ]
