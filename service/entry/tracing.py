"""Whether tracing is on, read from the OpenTelemetry SDK's standard variables, and starting it.

Owns the switch (docs/tracing.md): tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
OTEL_EXPORTER_OTLP_ENDPOINT is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
Off, OpenTelemetry is never imported, so no SDK object can exist: service/entry/otel.py,
which builds the SDK, is imported only when tracing is on.

Also owns the start-up checks of the values the SDK would only warn about and replace with
its default (a sampler it does not know, a ratio that is not one, a protocol it has no
exporter for): a bad value stops start-up with one line naming the variable, as any setting's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.core.errors import ConfigError
from service.core.ports import Tracing
from service.core.tracing import NO_TRACING
from service.entry.settings import Settings

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
SUPPORTED_PROTOCOLS = ("grpc", "http/protobuf")  # the SDK's OTLP exporters; grpc by default
RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})
SAMPLERS = RATIO_SAMPLERS | {
    "always_on",
    "always_off",
    "parentbased_always_on",
    "parentbased_always_off",
}


@dataclass(frozen=True)
class StartedTracing:
    """What the composition root wires: the port, the log lines' span ids (None when off),
    `close` (exports what is buffered, then stops), and a word for the start-up log line."""

    tracing: Tracing
    log_fields: Callable[[], dict[str, str] | None] | None
    close: Callable[[], None]
    describe: str


OFF = StartedTracing(NO_TRACING, None, lambda: None, "off")


def otlp_protocol(environ: Mapping[str, str]) -> str | None:
    """The OTLP protocol to export spans with, or None when tracing is off; a ConfigError
    when a tracing variable holds a value the SDK would not take."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "none" or not any(environ.get(name, "").strip() for name in ENDPOINTS):
        return None
    if exporter != "otlp":
        _refuse("OTEL_TRACES_EXPORTER", "must be otlp or none", exporter)
    _check_sampler(environ)
    return _protocol(environ)


def start_tracing(settings: Settings, environ: Mapping[str, str] = os.environ) -> StartedTracing:
    """OFF, or the SDK started from the environment (ConfigError on a bad value)."""
    protocol = otlp_protocol(environ)
    if protocol is None:
        return OFF
    from service.entry import otel  # noqa: PLC0415  # loaded only when tracing is on

    return otel.start(settings, protocol)


def _check_sampler(environ: Mapping[str, str]) -> None:
    sampler = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if sampler not in SAMPLERS:
        _refuse("OTEL_TRACES_SAMPLER", f"must be one of {', '.join(sorted(SAMPLERS))}", sampler)
    argument = environ.get("OTEL_TRACES_SAMPLER_ARG")
    if sampler not in RATIO_SAMPLERS or argument is None:
        return
    try:
        ratio = float(argument)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        _refuse("OTEL_TRACES_SAMPLER_ARG", "must be a ratio from 0 to 1", argument)


def _protocol(environ: Mapping[str, str]) -> str:
    for name in PROTOCOLS:
        value = environ.get(name, "").strip()
        if value:
            if value not in SUPPORTED_PROTOCOLS:
                _refuse(name, f"must be {' or '.join(SUPPORTED_PROTOCOLS)}", value)
            return value
    return SUPPORTED_PROTOCOLS[0]


def _refuse(name: str, problem: str, value: str) -> None:
    raise ConfigError(f"invalid configuration: {name}: {problem} (got {value[:80]!r})")
