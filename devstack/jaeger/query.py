"""A small client of Jaeger's HTTP query API, for tests that assert the shape of traces.

Spans reach the query API a moment after the exporter sends them, so the ``wait_for_*``
methods ask again until what the test expects is there (or a timeout passes), instead of
each test sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from devstack.jaeger.model import Trace, parse_trace
from devstack.proc import DevstackError

__all__ = ["JaegerQuery"]

_T = TypeVar("_T")


class JaegerQuery:
    """Queries ``<query_url>/api/...``; ``query_url`` is like ``http://127.0.0.1:16686``."""

    def __init__(self, query_url: str, *, timeout_s: float = 10.0) -> None:
        """``timeout_s`` bounds each HTTP request."""
        self.query_url = query_url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.get(self.query_url + path, params=params, timeout=self.timeout_s)

    @staticmethod
    def _data(reply: httpx.Response) -> Any:
        if reply.status_code != httpx.codes.OK:
            raise DevstackError(f"jaeger {reply.url} answered {reply.status_code}: {reply.text}")
        return reply.json()["data"] or []

    def services(self) -> list[str]:
        """The service names Jaeger has spans of."""
        return sorted(self._data(self._get("/api/services")))

    def traces(
        self,
        service: str,
        *,
        operation: str | None = None,
        lookback: str = "1h",
        limit: int = 100,
    ) -> list[Trace]:
        """Recent traces with a span of ``service`` (and ``operation``, if given)."""
        params: dict[str, Any] = {"service": service, "lookback": lookback, "limit": limit}
        if operation is not None:
            params["operation"] = operation
        return [parse_trace(raw) for raw in self._data(self._get("/api/traces", params))]

    def trace(self, trace_id: str) -> Trace | None:
        """The trace with this id (32 hex digits), ``None`` when Jaeger has no span of it."""
        reply = self._get(f"/api/traces/{trace_id.lower()}")
        if reply.status_code == httpx.codes.NOT_FOUND:
            return None
        found = [parse_trace(raw) for raw in self._data(reply)]
        return found[0] if found else None

    def wait_for_trace(self, trace_id: str, *, spans: int = 1, timeout_s: float = 10.0) -> Trace:
        """The trace, once it has at least ``spans`` spans; ``DevstackError`` after the timeout."""

        def enough() -> Trace | None:
            found = self.trace(trace_id)
            return found if found is not None and len(found.spans) >= spans else None

        return _poll(enough, timeout_s, f"trace {trace_id} with {spans} span(s)")

    def wait_for_traces(
        self, service: str, *, count: int = 1, timeout_s: float = 10.0
    ) -> list[Trace]:
        """``traces(service)``, once there are at least ``count``; ``DevstackError`` after that."""

        def enough() -> list[Trace] | None:
            found = self.traces(service)
            return found if len(found) >= count else None

        return _poll(enough, timeout_s, f"{count} trace(s) of service {service!r}")


def _poll(attempt: Callable[[], _T | None], timeout_s: float, what: str) -> _T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = attempt()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise DevstackError(f"jaeger has no {what} after {timeout_s}s")
        time.sleep(0.1)
