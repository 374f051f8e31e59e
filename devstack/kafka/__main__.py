"""Command line for the local Kafka broker.

``python -m devstack.kafka fetch`` fetches the broker's jars (once) and prints their directory.
``python -m devstack.kafka run --dir DIR [--port N]`` starts a broker with its state in DIR,
prints ``kafka listening on 127.0.0.1:PORT`` and stays in the foreground until SIGTERM or SIGINT,
then stops the broker cleanly. Errors print one ``error:`` line (plus the broker log's tail when
the broker itself failed) and exit non-zero.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devstack.kafka.broker import LocalBroker
from devstack.kafka.libs import DevstackError, ensure_kafka_libs, kafka_version

_PROG = "python -m devstack.kafka"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch the broker jars with Maven and print their directory")
    run = sub.add_parser("run", help="run a broker in the foreground until SIGTERM/SIGINT")
    run.add_argument("--dir", required=True, type=Path, help="work dir (config, log, data)")
    run.add_argument("--port", type=int, default=None, help="PLAINTEXT port (default: free)")
    run.add_argument("--controller-port", type=int, default=None, help="default: free")
    run.add_argument("--heap", default="512m", help="JVM -Xmx size (default 512m)")
    run.add_argument("--timeout", type=float, default=90.0, help="startup timeout in seconds")
    return parser


def _run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    broker = LocalBroker(
        args.dir, port=args.port, controller_port=args.controller_port, heap=args.heap
    )
    broker.start(timeout_s=args.timeout)
    try:
        print(f"kafka listening on {broker.bootstrap_servers}", flush=True)
        while not stop.wait(0.5):
            if not broker.is_running:
                code = broker.stop()
                print(
                    f"{_PROG}: error: kafka broker exited unexpectedly (code {code}); "
                    f"tail of {broker.log_file}:\n{broker.log_tail()}",
                    file=sys.stderr,
                )
                return 1
    finally:
        broker.stop()
    print("kafka stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            print(ensure_kafka_libs())
            return 0
        return _run(args)
    except DevstackError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"{_PROG}: error: {exc} (kafka {kafka_version()})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
