"""4. Latency: events of distinct ids produced at half the budget (950 records/s).

Each event's latency runs from its Kafka timestamp (set when the bench produced it) to the
Kafka timestamp of its result record (set when the service published it). The target allows
one full batch wait, two requests' worth of emulator latency and 100 ms of slack.
"""

from __future__ import annotations

import time

from bench import analysis
from bench.kafka_io import TopicWatch, new_topics, read_results
from bench.procs import Emulator, Service, service_env
from bench.report import ScenarioResult, below, info, number
from bench.scenarios.common import Context
from bench.workload import distinct_events, produce_paced

NAME = "latency"
PARTITIONS = 6
SLACK_MS = 100


def ms(seconds: float | None) -> float | None:
    return seconds * 1000 if seconds is not None else None


def run(ctx: Context) -> ScenarioResult:
    mode = ctx.mode
    limit = mode.limit
    rate = limit.records_per_s / 2
    count = int(rate * mode.latency_seconds)
    target_ms = mode.batch_max_wait_ms + 2 * mode.latency_ms + SLACK_MS
    run_dir = ctx.work_dir / NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    topics = new_topics(ctx.bootstrap, NAME, PARTITIONS)
    events = distinct_events(count, prefix="lat")
    emulator = Emulator(limit, mode.latency_ms, mode.jitter_ms, run_dir / "emulator.log")
    service: Service | None = None
    try:
        env = service_env(ctx.bootstrap, topics, emulator, mode.batch_max_wait_ms)
        service = Service(env, run_dir / "service.log", ctx.code)
        service.wait_ready()
        ctx.log(f"{NAME}: producing {count:,} events at {rate:,.0f}/s")
        produced = produce_paced(ctx.bootstrap, topics.input, events, rate)
        watch = TopicWatch(ctx.bootstrap, topics.output)
        try:
            results = watch.wait_for(count, time.monotonic() + 120)
        finally:
            watch.close()
        requests = analysis.requests_from_log(emulator.control.requests())
    finally:
        code = service.stop() if service is not None else None
        emulator.stop()
    stamps = read_results(ctx.bootstrap, topics.output)
    latencies = sorted(
        (s.timestamp_ms - produced.sent[s.source]) / 1000
        for s in stamps
        if s.source in produced.sent
    )
    summary = analysis.summary(requests, limit.interval_s)
    p50 = analysis.percentile(latencies, 0.50) if latencies else None
    p90 = analysis.percentile(latencies, 0.90) if latencies else None
    p99 = analysis.percentile(latencies, 0.99) if latencies else None
    worst = latencies[-1] if latencies else None
    result = ScenarioResult(
        NAME,
        config={
            "rate_per_s": rate,
            "seconds": mode.latency_seconds,
            "events": count,
            "limit": f"{limit.requests} per {limit.interval_ms} ms",
            "latency_ms": mode.latency_ms,
            "jitter_ms": mode.jitter_ms,
            "batch_max_wait_ms": mode.batch_max_wait_ms,
            "target_p99_ms": target_ms,
        },
        measured={
            "produced": len(produced.sent),
            "produce_errors": produced.errors,
            "produce_seconds": produced.seconds,
            "results": results,
            "matched": len(latencies),
            "p50_ms": ms(p50),
            "p90_ms": ms(p90),
            "p99_ms": ms(p99),
            "max_ms": ms(worst),
            "service_exit_code": code,
            **summary,
        },
    )
    result.checks = [
        info("p50 produce -> result", number(ms(p50), 0, " ms"), ms(p50)),
        below(
            "p99 produce -> result",
            ms(p99),
            target_ms,
            number(ms(p99), 0, " ms"),
            f"< {target_ms:,} ms (wait+2xlat+100)",
        ),
        info(
            "max; mean inputs per request",
            f"{number(ms(worst), 0, ' ms')}; {number(summary['mean_inputs_per_request'], 1)}",
        ),
    ]
    return result
