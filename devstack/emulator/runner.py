"""Ways to run the emulator from Python: in a background thread, or as a subprocess.

Owns `start_in_thread` (own event loop in a daemon thread; returns once the port is bound),
`start_in_subprocess` (runs `python -m devstack.emulator`, waits for its "listening" line)
and `RunningEmulator`, the handle both return: `.url`, `.control` and `.stop()`. `.stop()`
stops only what this handle started. HTTP serving itself lives in `server`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from devstack.emulator.client import ControlClient
from devstack.emulator.clock import Clock
from devstack.emulator.config import EmulatorConfig
from devstack.emulator.server import Server
from devstack.emulator.state import EmulatorState

LISTENING = re.compile(r"^emulator listening on (http://\S+)$")


class RunningEmulator:
    """A running emulator: its base URL, a control client, and a way to stop it."""

    def __init__(
        self,
        url: str,
        *,
        stopper: Callable[[], None] | None = None,
        state: EmulatorState | None = None,
    ) -> None:
        self.url = url
        self.tls_url = ""  # set when served over HTTPS too (start_in_thread(tls=...))
        self.control = ControlClient(url)
        self.state = state  # in-process only: direct access for white-box tests
        self._stopper = stopper

    @classmethod
    def from_url(cls, url: str, process: subprocess.Popen[bytes] | None = None) -> RunningEmulator:
        """A handle on an emulator started elsewhere; `stop()` ends `process` if given."""
        stopper = (lambda: _terminate(process)) if process is not None else None
        return cls(url.rstrip("/"), stopper=stopper)

    def stop(self) -> None:
        """Stop the server this handle started (no-op for a plain `from_url`)."""
        self.control.close()
        if self._stopper is not None:
            stopper, self._stopper = self._stopper, None
            stopper()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
) -> RunningEmulator:
    """Serve `config` from a background thread; returns once it accepts connections.

    With `tls`, the same app is also served over HTTPS; its address is `.tls_url` (the
    control client keeps using the plain `.url`).
    """
    config = config or EmulatorConfig()
    state = EmulatorState(config, clock)
    thread = _ServerThread(Server(state, config.host, config.port, tls))
    thread.start()
    if not thread.ready.wait(timeout):
        raise TimeoutError("emulator did not start in time")
    if thread.error is not None:
        raise RuntimeError(f"emulator failed to start: {thread.error}") from thread.error
    running = RunningEmulator(thread.server.url, stopper=thread.shutdown, state=state)
    running.tls_url = thread.server.tls_url
    return running


def start_in_subprocess(
    args: Sequence[str] = (), *, timeout: float = 20.0, python: str = sys.executable
) -> RunningEmulator:
    """Run `python -m devstack.emulator --port 0 ARGS`; returns once it prints its URL."""
    command = [python, "-m", "devstack.emulator", "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=_env_with_package_root())
    line = _first_line(process, timeout)
    match = LISTENING.match(line.strip())
    if match is None:
        _terminate(process)
        raise RuntimeError(f"emulator did not report its address (got {line!r})")
    return RunningEmulator.from_url(match.group(1), process)


class _ServerThread(threading.Thread):
    def __init__(self, server: Server) -> None:
        super().__init__(name="hubspot-emulator", daemon=True)
        self.server = server
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop_requested = asyncio.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        try:
            await self.server.start()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        await self._stop_requested.wait()
        await self.server.stop()

    def shutdown(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self.join(timeout=15)


def _env_with_package_root() -> dict[str, str]:
    """The current environment, with this checkout importable whatever the working dir."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    lines: list[str] = []

    def read() -> None:
        if process.stdout is not None:
            lines.append(process.stdout.readline().decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        _terminate(process)
        raise TimeoutError("emulator subprocess did not start in time")
    return lines[0]


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
