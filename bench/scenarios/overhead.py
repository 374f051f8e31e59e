"""3. Overhead: HubSpot answers instantly and without limit, so the service is the bottleneck.

Shows what the service costs: events/s end to end (from the moment it is ready, with the
backlog already in Kafka, to the last result's timestamp), CPU seconds of its process per
100,000 events, and peak RSS (VmHWM); the median of several runs. The emulator's and the
broker's CPU seconds over the same interval show whether they, not the service, were the
limit on this machine. The baseline loop runs once on the same events for comparison.
The same backlog runs a second time as Avro records read through a Schema Registry and the
billing example's mapping (bench/registry_input.py), the same number of runs, reported beside
the JSON figures: what decoding and mapping cost per event.
With a local Jaeger built, each run is followed by one with tracing on, sampling 10% of the
batches and exporting them over OTLP to that Jaeger (bench/tracing.py), so that the cost of
tracing shows side by side with tracing off.
The service's batch window is short here (`overhead_batch_max_wait_ms`, 100 ms): the backlog
fills every batch at once, and the default 1 s window would only leave the service idle at
the end of the backlog, waiting to fill the last batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.procstat import cpu_seconds
from bench.registry_input import EMULATOR_CONFIG, avro_backlog, avro_settings, local_registry
from bench.report import Check, ScenarioResult, at_least, info, number
from bench.scenarios.common import BacklogRun, Context, median_run, run_backlog, spread
from bench.tracing import NOT_BUILT, local_jaeger, traced_env, traces_stored
from bench.workload import Event, distinct_ids, skewed_events
from devstack.jaeger import LocalJaeger

NAME = "overhead"
TARGET_EVENTS_PER_S = 25_000
TRACED_RATIO = 0.1


@dataclass
class TracedRun:
    """A run with tracing on: the run, the traces Jaeger holds of it, Jaeger's CPU seconds."""

    run: BacklogRun
    traces: int
    jaeger_cpu_s: float


def _figures(run: BacklogRun) -> dict[str, Any]:
    data = run.to_json()
    elapsed = run.elapsed_s
    data["emulator_cpu_share"] = run.emulator_cpu_s / elapsed if elapsed else None
    data["service_cpu_share"] = run.cpu_total_s / elapsed if elapsed else None
    data["broker_cpu_share"] = (
        run.broker_cpu_s / elapsed if elapsed and run.broker_cpu_s is not None else None
    )
    requests = run.requests
    ok = [r for r in requests if r.ok]
    data["requests"] = len(requests)
    data["mean_inputs_per_request"] = sum(r.inputs for r in ok) / len(ok) if ok else None
    return data


def _service_run(
    ctx: Context, label: str, events: Sequence[Event], extra: dict[str, str] | None = None
) -> BacklogRun:
    return run_backlog(
        ctx, label, events, kind="service", limit=None, latency_ms=0, jitter_ms=0,
        batch_max_wait_ms=ctx.mode.overhead_batch_max_wait_ms, settings=extra,
    )  # fmt: skip


def _traced_run(ctx: Context, n: int, events: Sequence[Event], jaeger: LocalJaeger) -> TracedRun:
    label = f"{NAME}-traced-{n + 1}"
    pid = jaeger.pid or 0
    before = cpu_seconds(pid)
    found = _service_run(ctx, label, events, traced_env(jaeger.endpoints, label, TRACED_RATIO))
    used = cpu_seconds(pid) - before
    jaeger.endpoints.query().wait_for_traces(label, timeout_s=15)
    return TracedRun(found, traces_stored(jaeger.endpoints, label), round(used, 3))


def _service_runs(
    ctx: Context, events: Sequence[Event]
) -> tuple[list[BacklogRun], list[TracedRun]]:
    """The runs with tracing off and, taking turns with them, those with tracing on."""
    plain: list[BacklogRun] = []
    traced: list[TracedRun] = []
    with local_jaeger(ctx.work_dir) as jaeger:
        if jaeger is None:
            ctx.log(f"{NAME}: no run with tracing on: {NOT_BUILT}")
        for n in range(ctx.mode.overhead_runs):
            plain.append(_service_run(ctx, f"{NAME}-service-{n + 1}", events))
            if jaeger is not None:
                traced.append(_traced_run(ctx, n, events, jaeger))
    return plain, traced


