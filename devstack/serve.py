"""The command lines' shared part: run a local server in the foreground until a signal.

:func:`serve_until_signalled` starts a server, prints one line saying where it listens, and
stops it on SIGTERM or SIGINT (exit 0) or reports that it died (exit 1, with its log's tail).
:func:`run_command` turns :class:`~devstack.proc.DevstackError` and ``OSError`` into one
``error:`` line and exit 1.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol

from devstack.proc import DevstackError

__all__ = ["Server", "run_command", "serve_until_signalled"]


class Server(Protocol):
    """What :func:`serve_until_signalled` needs of a local server."""

    @property
    def is_running(self) -> bool:
        """Whether the server's process runs."""
        ...

    @property
    def log_file(self) -> Path:
        """Where the server's output goes."""
        ...

    def start(self, timeout_s: float) -> None:
        """Start and wait until ready."""

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop; return the exit code."""

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log."""
        ...


def serve_until_signalled(
    server: Server,
    *,
    prog: str,
    name: str,
    timeout_s: float,
    ready_line: Callable[[], str],
) -> int:
    """Start ``server``, print ``ready_line()``, serve until SIGTERM/SIGINT, stop it.

    Returns 0 after a signal (having printed ``<name> stopped``), 1 if the server exited by
    itself (having printed an ``error:`` line and its log's tail to stderr).
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    server.start(timeout_s)
    try:
        print(ready_line(), flush=True)
        while not stop.wait(0.5):
            if not server.is_running:
                code = server.stop()
                print(
                    f"{prog}: error: {name} exited unexpectedly (code {code}); "
                    f"tail of {server.log_file}:\n{server.log_tail()}",
                    file=sys.stderr,
                )
                return 1
    finally:
        server.stop()
    print(f"{name} stopped", flush=True)
    return 0


def run_command(prog: str, command: Callable[[], int]) -> int:
    """Run ``command``; report a dev-stack or OS error as one ``error:`` line (exit 1)."""
    try:
        return command()
    except (DevstackError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
