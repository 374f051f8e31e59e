"""Every dashboard query and alert expression, evaluated by a real Prometheus scraping the
real service (real broker, HubSpot emulator with faults), parses and returns the data the run
should have produced."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from devstack.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from tests.integration.support import (
    TOKEN,
    event_bytes,
    free_port,
    new_topics,
    produce,
    running_service,
    service_env,
    wait_until,
)
from tests.observability.artifacts import alert_queries, load_dashboard, load_rules, panel_queries

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NAMESPACE = "obs-test"
POD = "upserter-0"
JOB = "subscription-upserter"
# The chart's rules for a release scraped as JOB in NAMESPACE; three dead letters in a
# minute are far below the default rate threshold, so this run lowers it to see it fire.
RULE_SETTINGS = (
    f'serviceMonitor.jobLabel="{JOB}"',
    "prometheusRule.alerts.deadLetters.threshold=0.01",
)
GOOD_EVENTS = 300
UNCHANGED_EVENTS = 100  # produced again, unchanged: SKIP_UNCHANGED's panels get data
BAD_EVENTS: list[tuple[bytes | None, bytes | None]] = [
    (b"bad-1", b"{not json"),
    (b"bad-2", b'{"id": "sub-x", "properties": {"a": {"b": 1}}}'),
    (None, b'{"properties": {}}'),
]

# Panel targets the run does not feed, with the reason.
ALLOWED_EMPTY_TARGETS = {
    "panel 'HubSpot error ratio and 429s' target C": "no 401/403 is provoked in this run",
}
# Alert expressions that must return data (fire) after this run, and those that may.
EXPECTED_FIRING = {
    "alert SubscriptionUpserterDeadLetters": "two waves of bad events go to the dead-letter topic",
}
MAY_FIRE = {
    "alert SubscriptionUpserterHubSpotErrorRate": "503s and 429s, but it needs over 50 requests",
    "alert SubscriptionUpserterRateLimited": "the tiny burst limit may cause more than five 429s",
}


def _bootstrap(request: pytest.FixtureRequest) -> str:
    try:
        return str(request.getfixturevalue("kafka_bootstrap"))
    except pytest.FixtureLookupError:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            pytest.fail("needs the kafka_bootstrap fixture or KAFKA_BOOTSTRAP_SERVERS")
        return bootstrap


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    # A tiny burst limit provokes 429s; a daily limit makes the emulator send daily headers.
    running = start_in_thread(
        EmulatorConfig(
            tokens=frozenset({TOKEN}),
            latency_ms=20,
            jitter_ms=10,
            seed=11,
            rate_limit_max=3,
            rate_limit_interval_ms=10_000,
            daily_limit=500_000,
        )
    )
    try:
        yield running
    finally:
        running.stop()


class Prometheus:
    def __init__(self, workdir: Path, target: str, *features: str) -> None:
        """Scraping `target` every second, with `features` (--enable-feature) on."""
        binary = shutil.which("prometheus")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("prometheus is required under CI (apt-get install prometheus)")
            pytest.skip("prometheus is not installed (apt-get install prometheus)")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [
                        {"targets": [target], "labels": {"namespace": NAMESPACE, "pod": POD}}
                    ],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = (workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                *(f"--enable-feature={feature}" for feature in features),
            ],
            stdout=self._log,
            stderr=self._log,
        )
        wait_until(self._ready, 30, "prometheus to be ready")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        document = reply.json()
        assert isinstance(document, dict)
        return document

    def value(self, expr: str) -> float:
        result = self.query(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def _spend_burst_budget(emulator: RunningEmulator) -> None:
    url = f"{emulator.url}/crm/v3/objects/subscriptions/batch/upsert"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    statuses = [httpx.post(url, json={"inputs": []}, headers=headers).status_code for _ in range(4)]
    assert statuses[-1] == 429, statuses


def _linked_events(emulator: RunningEmulator) -> list[tuple[bytes | None, bytes | None]]:
    """Events naming an existing contact, so the association series have data."""
    emulator.control.seed("contacts", [{"email": "obs@example.com"}])
    link = {"to": "contacts", "idProperty": "email", "id": "obs@example.com"}
    return [
        (key, orjson.dumps({**orjson.loads(value), "associations": [link]}))
        for key, value in (event_bytes(f"sub-linked-{n}", hs_name="x") for n in range(10))
    ]


def _concrete(expr: str) -> str:
    for variable, value in (
        ("$namespace", ".*"),
        ("$pod", ".*"),
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "5m"),
    ):
        expr = expr.replace(variable, value)
    return expr


def test_every_dashboard_query_and_alert_evaluates_on_a_real_run(
    request: pytest.FixtureRequest, emulator: RunningEmulator, tmp_path: Path
) -> None:
    bootstrap = _bootstrap(request)
    topics = new_topics(bootstrap)
    env = service_env(bootstrap, topics, emulator.url) | {"SKIP_UNCHANGED": "true"}
    good: list[tuple[bytes | None, bytes | None]] = [
        event_bytes(f"sub-{n:04d}", hs_name=f"Plan {n}", hs_status="active")
        for n in range(GOOD_EVENTS)
    ]
    events = [*good[:50], *BAD_EVENTS, *good[50:]]
    events += _linked_events(emulator)  # for the Associations row
    expected_results = len(events)
    with running_service(env, tmp_path / "service.log") as service:
        prometheus = Prometheus(tmp_path, f"127.0.0.1:{env['HTTP_PORT']}")
        try:
            wait_until(lambda: prometheus.value("up") == 1, 30, "the first scrape")
            _spend_burst_budget(emulator)  # the service's first request then gets a 429
            emulator.control.fault_next("503", count=2)
            produce(bootstrap, topics.input, events)
            wait_until(
                lambda: (
                    prometheus.value("sum(subscription_upserter_results_total)") >= expected_results
                ),
                90,
                f"{expected_results} results scraped",
            )
            assert service.metric("subscription_upserter_hubspot_rate_limited_total") >= 1
            assert service.metric("subscription_upserter_hubspot_retries_total") >= 3
            # The same snapshots again: HubSpot holds them, so SKIP_UNCHANGED sends none.
            produce(bootstrap, topics.input, good[:UNCHANGED_EVENTS])
            wait_until(
                lambda: (
                    prometheus.value("sum(subscription_upserter_skip_unchanged_inputs_total)")
                    >= UNCHANGED_EVENTS
                ),
                60,
                "the unchanged snapshots skipped",
            )
            # Dead letters alert on a rate: the same bad events again make their series grow.
            produce(bootstrap, topics.input, BAD_EVENTS)
            wait_until(
                lambda: prometheus.value("sum(subscription_upserter_dead_letters_total)") >= 6,
                60,
                "a second wave of dead letters scraped",
            )
            time.sleep(15)  # a few more scrapes so rates and deltas have several samples
            _assert_panels_return_data(prometheus)
            _assert_alerts_fire_as_the_run_implies(prometheus)
        finally:
            prometheus.stop()
        assert service.stop() == 0, service.log_text()[-3000:]


def _assert_panels_return_data(prometheus: Prometheus) -> None:
    empty: list[str] = []
    for query in panel_queries(load_dashboard()):
        reply = prometheus.query(_concrete(query.expr))
        assert reply["status"] == "success", (query.origin, reply)
        if not reply["data"]["result"]:
            empty.append(query.origin)
    assert sorted(empty) == sorted(ALLOWED_EMPTY_TARGETS), "panels without data"


def _assert_alerts_fire_as_the_run_implies(prometheus: Prometheus) -> None:
    firing: set[str] = set()
    for query in alert_queries(load_rules(NAMESPACE, *RULE_SETTINGS)):
        reply = prometheus.query(query.expr)
        assert reply["status"] == "success", (query.origin, reply)
        if reply["data"]["result"]:
            firing.add(query.origin)
    assert set(EXPECTED_FIRING) <= firing
    assert firing - set(EXPECTED_FIRING) - set(MAY_FIRE) == set(), "alerts firing unexpectedly"