def _tracing_checks(
    plain: BacklogRun, traced: list[TracedRun]
) -> tuple[list[Check], dict[str, Any]]:
    """The figures with tracing on, beside those of `plain` (off), and their JSON."""
    label = f"traced {TRACED_RATIO:.0%}"
    if not traced:
        return [info(label, NOT_BUILT)], {"skipped": NOT_BUILT}
    median = median_run([t.run for t in traced])
    chosen = next(t for t in traced if t.run is median)
    rate, cpu = median.events_per_s, median.cpu_per_100k_events
    runs_note = f" (median of {len(traced)})" if len(traced) > 1 else ""
    every = " / ".join(number(t.run.events_per_s) for t in traced)
    measured = {
        **_figures(median),
        "sampler": f"parentbased_traceidratio {TRACED_RATIO}",
        "traces_in_jaeger": chosen.traces,
        "jaeger_cpu_s": chosen.jaeger_cpu_s,
        "runs_events_per_s": spread([t.run.events_per_s or 0.0 for t in traced]),
        "all_runs": [_figures(t.run) for t in traced],
    }
    rate_ratio = _ratio(rate, plain.events_per_s)
    cpu_ratio = _ratio(cpu, plain.cpu_per_100k_events)
    checks = [
        info(f"events/s, {label}{runs_note}", number(rate), rate),
        info(f"events/s of every run, {label}", every),
        info(f"service CPU s per 100k, {label}", number(cpu, 2), cpu),
        info(f"service peak RSS (VmHWM), {label}", number(median.peak_rss_mib[0], 0, " MiB")),
        info(f"{label} / untraced: events/s; CPU", f"x{rate_ratio:.3f}; x{cpu_ratio:.3f}"
             if rate_ratio and cpu_ratio else "n/a", rate_ratio),
        info(
            "traces in Jaeger (of requests); its CPU s",
            f"{chosen.traces:,} (of {len(median.requests):,}); {number(chosen.jaeger_cpu_s, 2)}",
            chosen.traces,
        ),
    ]  # fmt: skip
    return checks, measured


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def run(ctx: Context) -> ScenarioResult:
    mode = ctx.mode
    events = skewed_events(mode.overhead_events, mode.overhead_pool, seed=4)
    ctx.log(f"{NAME}: {len(events):,} events, {distinct_ids(events):,} distinct ids")
    runs, traced = _service_runs(ctx, events)
    avro_runs = _avro_runs(ctx, events)
    baseline_run = run_backlog(
        ctx, f"{NAME}-baseline", events, kind="baseline",
        limit=None, latency_ms=0, jitter_ms=0, max_seconds=mode.baseline_max_s,
    )  # fmt: skip
    chosen = median_run(runs)
    service = _figures(chosen)
    tracing_checks, tracing_measured = _tracing_checks(chosen, traced)
    baseline = _figures(baseline_run)
    rates = [r.events_per_s or 0.0 for r in runs]
    service["runs_events_per_s"] = spread(rates)
    service["all_runs"] = [_figures(r) for r in runs]
    avro = _figures(median_run(avro_runs))
    avro["runs_events_per_s"] = spread([r.events_per_s or 0.0 for r in avro_runs])
    avro["all_runs"] = [_figures(r) for r in avro_runs]
    rate, base_rate = chosen.events_per_s, baseline_run.events_per_s
    cpu, base_cpu = chosen.cpu_per_100k_events, baseline_run.cpu_per_100k_events
    rate_ratio = rate / base_rate if rate is not None and base_rate else None
    cpu_ratio = base_cpu / cpu if cpu and base_cpu is not None else None
    elapsed = chosen.elapsed_s
    result = ScenarioResult(
        NAME,
        config={
            "events": len(events),
            "distinct_ids": distinct_ids(events),
            "id_pool": mode.overhead_pool,
            "runs": mode.overhead_runs,
            "batch_max_wait_ms": mode.overhead_batch_max_wait_ms,
            "emulator": "unlimited, 0 ms latency, no write history",
            "avro_mapping": "the same keys as billing Avro events, both schema versions, "
            "through a local registry and devstack/examples/billing-subscription.mapping.yaml",
            "traced_runs": f"{len(traced)}, sampling {TRACED_RATIO}, to a local Jaeger",
        },
        measured={
            "service": service,
            "avro_mapping": avro,
            "service_tracing_on": tracing_measured,
            "baseline": baseline,
            "ratio": {"events_per_s": rate_ratio, "cpu_per_event_baseline_over_service": cpu_ratio},
        },
    )
    runs_note = f" (median of {len(runs)})" if len(runs) > 1 else ""
    result.checks = [
        at_least(
            f"events/s end to end{runs_note}",
            rate,
            TARGET_EVENTS_PER_S,
            number(rate),
            f">= {TARGET_EVENTS_PER_S:,}",
        ),
        info("events/s of every run", " / ".join(number(r.events_per_s) for r in runs)),
        info("service CPU s per 100k events", number(cpu, 2), cpu),
        info("service peak RSS (VmHWM)", number(chosen.peak_rss_mib[0], 0, " MiB")),
        info(
            "emulator / broker CPU s (wall s)",
            f"{number(chosen.emulator_cpu_s, 1)} / {number(chosen.broker_cpu_s, 1)} "
            f"({number(elapsed, 1)})",
            chosen.emulator_cpu_s,
        ),
        info(
            f"machine busy (cores of {os.cpu_count()})",
            number(chosen.machine_busy_cores, 2),
            chosen.machine_busy_cores,
        ),
        info("mean inputs per request", number(service["mean_inputs_per_request"], 2)),
        *_avro_checks(chosen, median_run(avro_runs), avro_runs),
        info(
            "baseline events/s (service x)",
            f"{number(base_rate)} x{number(rate_ratio, 1)}",
            base_rate,
        ),
        info(
            "baseline CPU s per 100k (service x less)",
            f"{number(base_cpu, 2)} x{number(cpu_ratio, 1)}",
            base_cpu,
        ),
        *tracing_checks,
    ]
    return result


