"""A real Jaeger (v2, all-in-one, memory storage) run as a child process on loopback.

:class:`LocalJaeger` writes ``<work dir>/config.yaml`` (:func:`render_config`), starts
``jaeger --config`` with its output in ``<work dir>/jaeger.log`` and waits until the query API
answers and both OTLP ports accept connections (the collector starts its receivers last, so
then everything runs). Ports are free loopback ports picked at construction unless given, so
:attr:`endpoints` is known before :meth:`start` and stays the same across :meth:`restart`; the
traces do not (memory storage).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from devstack.jaeger.build import JAEGER_VERSION, ensure_jaeger
from devstack.jaeger.config import JaegerPorts, render_config
from devstack.jaeger.query import JaegerQuery
from devstack.proc import HOST, ChildProcess, DevstackError, free_ports, port_open, wait_ready

__all__ = ["JaegerEndpoints", "JaegerError", "LocalJaeger"]


class JaegerError(DevstackError):
    """The local Jaeger failed to start or stop."""


@dataclass(frozen=True)
class JaegerEndpoints:
    """Where a Jaeger takes spans and answers queries.

    ``otlp_grpc`` and ``otlp_http`` are base URLs, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes them
    (the HTTP exporter, given an endpoint directly, wants ``otlp_http + "/v1/traces"``).
    """

    otlp_grpc: str
    otlp_http: str
    query_url: str

    def query(self) -> JaegerQuery:
        """A client of the query API."""
        return JaegerQuery(self.query_url)


class LocalJaeger:
    """Jaeger all-in-one as a child process, every port on loopback.

    Use as a context manager (start on enter, stop on exit) or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self,
        work_dir: Path | str,
        *,
        otlp_grpc_port: int | None = None,
        otlp_http_port: int | None = None,
        query_http_port: int | None = None,
        max_traces: int = 100_000,
        binary: Path | None = None,
        die_with_parent: bool = True,
    ) -> None:
        """Describe a Jaeger; nothing runs until :meth:`start`. ``binary`` skips the build."""
        self.work_dir = Path(work_dir).resolve()
        wanted = [otlp_grpc_port or 0, otlp_http_port or 0, query_http_port or 0, 0]
        picked = iter(free_ports(wanted.count(0)))
        self.ports = JaegerPorts(*(port or next(picked) for port in wanted))
        self.max_traces = max_traces
        self._binary = binary
        self._child = ChildProcess(
            f"jaeger {JAEGER_VERSION}",
            self.work_dir / "jaeger.log",
            die_with_parent=die_with_parent,
        )

    @property
    def endpoints(self) -> JaegerEndpoints:
        """The OTLP receivers' and the query API's URLs."""
        return JaegerEndpoints(
            otlp_grpc=f"http://{HOST}:{self.ports.otlp_grpc}",
            otlp_http=f"http://{HOST}:{self.ports.otlp_http}",
            query_url=f"http://{HOST}:{self.ports.query_http}",
        )

    @property
    def config_file(self) -> Path:
        """The collector configuration, rewritten on every start."""
        return self.work_dir / "config.yaml"

    @property
    def log_file(self) -> Path:
        """Jaeger's output, appended to on every start."""
        return self._child.log_file

    @property
    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._child.is_running

    @property
    def pid(self) -> int | None:
        """The process id (of the last start), ``None`` before the first."""
        return self._child.pid

    def start(self, timeout_s: float = 30.0) -> None:
        """Start Jaeger and wait until it takes spans and answers queries.

        Raises :class:`JaegerError` with the log's tail if it exits early or is not ready within
        ``timeout_s`` (it is killed then). A first-time build (:func:`ensure_jaeger`, minutes)
        is not counted in ``timeout_s``.
        """
        binary = self._binary or ensure_jaeger()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            render_config(self.ports, max_traces=self.max_traces), encoding="utf-8"
        )
        cmd = [str(binary), "--config", str(self.config_file)]
        self._child.spawn(cmd, cwd=self.work_dir)
        try:
            with httpx.Client(timeout=2.0) as client:
                wait_ready(
                    self._child,
                    lambda _remaining: self._ready(client),
                    timeout_s=timeout_s,
                    what=f"jaeger (work dir {self.work_dir})",
                )
        except DevstackError as exc:
            self._child.kill()
            raise JaegerError(str(exc)) from exc
        except BaseException:
            self._child.kill()
            raise

    def _ready(self, client: httpx.Client) -> bool:
        try:
            reply = client.get(f"{self.endpoints.query_url}/api/services")
        except httpx.TransportError:
            return False
        return (
            reply.status_code == httpx.codes.OK
            and port_open(self.ports.otlp_grpc)
            and port_open(self.ports.otlp_http)
        )

    def ensure_running(self, timeout_s: float = 30.0) -> None:
        """Start Jaeger unless it is already running."""
        if not self.is_running:
            self.start(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (the collector shuts down cleanly), then SIGKILL after ``timeout_s``."""
        return self._child.stop(timeout_s)

    def kill(self) -> int | None:
        """SIGKILL at once (a crash, for tests) and reap it."""
        return self._child.kill()

    def restart(self, timeout_s: float = 30.0) -> None:
        """Stop and start again on the same ports (with no traces: storage is in memory)."""
        self.stop()
        self.start(timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of ``jaeger.log``."""
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

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"LocalJaeger({self.endpoints.query_url}, {self.work_dir}, {state})"
