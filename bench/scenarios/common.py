"""What every scenario shares: the run context, and one backlog run measured end to end.

A backlog run: fresh topics and group, a fresh emulator, the events, one or more service
instances (or the baseline loop), then wait until every event has its result (counted from
the result topic's high watermarks), and measure CPU, memory, timestamps and the emulator's
request log before stopping everything.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bench import analysis
from bench.build import Code
from bench.kafka_io import RunTopics, TopicWatch, new_topics
from bench.modes import Limit, Mode
from bench.procs import Baseline, Emulator, Process, Service, service_env, stop_all
from bench.procstat import cpu_seconds, machine_busy_seconds
from bench.workload import Event, produce_backlog
from devstack.emulator import RequestEntry
from devstack.emulator.client import StoredRecord

Kind = Literal["service", "baseline"]
_PROGRESS_EVERY_S = 10.0
_SETTLE_S = 3.0


@dataclass
class Context:
    bootstrap: str
    broker_pid: int | None
    mode: Mode
    work_dir: Path
    code: Code
    started: float = field(default_factory=time.monotonic)
    # Request logs for the throughput chart: panel title -> requests as HubSpot saw them.
    charts: dict[str, list[analysis.Request]] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"  [{time.monotonic() - self.started:6.1f}s] {message}", flush=True)


@dataclass
class BacklogRun:
    label: str
    kind: Kind
    events: int
    instances: int
    produce_seconds: float
    start_at: float  # wall time the measured interval starts (ready, or first request)
    ready_at: float
    results: int
    complete: bool
    last_result_at: float | None
    cpu_s: list[float]
    peak_rss_mib: list[float | None]
    emulator_cpu_s: float
    broker_cpu_s: float | None
    machine_busy_s: float
    log: list[RequestEntry]
    emulator_stats: dict[str, object]
    instance_requests: list[float]
    exit_codes: list[int]
    # asked for with `read`: the services' metrics (summed over instances) and HubSpot's
    # records (the emulator's store), read before they stop
    metrics: dict[str, float] = field(default_factory=dict)
    store: dict[str, StoredRecord] = field(default_factory=dict)

    @property
    def requests(self) -> list[analysis.Request]:
        return analysis.requests_from_log(self.log)

    @property
    def elapsed_s(self) -> float | None:
        if self.last_result_at is None:
            return None
        return max(self.last_result_at - self.start_at, 1e-9)

    @property
    def events_per_s(self) -> float | None:
        elapsed = self.elapsed_s
        return self.results / elapsed if elapsed else None

    @property
    def machine_busy_cores(self) -> float | None:
        """Cores busy on average over the interval, whatever ran (others' work included)."""
        elapsed = self.elapsed_s
        return self.machine_busy_s / elapsed if elapsed else None

    @property
    def cpu_total_s(self) -> float:
        return sum(self.cpu_s)

    @property
    def cpu_per_100k_events(self) -> float | None:
        return self.cpu_total_s / self.results * 100_000 if self.results else None

    def to_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "kind": self.kind,
            "events": self.events,
            "instances": self.instances,
            "results": self.results,
            "complete": self.complete,
            "produce_seconds": round(self.produce_seconds, 3),
            "elapsed_s": self.elapsed_s,
            "events_per_s": self.events_per_s,
            "cpu_s": self.cpu_s,
            "cpu_s_per_100k_events": self.cpu_per_100k_events,
            "peak_rss_mib": self.peak_rss_mib,
            "emulator_cpu_s": self.emulator_cpu_s,
            "broker_cpu_s": self.broker_cpu_s,
            "machine_busy_cores": self.machine_busy_cores,
            "instance_requests": self.instance_requests,
            "exit_codes": self.exit_codes,
            "emulator_stats": self.emulator_stats,
        }


def _fresh_emulator(
    emulator: Emulator,
    config: Mapping[str, object] | None,
    prepare: Callable[[Emulator], None] | None,
) -> Emulator:
    """`emulator` with `config` patched in and `prepare` done."""
    if config:
        emulator.control.configure(**config)
    if prepare is not None:
        prepare(emulator)
    return emulator