def _avro_runs(ctx: Context, events: list[Event]) -> list[BacklogRun]:
    """The same keys as Avro billing events, through a local registry and the mapping."""
    with local_registry(ctx.work_dir / f"{NAME}-registry") as url:
        backlog = avro_backlog(events, url)
        ctx.log(f"{NAME}: the backlog as Avro billing events ({len(backlog):,})")
        return [
            run_backlog(
                ctx, f"{NAME}-avro-{n + 1}", backlog, kind="service",
                limit=None, latency_ms=0, jitter_ms=0,
                batch_max_wait_ms=ctx.mode.overhead_batch_max_wait_ms,
                settings=avro_settings(url), emulator_config=EMULATOR_CONFIG,
            )
            for n in range(ctx.mode.overhead_runs)
        ]  # fmt: skip


def _avro_checks(json_run: BacklogRun, avro_run: BacklogRun, runs: list[BacklogRun]) -> list[Check]:
    rate, json_rate = avro_run.events_per_s, json_run.events_per_s
    cpu, json_cpu = avro_run.cpu_per_100k_events, json_run.cpu_per_100k_events
    share = rate / json_rate if rate is not None and json_rate else None
    extra_cpu = cpu / json_cpu if cpu is not None and json_cpu else None
    median = f" (median of {len(runs)})" if len(runs) > 1 else ""
    return [
        info(
            f"Avro + mapping events/s{median} (of JSON's)",
            f"{number(rate)} ({number(share, 2)})",
            rate,
        ),
        info(
            "Avro + mapping events/s of every run", " / ".join(number(r.events_per_s) for r in runs)
        ),
        info(
            "Avro + mapping CPU s per 100k (JSON x)",
            f"{number(cpu, 2)} x{number(extra_cpu, 1)}",
            cpu,
        ),
        info("Avro + mapping peak RSS (VmHWM)", number(avro_run.peak_rss_mib[0], 0, " MiB")),
    ]
