"""Tracing's switch and start-up: off unless an OTLP endpoint is set, and then nothing of
OpenTelemetry is even imported; on, the SDK takes its sampler and resource from the standard
variables; a value the SDK would only warn about stops start-up with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.core.errors import ConfigError
from service.core.tracing import NO_TRACING
from service.entry.settings import Settings
from service.entry.tracing import OFF, otlp_protocol, start_tracing

REPO = Path(__file__).resolve().parents[2]
ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}


def _settings() -> Settings:
    return Settings(
        kafka_bootstrap_servers="kafka:9092",
        hubspot_access_token="pat-token-1234",  # type: ignore[arg-type]
        hubspot_id_property="external_subscription_id",
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, None),
        (ENDPOINT, "grpc"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, "grpc"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "http/protobuf"),
        (
            {**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
             "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            "http/protobuf",
        ),
        ({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, None),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, None),
        ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp"}, "grpc"),
        ({**ENDPOINT, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
          "OTEL_TRACES_SAMPLER_ARG": "0.1"}, "grpc"),
    ],
)  # fmt: skip
def test_tracing_is_on_only_with_an_endpoint(environ: dict[str, str], expected: str | None) -> None:
    assert otlp_protocol(environ) == expected


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "ten"},
         "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
         "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ],
)  # fmt: skip
def test_a_value_the_sdk_would_not_take_stops_start_up_naming_it(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^invalid configuration: {named}: .*\(got '"):
        otlp_protocol({**ENDPOINT, **environ})


def test_off_starts_nothing() -> None:
    assert start_tracing(_settings(), {}) is OFF
    assert OFF.tracing is NO_TRACING and OFF.log_fields is None


_PROBE = """
import json, sys
from service.entry import app, cli  # all that `python -m service run` imports
from service.entry.settings import Settings
from service.entry.tracing import start_tracing
settings = Settings(kafka_bootstrap_servers="k:9092", hubspot_access_token="tok-1234",
                    hubspot_id_property="p")
started = start_tracing(settings)
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
print(json.dumps({"describe": started.describe, "loaded": loaded}))
started.close()
"""


def _probe(**environ: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(completed.stdout.splitlines()[-1])
    assert isinstance(found, dict)
    return found


def test_with_tracing_off_no_opentelemetry_module_is_even_imported() -> None:
    off = _probe()
    assert off == {"describe": "off", "loaded": []}
    on = _probe(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.1",
    )
    assert "opentelemetry.sdk.trace" in on["loaded"]  # type: ignore[operator]
    described = str(on["describe"])
    assert described.startswith("otlp grpc, sampler ParentBased{root:TraceIdRatioBased{0.1}")


def test_the_resource_comes_from_the_environment_with_the_services_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.entry.otel import resource

    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(name, raising=False)
    assert resource().attributes["service.name"] == "subscription-upserter"
    assert resource().attributes["service.version"]
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.version=9")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "upserter-eu")
    attributes = resource().attributes
    assert attributes["service.name"] == "upserter-eu"
    assert attributes["deployment.environment"] == "prod"
    assert attributes["service.version"] == "9"
