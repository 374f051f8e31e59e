"""Command line for the local Schema Registry (Apicurio Registry, Confluent-compatible API).

``python -m devstack.registry fetch`` fetches the distribution (once) and prints its directory.
``python -m devstack.registry run --dir DIR [--port N] [--in-memory]`` starts a registry with
its state in DIR, prints ``registry listening on http://127.0.0.1:PORT/apis/ccompat/v7`` (the
URL for confluent-kafka's ``SchemaRegistryClient``) and stays in the foreground until SIGTERM
or SIGINT, then stops it. Errors print one ``error:`` line and exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.registry.dist import ensure_registry_dist
from devstack.registry.server import LocalRegistry
from devstack.serve import run_command, serve_until_signalled

_PROG = "python -m devstack.registry"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch the distribution with Maven and print its directory")
    run = sub.add_parser("run", help="run a registry in the foreground until SIGTERM/SIGINT")
    run.add_argument("--dir", required=True, type=Path, help="work dir (log, data)")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default: any free)")
    run.add_argument("--heap", default="256m", help="JVM -Xmx size (default 256m)")
    run.add_argument("--in-memory", action="store_true", help="keep no data across restarts")
    run.add_argument("--timeout", type=float, default=90.0, help="startup timeout in seconds")
    return parser


def _run(args: argparse.Namespace) -> int:
    registry = LocalRegistry(
        args.dir, port=args.port, heap=args.heap, persistent=not args.in_memory
    )
    return serve_until_signalled(
        registry,
        prog=_PROG,
        name="registry",
        timeout_s=args.timeout,
        ready_line=lambda: f"registry listening on {registry.url}",
    )


def _fetch() -> int:
    print(ensure_registry_dist())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "fetch":
        return run_command(_PROG, _fetch)
    return run_command(_PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
