"""Tracing for the overhead scenario: a local Jaeger to export to, and the service's OTEL_*
settings for a run traced at a given sampling ratio.

The Jaeger binary is never built here (minutes): without it (`python -m devstack.jaeger
build`), the traced runs are left out and the report says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.jaeger import JaegerEndpoints, LocalJaeger, binary_path

NOT_BUILT = "Jaeger is not built (python -m devstack.jaeger build)"


@contextmanager
def local_jaeger(work_dir: Path) -> Iterator[LocalJaeger | None]:
    """A running local Jaeger on loopback, stopped afterwards; None when it is not built."""
    if not binary_path().is_file():
        yield None
        return
    jaeger = LocalJaeger(work_dir / "jaeger")
    jaeger.start(timeout_s=60)
    try:
        yield jaeger
    finally:
        jaeger.stop()


def traced_env(jaeger: JaegerEndpoints, service_name: str, ratio: float) -> dict[str, str]:
    """The service exporting to `jaeger` over OTLP gRPC, sampling `ratio` of its batches
    (they carry no producer context in the benchmark, so the ratio alone decides)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_grpc,
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(ratio),
    }


def traces_stored(jaeger: JaegerEndpoints, service_name: str) -> int:
    """How many traces of `service_name` Jaeger holds (what the run exported)."""
    return len(jaeger.query().traces(service_name, limit=100_000))
