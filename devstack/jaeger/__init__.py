"""Local Jaeger (all-in-one v2, from Go module v1.75.0) for development and tests.

The binary is built with Go into a cache outside the repository (:func:`ensure_jaeger`);
:class:`LocalJaeger` runs it on loopback ports with OTLP receivers (gRPC and HTTP), memory
storage and the HTTP query API, and :class:`JaegerQuery` reads traces back for assertions.
Command line: ``python -m devstack.jaeger build`` and ``python -m devstack.jaeger run``.
"""

from devstack.jaeger.build import JAEGER_VERSION, binary_path, ensure_jaeger
from devstack.jaeger.model import Event, Span, SpanLink, Trace
from devstack.jaeger.query import JaegerQuery
from devstack.jaeger.server import JaegerEndpoints, JaegerError, LocalJaeger

__all__ = [
    "JAEGER_VERSION",
    "Event",
    "JaegerEndpoints",
    "JaegerError",
    "JaegerQuery",
    "LocalJaeger",
    "Span",
    "SpanLink",
    "Trace",
    "binary_path",
    "ensure_jaeger",
]
