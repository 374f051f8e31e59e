"""Command line: `python -m devstack.emulator [options]` serves the HubSpot emulator.

Owns the flags, how they override a `--config` JSON file, and the process contract: exactly
one line `emulator listening on http://HOST:PORT` on stdout (flushed) once ready, logs on
stderr, exit 0 on SIGTERM/SIGINT, exit 2 on a bad flag or config.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from devstack.emulator.config import ConfigError, EmulatorConfig, load_config
from devstack.emulator.configcheck import FAULT_KINDS
from devstack.emulator.server import Server
from devstack.emulator.state import EmulatorState

log = logging.getLogger("devstack.emulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m devstack.emulator",
        description="Emulates HubSpot's CRM batch endpoints (objects and v4 associations).",
    )
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port; 0 picks a free one")
    p.add_argument("--config", type=Path, help="JSON file of EmulatorConfig fields")
    p.add_argument("--port-file", type=Path, help="write the bound port to this file")
    p.add_argument("--token", action="append", help="valid bearer token (repeatable)")
    p.add_argument("--no-scope-token", action="append", help="token answered 403 (repeatable)")
    p.add_argument("--accept-any-token", action="store_true", default=None)
    p.add_argument("--object-type", action="append", help="object type served (repeatable)")
    p.add_argument("--unique-property", action="append", help="unique id property (repeatable)")
    p.add_argument("--rate-limit", help="burst limit COUNT/INTERVAL_MS, or 'unlimited'")
    p.add_argument("--daily-limit", help="requests per day, or 'unlimited'")
    p.add_argument("--daily-reset-at", help="next daily reset, ISO-8601 with zone")
    p.add_argument("--retry-after", action="store_true", default=None, help="Retry-After on 429")
    p.add_argument("--rate-limit-body", choices=["policy", "category"])
    p.add_argument("--latency-ms", type=float)
    p.add_argument("--jitter-ms", type=float)
    p.add_argument(
        "--fault",
        action="append",
        metavar="KIND=P",
        help=f"random fault probability; KIND in {', '.join(FAULT_KINDS)}",
    )
    p.add_argument("--fault-when", choices=["before", "after"])
    p.add_argument("--timeout-hold-seconds", type=float)
    p.add_argument("--shuffle-results", action="store_true", default=None)
    p.add_argument("--no-trace-echo", action="store_true", help="omit objectWriteTraceId")
    p.add_argument("--no-history", action="store_true", help="do not keep per-id write history")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def build_config(ns: argparse.Namespace) -> EmulatorConfig:
    """The config file (or defaults) with every given flag applied on top."""
    base = load_config(ns.config) if ns.config else EmulatorConfig()
    return base.patched(_overrides(ns))


def _overrides(ns: argparse.Namespace) -> dict[str, Any]:
    simple = {
        "host": ns.host,
        "port": ns.port,
        "tokens": ns.token,
        "no_scope_tokens": ns.no_scope_token,
        "accept_any_token": ns.accept_any_token,
        "object_types": ns.object_type,
        "unique_id_properties": ns.unique_property,
        "daily_reset_at": ns.daily_reset_at,
        "retry_after_on_429": ns.retry_after,
        "rate_limit_body": ns.rate_limit_body,
        "latency_ms": ns.latency_ms,
        "jitter_ms": ns.jitter_ms,
        "fault_when": ns.fault_when,
        "timeout_hold_seconds": ns.timeout_hold_seconds,
        "shuffle_results": ns.shuffle_results,
        "seed": ns.seed,
    }
    patch = {k: v for k, v in simple.items() if v is not None}
    if ns.no_trace_echo:
        patch["echo_trace_id"] = False
    if ns.no_history:
        patch["record_history"] = False
    if ns.rate_limit:
        patch.update(_rate_limit(ns.rate_limit))
    if ns.daily_limit:
        patch["daily_limit"] = None if ns.daily_limit == "unlimited" else int(ns.daily_limit)
    if ns.fault:
        patch["fault_rates"] = dict(_fault_rate(f) for f in ns.fault)
    return patch


def _rate_limit(text: str) -> dict[str, Any]:
    if text == "unlimited":
        return {"rate_limit_max": None}
    count, _, interval = text.partition("/")
    patch: dict[str, Any] = {"rate_limit_max": int(count)}
    if interval:
        patch["rate_limit_interval_ms"] = int(interval)
    return patch


def _fault_rate(text: str) -> tuple[str, float]:
    kind, sep, probability = text.partition("=")
    if not sep:
        raise ValueError(f"--fault wants KIND=PROBABILITY, got {text!r}")
    return kind, float(probability)


async def serve(config: EmulatorConfig, port_file: Path | None) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = Server(EmulatorState(config), config.host, config.port)
    url = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if port_file is not None:
        port_file.write_text(f"{url.rsplit(':', 1)[1]}\n", encoding="utf-8")
    print(f"emulator listening on {url}", flush=True)
    log.info("serving %s (object types: %s)", url, ", ".join(sorted(config.object_types)))
    await stop.wait()
    log.info("stopping")
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=ns.log_level.upper(), format="%(asctime)s %(name)s %(message)s"
    )
    try:
        config = build_config(ns)
    except (ConfigError, ValueError) as exc:
        print(f"emulator: bad configuration: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(config, ns.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
