"""The configuration of a local Jaeger v2: OTLP in, memory storage, the query API, all on
loopback.

Jaeger v2 (module version v1.75.0) is an OpenTelemetry Collector distribution: it has no
``--query.http-port``-style flags any more; ``jaeger --config FILE`` takes a collector YAML
file (without ``--config`` it runs an embedded all-in-one file whose query ports bind every
interface). :func:`jaeger_config` writes one with only what the tests need:

* the ``otlp`` receiver, gRPC and HTTP, each on its own loopback port;
* no processor: spans go straight to storage, so a query sees them as soon as the export
  returns (the ``batch`` processor would hold them up to 200 ms);
* the ``jaeger_storage`` extension with one in-memory backend, and the ``jaeger_storage_exporter``
  writing to it (so a restart forgets every trace);
* the ``jaeger_query`` extension: the HTTP API (``/api/traces``, ``/api/services``, ``/api/v3``)
  and its gRPC API, which cannot be turned off, on loopback ports too (left out, they would
  default to ``:16686``/``:16685`` on every interface);
* ``enable_tracing: false`` for the query extension: Jaeger v2 turns it on by default, and it
  then exports Jaeger's own spans over OTLP to ``localhost:4317`` (whatever listens there,
  maybe someone else's Jaeger) and waits 10 s at shutdown for that export to time out;
* the collector's own metrics off (``level: none``); by default they listen on port 8888.

The file is written as JSON, which is YAML too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devstack.proc import HOST

__all__ = ["JaegerPorts", "jaeger_config", "render_config"]

_STORE = "memstore"


@dataclass(frozen=True)
class JaegerPorts:
    """The four loopback ports a local Jaeger listens on."""

    otlp_grpc: int
    otlp_http: int
    query_http: int
    query_grpc: int


def _endpoint(port: int) -> dict[str, str]:
    return {"endpoint": f"{HOST}:{port}"}


def jaeger_config(ports: JaegerPorts, *, max_traces: int = 100_000) -> dict[str, Any]:
    """The collector configuration as a mapping."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {_STORE: {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": {
                "storage": {"traces": _STORE},
                "enable_tracing": False,
                "http": _endpoint(ports.query_http),
                "grpc": _endpoint(ports.query_grpc),
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": _endpoint(ports.otlp_grpc),
                    "http": _endpoint(ports.otlp_http),
                }
            }
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": _STORE}},
    }


def render_config(ports: JaegerPorts, *, max_traces: int = 100_000) -> str:
    """The configuration file's text (JSON, which the collector reads as YAML)."""
    header = "# Written by devstack.jaeger; rewritten on every start.\n"
    return header + json.dumps(jaeger_config(ports, max_traces=max_traces), indent=2) + "\n"
