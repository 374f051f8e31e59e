"""The HubSpot caller against the emulator: rate limits, shared budgets, the daily limit,
credentials, the date-versioned path, and secrets kept out of every output."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from devstack.emulator import RunningEmulator
from tests.integration.support import (
    TOKEN,
    ServiceProcess,
    Topics,
    event_bytes,
    input_offsets,
    new_topics,
    probe,
    produce,
    read_all,
    results_by_source,
    run_until_results,
    running_service,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _distinct_events(count: int, prefix: str = "sub") -> list[tuple[bytes | None, bytes | None]]:
    return [event_bytes(f"{prefix}-{n:05d}", hs_name=f"Plan {n}") for n in range(count)]


def _all_upserted(bootstrap: str, topics: Topics) -> None:
    results = results_by_source(bootstrap, topics.output)
    assert set(results) == input_offsets(bootstrap, topics.input)
    assert {docs[0]["status"] for docs in results.values()} == {"upserted"}


def _received(entry: Mapping[str, object]) -> float:
    return datetime.fromisoformat(str(entry["receivedAt"]).replace("Z", "+00:00")).timestamp()


def test_a_backlog_under_the_rate_limit_loses_nothing_and_429s_stop_after_the_first_window(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(rate_limit_max=190, rate_limit_interval_ms=10_000)
    topics = new_topics(kafka_bootstrap)
    produce(kafka_bootstrap, topics.input, _distinct_events(3_000))
    env = service_env(kafka_bootstrap, topics, emulator.url, BATCH_MAX_SIZE="10")
    run_until_results(env, tmp_path / "service.log", 3_000, timeout_s=120)
    _all_upserted(kafka_bootstrap, topics)
    requests = emulator.control.requests()
    first = min(_received(r) for r in requests)
    late_429s = [r for r in requests if r["status"] == 429 and _received(r) > first + 10.0]
    assert late_429s == []
    ok = sorted(_received(r) for r in requests if r["status"] != 429)
    assert max(sum(1 for t in ok if start <= t < start + 10.0) for start in ok) <= 190
    first_window = sum(1 for t in ok if t < ok[0] + 10.0)
    assert first_window >= 0.9 * 190, "the budget should be used, not left idle"


def test_locked_and_477_replies_wait_before_the_same_batch_is_resent(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    emulator.control.fault_next("423", count=1)
    emulator.control.fault_next("477", count=1)
    produce(kafka_bootstrap, topics.input, _distinct_events(5))
    env = service_env(kafka_bootstrap, topics, emulator.url, BATCH_MAX_WAIT_MS="500")
    run_until_results(env, tmp_path / "service.log", 5, timeout_s=60)
    requests = emulator.control.requests()
    assert [r["status"] for r in requests] == [423, 477, 200]
    assert requests[0]["traceIds"] == requests[1]["traceIds"] == requests[2]["traceIds"]
    times = [_received(r) for r in requests]
    assert times[1] - times[0] >= 2.0  # 423: at least 2 s
    assert times[2] - times[1] >= 2.0  # 477: Retry-After (the emulator sends 2 s)
    _all_upserted(kafka_bootstrap, topics)


def test_the_request_byte_cap_keeps_every_request_under_it(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    events = [event_bytes(f"sub-{n:03d}", hs_name="x" * 3_000) for n in range(40)]
    produce(kafka_bootstrap, topics.input, list(events))
    env = service_env(
        kafka_bootstrap, topics, emulator.url, BATCH_MAX_BYTES="10000", BATCH_MAX_WAIT_MS="1000"
    )
    run_until_results(env, tmp_path / "service.log", 40, timeout_s=60)
    sizes = [r["inputs"] for r in emulator.control.requests()]
    assert sum(sizes) == 40 and max(sizes) <= 3  # 3 x ~3.1 kB fit in 10 kB, 4 do not
    _all_upserted(kafka_bootstrap, topics)


def test_three_instances_sharing_one_budget_keep_429s_under_one_percent(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(rate_limit_max=30, rate_limit_interval_ms=2_000)
    topics = new_topics(kafka_bootstrap, partitions=6)
    produce(kafka_bootstrap, topics.input, _distinct_events(3_000))
    services: list[ServiceProcess] = []
    try:
        for n in range(3):
            env = service_env(kafka_bootstrap, topics, emulator.url, BATCH_MAX_SIZE="10")
            services.append(ServiceProcess(env, tmp_path / f"service-{n}.log"))
        wait_until(
            lambda: len(results_by_source(kafka_bootstrap, topics.output)) >= 3_000,
            180,
            "every result",
        )
        assert [s.stop() for s in services] == [0, 0, 0]
    finally:
        for service in services:
            if service.process.poll() is None:
                service.kill()
    _all_upserted(kafka_bootstrap, topics)
    requests = emulator.control.requests()
    statuses = [r["status"] for r in requests]
    first = min(_received(r) for r in requests)
    late = [round(_received(r) - first, 2) for r in requests if r["status"] == 429]
    assert statuses.count(429) < 0.01 * len(statuses), late


def test_the_daily_limit_pauses_consumption_and_resumes_with_nothing_lost(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(daily_limit=5)
    topics = new_topics(kafka_bootstrap, partitions=2)
    produce(kafka_bootstrap, topics.input, _distinct_events(200))
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        BATCH_MAX_SIZE="10",
        HUBSPOT_DAILY_PROBE_INTERVAL_S="2",
    )
    readyz = f"http://127.0.0.1:{env['HTTP_PORT']}/readyz"
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: probe(readyz)[0] == 503 and "daily_limit" in probe(readyz)[1],
            60,
            "not ready: daily limit",
        )
        wait_until(
            lambda: service.metric("subscription_upserter_paused_partitions") > 0,
            10,
            "paused partitions",
        )
        done_while_blocked = service.metric("subscription_upserter_results_total")
        time.sleep(3)
        assert service.metric("subscription_upserter_results_total") == done_while_blocked
        emulator.control.configure(daily_limit=None)
        emulator.control.reset_daily()
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= 200,
            60,
            "every result after the reset",
        )
        assert httpx.get(readyz).status_code == 200
        assert service.stop() == 0
    _all_upserted(kafka_bootstrap, topics)
    assert any(r["status"] == 429 for r in emulator.control.requests())


def test_refused_credentials_hold_until_a_new_token_appears_in_the_mounted_file(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale-token-0000\n")
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, _distinct_events(50))
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        HUBSPOT_ACCESS_TOKEN_FILE=str(token_file),
        HUBSPOT_AUTH_RETRY_S="1",
    )
    del env["HUBSPOT_ACCESS_TOKEN"]
    readyz = f"http://127.0.0.1:{env['HTTP_PORT']}/readyz"
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: service.metric("subscription_upserter_hubspot_auth_failures_total") >= 2,
            60,
            "refused credentials",
        )
        assert "credentials" in httpx.get(readyz).text
        assert service.metric("subscription_upserter_results_total") == 0
        token_file.write_text(TOKEN + "\n")
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= 50,
            60,
            "results once the token is valid",
        )
        assert httpx.get(readyz).status_code == 200
        assert service.stop() == 0
        log = service.log_text()
    _all_upserted(kafka_bootstrap, topics)
    assert "stale-token-0000" not in log and TOKEN not in log


def test_the_date_versioned_path_and_object_type_are_configurable(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, _distinct_events(20))
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        HUBSPOT_API_VERSION="2026-03",
        HUBSPOT_OBJECT_TYPE="subscriptions",
    )
    run_until_results(env, tmp_path / "service.log", 20, timeout_s=60)
    paths = {r["path"] for r in emulator.control.requests()}
    assert paths == {"/crm/objects/2026-03/subscriptions/batch/upsert"}
    _all_upserted(kafka_bootstrap, topics)


def test_no_token_appears_in_logs_results_dead_letters_or_metrics(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    events = _distinct_events(30)
    events.append((b"bad", b"{oops"))
    events.append(event_bytes("sub-unknown", no_such_property="x"))
    produce(kafka_bootstrap, topics.input, events)
    env = service_env(kafka_bootstrap, topics, emulator.url, LOG_LEVEL="DEBUG")
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= 32, 60, "every result"
        )
        metrics_text = httpx.get(service.metrics_url).text
        assert service.stop() == 0
        log = service.log_text()
    outputs = [r.value or b"" for r in read_all(kafka_bootstrap, topics.output)]
    outputs += [str(r.headers).encode() for r in read_all(kafka_bootstrap, topics.dlq)]
    for text in [log, metrics_text, *(o.decode(errors="replace") for o in outputs)]:
        assert TOKEN not in text


def test_oauth_access_tokens_are_refreshed_ahead_of_expiry_without_a_401(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    secret, refresh = "oauth-client-secret-91ab", "oauth-refresh-token-5d2e"
    emulator.control.configure(
        oauth_clients={"client-1": secret}, oauth_refresh_tokens=[refresh], oauth_access_ttl_s=4
    )
    topics = new_topics(kafka_bootstrap, partitions=1)
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        HUBSPOT_CLIENT_ID="client-1",
        HUBSPOT_CLIENT_SECRET=secret,
        HUBSPOT_REFRESH_TOKEN=refresh,
        HUBSPOT_OAUTH_REFRESH_MARGIN_S="2",
    )
    del env["HUBSPOT_ACCESS_TOKEN"]
    with running_service(env, tmp_path / "service.log") as service:
        for wave in range(3):
            produce(kafka_bootstrap, topics.input, _distinct_events(20, prefix=f"w{wave}"))
            wait_until(
                lambda: service.metric("subscription_upserter_results_total") >= 20 * (wave + 1),  # noqa: B023
                60,
                f"wave {wave}",
            )
            time.sleep(2.5)
        assert service.stop() == 0
        log = service.log_text()
    _all_upserted(kafka_bootstrap, topics)
    assert emulator.control.stats()["oauthRefreshes"] >= 2
    assert {r["status"] for r in emulator.control.requests()} == {200}
    assert secret not in log and refresh not in log
