"""Readiness as a metric: `subscription_upserter_ready{reason}` is 1 with reason "ok" while
/readyz says ready, and 0 with one bounded reason otherwise (what an alert on "no pod ready"
reports)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from service.adapters.prometheus import Metrics
from service.core.clock import FakeClock
from service.core.health import AUTH_BLOCK, DAILY_BLOCK, Health

NAME = "subscription_upserter_ready"


def _ready_series(metrics: Metrics) -> dict[str, float]:
    """Every exported sample of the gauge: its label text -> value."""
    samples: dict[str, float] = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith(NAME + "{"):
            labels, _, value = line[len(NAME) :].rpartition(" ")
            samples[labels] = float(value)
    return samples


def test_health_names_one_bounded_reason_in_the_order_readyz_lists_them() -> None:
    health = Health(FakeClock())
    assert health.readiness() == "starting"
    health.started()
    assert health.readiness() == "ok"
    health.block(DAILY_BLOCK, "daily limit reached; next attempt in 300s")
    assert health.readiness() == "daily_limit"
    health.block(AUTH_BLOCK, "401 from HubSpot")
    assert health.readiness() == "credentials"
    health.unblock(AUTH_BLOCK)
    health.unblock(DAILY_BLOCK)
    health.block("shutdown", "draining")
    assert health.readiness() == "shutdown"
    assert health.ready()[0] is False


def test_the_gauge_reads_starting_before_the_loop_reports() -> None:
    assert _ready_series(Metrics(CollectorRegistry())) == {'{reason="starting"}': 0.0}


def test_the_gauge_exports_only_the_current_reason() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.ready.set("credentials")
    assert _ready_series(metrics) == {'{reason="credentials"}': 0.0}
    metrics.ready.set("ok")
    assert _ready_series(metrics) == {'{reason="ok"}': 1.0}