def run_backlog(
    ctx: Context,
    label: str,
    events: Sequence[Event],
    *,
    kind: Kind,
    limit: Limit | None,
    latency_ms: float,
    jitter_ms: float,
    partitions: int = 6,
    instances: int = 1,
    produce_first: bool = True,
    max_seconds: float = 900,
    batch_max_wait_ms: int | None = None,
    settings: Mapping[str, str] | None = None,
    emulator_config: Mapping[str, object] | None = None,
    prepare: Callable[[Emulator], None] | None = None,
    read: Read | None = None,
    warm_up: Sequence[Event] = (),
) -> BacklogRun:
    """Run `events` through `instances` processes of `kind`; see the module docstring.

    `batch_max_wait_ms`: the service's batch window (default: the mode's); `settings`: more
    settings of the service (e.g. INPUT_FORMAT and the mapping, SKIP_UNCHANGED);
    `emulator_config`: emulator settings to patch (e.g. the properties it knows); `prepare`:
    what to do to the fresh emulator before anything runs (e.g. create the records events
    refer to); `read`: what to read before stopping (metrics, the store).
    `produce_first`: the backlog is in the topic before the processes start, and the measured
    interval starts when they are ready; otherwise the processes join the group first (so no
    rebalance disturbs the run), the backlog follows, and the interval starts when producing
    does. `warm_up` (with produce_first False): events produced and finished before that
    interval starts; the run's figures leave them and their requests out.
    """
    assert not (warm_up and produce_first), "a warm-up goes before the backlog"
    run_dir = ctx.work_dir / label
    run_dir.mkdir(parents=True, exist_ok=True)
    topics = new_topics(ctx.bootstrap, label, partitions)
    emulator = _fresh_emulator(
        Emulator(limit, latency_ms, jitter_ms, run_dir / "emulator.log"), emulator_config, prepare
    )
    processes: list[Process] = []
    watch = TopicWatch(ctx.bootstrap, topics.output)
    try:
        produce_s = 0.0
        if produce_first:
            produce_s = produce_backlog(ctx.bootstrap, topics.input, events)
            ctx.log(f"{label}: {len(events):,} events in the backlog ({produce_s:.1f}s)")
        processes = _start(
            ctx,
            kind,
            instances=instances,
            topics=topics,
            emulator=emulator,
            run_dir=run_dir,
            batch_max_wait_ms=batch_max_wait_ms or ctx.mode.batch_max_wait_ms,
            settings=settings or {},
        )
        ready_at = max(_wait_ready(p) for p in processes)
        start_at = ready_at
        warm_requests = 0
        if not produce_first:
            time.sleep(_SETTLE_S)  # let the group's assignment settle
            warm_requests = _warm_up(
                ctx, label, warm_up, topics=topics, watch=watch, emulator=emulator,
                max_seconds=max_seconds,
            )  # fmt: skip
            start_at = time.time()
        cpu_start = [p.cpu_seconds() for p in processes]
        emulator_start = emulator.cpu_seconds()
        broker_start = cpu_seconds(ctx.broker_pid) if ctx.broker_pid else None
        machine_start = machine_busy_seconds()
        if not produce_first:
            produce_s = produce_backlog(ctx.bootstrap, topics.input, events)
            ctx.log(f"{label}: {len(events):,} events produced ({produce_s:.1f}s)")
        expected = len(warm_up) + len(events)
        results = _wait_for_results(ctx, label, watch, expected, max_seconds) - len(warm_up)
        cpu_end = [p.cpu_seconds() for p in processes]
        emulator_cpu = emulator.cpu_seconds() - emulator_start
        machine_busy = machine_busy_seconds() - machine_start
        broker_cpu = (
            cpu_seconds(ctx.broker_pid) - broker_start
            if ctx.broker_pid and broker_start is not None
            else None
        )
        peaks = [p.peak_rss_mib() for p in processes]
        instance_requests = [
            p.metric("subscription_upserter_hubspot_requests_total")
            for p in processes
            if isinstance(p, Service)
        ]
        last_ms = watch.last_timestamp_ms()
        log = emulator.control.requests()[warm_requests:]
        stats = emulator.control.stats()
        read = read or Read()
        metrics = {name: sum(_metric(p, name) for p in processes) for name in read.metrics}
        store = emulator.control.store() if read.store else {}
    finally:
        watch.close()
        codes = stop_all(processes)
        emulator.stop()
    run = BacklogRun(
        label=label,
        kind=kind,
        events=len(events),
        instances=instances,
        produce_seconds=produce_s,
        start_at=start_at,
        ready_at=ready_at,
        results=results,
        complete=results >= len(events),
        last_result_at=last_ms / 1000 if last_ms is not None else None,
        cpu_s=[round(e - s, 3) for s, e in zip(cpu_start, cpu_end, strict=True)],
        peak_rss_mib=peaks,
        emulator_cpu_s=round(emulator_cpu, 3),
        broker_cpu_s=round(broker_cpu, 3) if broker_cpu is not None else None,
        machine_busy_s=round(machine_busy, 3),
        log=log,
        emulator_stats=stats,
        instance_requests=instance_requests,
        exit_codes=codes,
        metrics=metrics,
        store=store,
    )
    ctx.log(
        f"{label}: {run.results:,}/{run.events:,} results, "
        f"{_fmt(run.events_per_s)} events/s, exit codes {codes}"
    )
    return run


