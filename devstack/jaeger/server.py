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

import httpx

from devstack.jaeger.build import JAEGER_VERSION, ensure_jaeger
from devstack.jaeger.config import JaegerPorts, render_config
from devstack.jaeger.query import JaegerQuery
from devstack.proc import HOST, ChildProcess, ChildServer, DevstackError, free_ports, port_open

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


class LocalJaeger(ChildServer):
    """Jaeger all-in-one as a child process, every port on loopback.

    Use as a context manager (start on enter, stop on exit) or call :meth:`start` and
    :meth:`stop`; a restart keeps the ports, not the traces (memory storage).
    """

    start_timeout_s = 30.0
    error = JaegerError

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

    def _spawn(self) -> None:
        binary = self._binary or ensure_jaeger()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            render_config(self.ports, max_traces=self.max_traces), encoding="utf-8"
        )
        self._child.spawn([str(binary), "--config", str(self.config_file)], cwd=self.work_dir)

    def _ready(self, client: httpx.Client) -> bool:
        """The query API answers and both OTLP ports accept connections (the collector
        starts its receivers last)."""
        try:
            reply = client.get(f"{self.endpoints.query_url}/api/services")
        except httpx.TransportError:
            return False
        return (
            reply.status_code == httpx.codes.OK
            and port_open(self.ports.otlp_grpc)
            and port_open(self.ports.otlp_http)
        )

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"LocalJaeger({self.endpoints.query_url}, {self.work_dir}, {state})"
