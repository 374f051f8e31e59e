"""Command line for the local Jaeger (all-in-one, v2, memory storage).

``python -m devstack.jaeger build`` builds the binary with Go (once: minutes the first time)
and prints its path.
``python -m devstack.jaeger run --dir DIR [--otlp-grpc-port N] [--otlp-http-port N]
[--query-port N]`` starts Jaeger with its config and log in DIR, prints
``jaeger listening: otlp grpc http://127.0.0.1:A, otlp http http://127.0.0.1:B, query
http://127.0.0.1:C`` and stays in the foreground until SIGTERM or SIGINT, then stops it.
Errors print one ``error:`` line and exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.jaeger.build import ensure_jaeger
from devstack.jaeger.server import LocalJaeger
from devstack.serve import run_command, serve_until_signalled

_PROG = "python -m devstack.jaeger"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the binary with Go (once) and print its path")
    run = sub.add_parser("run", help="run Jaeger in the foreground until SIGTERM/SIGINT")
    run.add_argument("--dir", required=True, type=Path, help="work dir (config, log)")
    run.add_argument("--otlp-grpc-port", type=int, default=None, help="default: a free port")
    run.add_argument("--otlp-http-port", type=int, default=None, help="default: a free port")
    run.add_argument("--query-port", type=int, default=None, help="HTTP query API/UI port")
    run.add_argument("--timeout", type=float, default=30.0, help="startup timeout in seconds")
    return parser


def _ready_line(jaeger: LocalJaeger) -> str:
    ends = jaeger.endpoints
    return (
        f"jaeger listening: otlp grpc {ends.otlp_grpc}, otlp http {ends.otlp_http}, "
        f"query {ends.query_url}"
    )


def _run(args: argparse.Namespace) -> int:
    jaeger = LocalJaeger(
        args.dir,
        otlp_grpc_port=args.otlp_grpc_port,
        otlp_http_port=args.otlp_http_port,
        query_http_port=args.query_port,
    )
    return serve_until_signalled(
        jaeger,
        prog=_PROG,
        name="jaeger",
        timeout_s=args.timeout,
        ready_line=lambda: _ready_line(jaeger),
    )


def _build() -> int:
    print(ensure_jaeger())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "build":
        return run_command(_PROG, _build)
    return run_command(_PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