def _start(
    ctx: Context,
    kind: Kind,
    *,
    instances: int,
    topics: RunTopics,
    emulator: Emulator,
    run_dir: Path,
    batch_max_wait_ms: int,
    settings: Mapping[str, str],
) -> list[Process]:
    processes: list[Process] = []
    for n in range(instances):
        if kind == "service":
            env = {**service_env(ctx.bootstrap, topics, emulator, batch_max_wait_ms), **settings}
            processes.append(Service(env, run_dir / f"service-{n}.log", ctx.code))
        else:
            processes.append(Baseline(ctx.bootstrap, topics, emulator, run_dir, f"baseline-{n}"))
    return processes


def _warm_up(
    ctx: Context,
    label: str,
    events: Sequence[Event],
    *,
    topics: RunTopics,
    watch: TopicWatch,
    emulator: Emulator,
    max_seconds: float,
) -> int:
    """Produce `events` and wait for their results; returns the requests HubSpot saw."""
    if not events:
        return 0
    seconds = produce_backlog(ctx.bootstrap, topics.input, events)
    ctx.log(f"{label}: {len(events):,} warm-up events produced ({seconds:.1f}s)")
    _wait_for_results(ctx, f"{label} warm-up", watch, len(events), max_seconds)
    return len(emulator.control.requests())


@dataclass(frozen=True)
class Read:
    """What a backlog run reads before it stops everything."""

    metrics: tuple[str, ...] = ()  # service metrics, each summed over the instances
    store: bool = False  # HubSpot's records, from the emulator


def _metric(process: Process, name: str) -> float:
    return process.metric(name) if isinstance(process, Service) else 0.0


def _wait_ready(process: Process) -> float:
    if isinstance(process, Service | Baseline):
        return process.wait_ready()
    raise TypeError(process)


def _wait_for_results(
    ctx: Context, label: str, watch: TopicWatch, expected: int, max_seconds: float
) -> int:
    next_report = time.monotonic() + _PROGRESS_EVERY_S

    def progress(count: int) -> None:
        nonlocal next_report
        if time.monotonic() >= next_report:
            next_report += _PROGRESS_EVERY_S
            ctx.log(f"{label}: {count:,}/{expected:,} results")

    return watch.wait_for(expected, time.monotonic() + max_seconds, on_tick=progress)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def median_run(runs: Sequence[BacklogRun]) -> BacklogRun:
    """The run with the median events/s (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r.events_per_s or 0.0)
    return ordered[(len(ordered) - 1) // 2]


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }
