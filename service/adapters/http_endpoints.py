"""HTTP endpoints on HTTP_PORT: /metrics (Prometheus), /livez and /readyz.

- /metrics: the Prometheus text format, or OpenMetrics when the scraper asks for it (Accept:
  application/openmetrics-text), which alone carries the exemplars (the trace ids of the
  request-duration histogram, tracing on).
- /livez: 200 while the main loop keeps turning; 503 when it has been silent too long.
- /readyz: 200 when assigned and able to send; 503 with the reasons (one per line) while
  starting, while HubSpot refuses the credentials, after the daily limit, or when draining.
Serves from a daemon thread; reads state only from Health and the metrics registry.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from service.core.health import Health


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(self.server.registry), content_type)
        elif path == "/livez":
            live, reason = self.server.health.live()
            self._send(200 if live else 503, (reason + "\n").encode(), "text/plain")
        elif path == "/readyz":
            ready, reasons = self.server.health.ready()
            self._send(200 if ready else 503, ("\n".join(reasons) + "\n").encode(), "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], health: Health, registry: CollectorRegistry):
        super().__init__(address, _Handler)
        self.health = health
        self.registry = registry


class HttpEndpoints:
    """The running endpoint server; `port` is the bound port (useful with HTTP_PORT=0)."""

    def __init__(self, host: str, port: int, health: Health, registry: CollectorRegistry) -> None:
        self._server = _Server((host, port), health, registry)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
