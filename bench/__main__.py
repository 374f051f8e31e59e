"""`python -m bench [--quick | --smoke]`: every benchmark scenario, one table, JSON and a chart.

Starts a local Kafka broker (KRaft, loopback) and, per run, a fresh HubSpot emulator and
fresh topics; runs the real `python -m service run` process(es) and the baseline loop; prints
the machine, then one row per figure with its target (PASS/MISS); writes
`bench/out/<scenario>.json` and `bench/out/throughput.png`. Exits 1 if a scenario could not
run (a MISS is a result, not an error).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import chart, machine
from bench.build import BUILDS, Code, prepare
from bench.modes import MODES, Mode
from bench.report import ScenarioResult, info, number, table_header, table_rows
from bench.scenarios import (
    api_bound,
    associations,
    latency,
    overhead,
    shared_budget,
    skip_unchanged,
)
from bench.scenarios.common import Context
from devstack.kafka import LocalBroker, ensure_kafka_libs

OUT_DIR = machine.REPO / "bench" / "out"
SCENARIOS: dict[str, Callable[[Context], ScenarioResult]] = {
    api_bound.NAME: api_bound.run,
    shared_budget.NAME: shared_budget.run,
    overhead.NAME: overhead.run,
    latency.NAME: latency.run,
    associations.NAME: associations.run,
    skip_unchanged.NAME: skip_unchanged.run,
}
BASELINE = "baseline"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_const", const="quick", dest="mode", help="under 5 minutes"
    )
    size.add_argument(
        "--smoke",
        action="store_const",
        const="smoke",
        dest="mode",
        help="about a minute, tiny and scaled down: checks the plumbing, figures mean nothing",
    )
    parser.set_defaults(mode="full")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios (default: all of {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--bootstrap",
        help="use this running Kafka cluster instead of starting a local broker "
        "(its CPU is then not measured)",
    )
    parser.add_argument(
        "--build",
        choices=BUILDS,
        default="compiled",
        help="the service's hot path compiled with mypyc, as the image ships it (default; "
        "needs a C compiler), or the sources as development runs them",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder ({OUT_DIR})")
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the work folder (logs) after a clean run"
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def baseline_result(results: dict[str, ScenarioResult]) -> ScenarioResult | None:
    """Scenario 5: the baseline loop's figures from scenarios 1 and 3, beside the service's."""
    measured = {
        name: {"baseline": r.measured["baseline"], "service_over_baseline": r.measured["ratio"]}
        for name, r in results.items()
        if "baseline" in r.measured
    }
    if not measured:
        return None
    result = ScenarioResult(
        BASELINE,
        config={
            "loop": "bench/baseline.py: one batch of up to 100 at a time, in order, "
            "split on repeated ids, no coalescing, no concurrency"
        },
        measured=measured,
    )
    if api_bound.NAME in measured:
        ratio = measured[api_bound.NAME]["service_over_baseline"]
        result.checks.append(
            info("API-bound records/s: service x", number(ratio["records_per_s_sustained"], 1))
        )
    if overhead.NAME in measured:
        ratio = measured[overhead.NAME]["service_over_baseline"]
        result.checks.append(info("overhead events/s: service x", number(ratio["events_per_s"], 1)))
    return result


@contextmanager
def kafka(bootstrap: str | None, work_dir: Path) -> Iterator[tuple[str, int | None]]:
    """The given cluster, or a local broker started here (bootstrap servers, broker pid)."""
    if bootstrap:
        yield bootstrap, None
        return
    print(f"kafka jars: {ensure_kafka_libs()}", flush=True)
    with LocalBroker(work_dir / "kafka") as broker:
        yield broker.bootstrap_servers, broker.pid


def run(
    mode: Mode,
    names: list[str],
    out_dir: Path,
    work_dir: Path,
    *,
    bootstrap: str | None,
    code: Code,
) -> tuple[list[str], bool]:
    info_ = {**machine.describe(), "build": code.build}
    for line in machine.header_lines(info_, mode.name):
        print(line, flush=True)
    print(f"work folder: {work_dir}", flush=True)
    rows: list[str] = []
    results: dict[str, ScenarioResult] = {}
    ok = True
    with kafka(bootstrap, work_dir) as (servers, broker_pid):
        ctx = Context(servers, broker_pid, mode, work_dir, code)
        ctx.log(f"kafka on {servers}")
        for name in names:
            ctx.log(f"--- {name}")
            try:
                result = SCENARIOS[name](ctx)
            except Exception as exc:  # one broken scenario must not hide the others
                traceback.print_exc()
                ok = False
                error = f"{type(exc).__name__}: {exc}"
                (out_dir / f"{name}.json").write_text(
                    json.dumps({"scenario": name, "mode": mode.name, "error": error}, indent=2)
                    + "\n",
                    encoding="utf-8",
                )
                rows.append(f"| {name} | ERROR: {error}")
                continue
            results[name] = result
            result.write(out_dir, mode.name, info_)
            new_rows = table_rows(result)
            print("\n".join([*table_header(), *new_rows]), flush=True)
            rows.extend(new_rows)
        extra = baseline_result(results)
        if extra is not None:
            extra.write(out_dir, mode.name, info_)
            rows.extend(table_rows(extra))
        png = chart.plot(out_dir / "throughput.png", ctx.charts, mode.limit)
        if png is not None:
            ctx.log(f"chart: {png}")
    return [*machine.header_lines(info_, mode.name), "", *table_header(), *rows], ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = MODES[args.mode]
    names = [n for n in SCENARIOS if n in args.only.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.monotonic()
    code = prepare(args.build, work_dir)
    lines, ok = run(mode, names, args.out, work_dir, bootstrap=args.bootstrap, code=code)
    print(f"\n== results ({mode.name} mode, {time.monotonic() - started:.0f}s) ==")
    print("\n".join(lines))
    print(f"\nJSON and chart in {args.out}")
    if ok and not args.keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        print(f"logs kept in {work_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
