"""What every local dev-stack server shares: errors, executables, ports, logs, child processes.

:class:`ChildProcess` runs one server as a child process with its output appended to a log
file, stops it with SIGTERM then SIGKILL, and (on Linux) ties it to the thread that started it
(``PR_SET_PDEATHSIG``) so that a Python process that dies without stopping it does not leave an
orphan holding ports and memory. :func:`wait_ready` polls a readiness check until a deadline,
failing at once when the child exits. :class:`ChildServer` is what the servers run that way
(Apicurio Registry, Jaeger) share: start and wait until it answers, stop, kill, restart, and
use as a context manager.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = [
    "HOST",
    "ChildProcess",
    "ChildServer",
    "DevstackError",
    "cache_base",
    "find_executable",
    "free_ports",
    "parent_death_signal_hook",
    "port_open",
    "tail_file",
    "wait_ready",
]

HOST = "127.0.0.1"
"""Every dev-stack server binds to this loopback address only."""

_LOG_TAIL_LINES = 40
_START_MARKER = "==== devstack: starting"


class DevstackError(RuntimeError):
    """A local dev-stack component could not be fetched, started or used."""


def find_executable(name: str, *, needed_for: str, home_env: str | None = None) -> str:
    """Return the path of executable ``name``, or raise :class:`DevstackError`.

    ``home_env`` (for example ``"JAVA_HOME"``) names an environment variable whose ``bin/``
    directory is tried first. ``needed_for`` ends the error message ("install it to ...").
    """
    if home_env:
        home = os.environ.get(home_env)
        if home:
            candidate = Path(home) / "bin" / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise DevstackError(f"'{name}' not found on PATH; install it to {needed_for}")
    return found


def cache_base(env_name: str) -> Path:
    """The cache base directory: ``$env_name`` if set, else ``~/.cache/subscription-upserter``."""
    base_env = os.environ.get(env_name)
    base = Path(base_env) if base_env else Path.home() / ".cache" / "subscription-upserter"
    return base.expanduser().resolve()


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on the loopback address just now."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def parent_death_signal_hook() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child die with its parent (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def _read_end(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def tail_file(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a text file ('' when it does not exist)."""
    return "\n".join(_read_end(path, 64 * 1024).splitlines()[-lines:])


class ChildProcess:
    """One server run as a child process, its stdout and stderr appended to ``log_file``.

    Every :meth:`spawn` first writes a marker line to the log, so :meth:`log_since_start`
    reads what the current run printed and nothing from earlier runs.
    """

    def __init__(self, name: str, log_file: Path, *, die_with_parent: bool = True) -> None:
        """``name`` appears in the log marker and in messages."""
        self.name = name
        self.log_file = log_file
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id of the current (or last) run, ``None`` before the first."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the child was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def exit_code(self) -> int | None:
        """The child's exit code, ``None`` while it runs or before it was started."""
        return self._proc.poll() if self._proc is not None else None

    def spawn(self, cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        """Start ``cmd`` in ``cwd`` with its output appended to the log file."""
        if self.is_running:
            raise DevstackError(f"{self.name} is already running (pid {self.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        preexec = parent_death_signal_hook() if self.die_with_parent else None
        with self.log_file.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"{_START_MARKER} {self.name} at {stamp} ====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509 - it only calls prctl(2) and getppid(2)
            )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit code; safe twice."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return self.kill()
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the child at once and reap it. Returns the exit code; safe twice."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        return proc.returncode

    def log_since_start(self) -> str:
        """What the current (or last) run wrote to the log (at most its last 512 KiB)."""
        text = _read_end(self.log_file, 512 * 1024)
        return text.rsplit(_START_MARKER, 1)[-1].split("\n", 1)[-1]

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log file."""
        return tail_file(self.log_file, lines)


def wait_ready(
    child: ChildProcess, ready: Callable[[float], bool], *, timeout_s: float, what: str
) -> None:
    """Call ``ready(remaining_s)`` every 0.2 s until it returns true.

    Raises :class:`DevstackError`, with the log's tail, when the child exits first or
    ``timeout_s`` passes; the caller kills the child.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        code = child.exit_code()
        if code is not None:
            raise DevstackError(
                f"{what} exited with code {code} during startup\n"
                f"tail of {child.log_file}:\n{child.log_tail()}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DevstackError(
                f"{what} not ready after {timeout_s:.0f}s\n"
                f"tail of {child.log_file}:\n{child.log_tail()}"
            )
        if ready(remaining):
            return
        time.sleep(0.2)


class ChildServer:
    """A server run as a :class:`ChildProcess` that answers HTTP once ready.

    A subclass sets ``_child`` in its constructor, ``start_timeout_s`` and ``error`` (its
    :class:`DevstackError`), and defines :meth:`_spawn` (prepare and spawn the child) and
    :meth:`_ready` (whether it answers yet).
    """

    start_timeout_s = 30.0
    error: type[DevstackError] = DevstackError
    _child: ChildProcess

    @property
    def log_file(self) -> Path:
        """The server's output, appended to on every start."""
        return self._child.log_file

    @property
    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._child.is_running

    @property
    def pid(self) -> int | None:
        """The process id (of the last start), ``None`` before the first."""
        return self._child.pid

    def start(self, timeout_s: float | None = None) -> None:
        """Start the server and wait until it answers (default ``start_timeout_s``).

        Raises :attr:`error` with the log's tail if it exits early or is not ready in time (it
        is killed then). A first-time build or download in :meth:`_spawn` is not counted.
        """
        self._spawn()
        try:
            with httpx.Client(timeout=5.0) as client:
                wait_ready(
                    self._child,
                    lambda _remaining: self._ready(client),
                    timeout_s=timeout_s or self.start_timeout_s,
                    what=f"{self._child.name} (log {self._child.log_file})",
                )
        except DevstackError as exc:
            self._child.kill()
            raise self.error(str(exc)) from exc
        except BaseException:
            self._child.kill()
            raise

    def _spawn(self) -> None:
        raise NotImplementedError

    def _ready(self, client: httpx.Client) -> bool:
        raise NotImplementedError

    def ensure_running(self, timeout_s: float | None = None) -> None:
        """Start the server unless it is already running (e.g. after a test stopped it)."""
        if not self.is_running:
            self.start(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (the server shuts down cleanly), then SIGKILL after ``timeout_s``; safe
        twice. Returns the exit code."""
        return self._child.stop(timeout_s)

    def kill(self) -> int | None:
        """SIGKILL at once (a crash, for tests) and reap it."""
        return self._child.kill()

    def restart(self, timeout_s: float | None = None) -> None:
        """Stop and start again, on the same ports."""
        self.stop()
        self.start(timeout_s)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log file."""
        return self._child.log_tail(lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
