"""Concurrency with per-id order, backpressure, and graceful shutdown, on the real broker."""

from __future__ import annotations

import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from devstack.emulator import RunningEmulator
from tests.integration.support import (
    committed,
    event_bytes,
    input_offsets,
    new_topics,
    produce,
    results_by_source,
    running_service,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.kafka]


def _versioned_events(count: int, ids: int) -> list[tuple[bytes | None, bytes | None]]:
    versions: Counter[str] = Counter()
    events: list[tuple[bytes | None, bytes | None]] = []
    for n in range(count):
        sub_id = f"sub-{(n * 7) % ids:04d}"
        versions[sub_id] += 1
        events.append(event_bytes(sub_id, hs_name="x", hs_amount=versions[sub_id]))
    return events


def test_concurrent_batches_never_reorder_one_ids_upserts(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(latency_ms=40, jitter_ms=120, rate_limit_max=None)
    topics = new_topics(kafka_bootstrap, partitions=3)
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        MAX_IN_FLIGHT_BATCHES="8",
        BATCH_MAX_SIZE="20",
        BATCH_MAX_WAIT_MS="20",
    )
    with running_service(env, tmp_path / "service.log") as service:
        events = _versioned_events(4_000, 150)
        for wave in range(4):  # arrive in waves, so the same ids recur while batches are in flight
            produce(kafka_bootstrap, topics.input, events[wave * 1_000 : (wave + 1) * 1_000])
            time.sleep(0.5)
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= 4_000,
            120,
            "every result",
        )
        assert service.stop() == 0
    for sub_id, writes in emulator.control.history().items():
        versions = [int(w["properties"]["hs_amount"]) for w in writes]
        assert all(b > a for a, b in pairwise(versions)), (sub_id, versions)
    assert _most_requests_at_once(emulator) > 1, "batches should have overlapped"


def _most_requests_at_once(emulator: RunningEmulator) -> int:
    edges: list[tuple[str, int]] = []
    for request in emulator.control.requests():
        edges += [(str(request["receivedAt"]), 1), (str(request["answeredAt"]), -1)]
    level = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        level += step
        peak = max(peak, level)
    return peak


def test_a_slow_hubspot_pauses_consumption_within_the_buffer_cap_without_eviction(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(latency_ms=1_500, rate_limit_max=None)
    topics = new_topics(kafka_bootstrap, partitions=2)
    produce(kafka_bootstrap, topics.input, _versioned_events(3_000, 3_000))
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        MAX_BUFFERED_EVENTS="400",
        MAX_IN_FLIGHT_BATCHES="2",
        BATCH_MAX_SIZE="100",
        # A short poll interval (librdkafka needs it >= the session timeout; 6 s is the
        # broker's minimum): pausing must keep polling, or the member would be evicted.
        KAFKA_EXTRA_CONFIG='{"max.poll.interval.ms": 8000, "session.timeout.ms": 6000}',
    )
    peak_buffered = 0.0
    paused_seen = False
    with running_service(env, tmp_path / "service.log") as service:
        deadline = time.monotonic() + 120
        while service.metric("subscription_upserter_results_total") < 3_000:
            assert time.monotonic() < deadline, "did not finish"
            peak_buffered = max(
                peak_buffered, service.metric("subscription_upserter_buffered_events")
            )
            paused_seen |= service.metric("subscription_upserter_paused_partitions") > 0
            time.sleep(0.3)
        assert service.stop() == 0
        log = service.log_text()
    assert paused_seen
    assert peak_buffered <= 400 + 500  # the cap, plus at most one poll's worth
    assert "partitions lost" not in log
    assert log.count("partitions revoked") <= 1  # only the final leave-group
    results = results_by_source(kafka_bootstrap, topics.output)
    assert set(results) == input_offsets(kafka_bootstrap, topics.input)


def test_sigterm_finishes_every_consumed_event_commits_and_exits_zero_within_the_drain_timeout(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    # HubSpot takes 2 s per request; SIGTERM comes with batches in flight and many events
    # still waiting behind them: all of them are finished, nothing is left to repeat.
    emulator.control.configure(latency_ms=2_000, rate_limit_max=None)
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, _versioned_events(2_000, 500))
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        MAX_IN_FLIGHT_BATCHES="4",
        DRAIN_TIMEOUT_S="25",
        BATCH_MAX_WAIT_MS="100",
    )
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: service.metric("subscription_upserter_in_flight_batches") >= 2,
            30,
            "batches in flight",
        )
        consumed = service.metric("subscription_upserter_events_consumed_total")
        started = time.monotonic()
        assert service.stop(timeout_s=60) == 0
        assert time.monotonic() - started < 25
    results = results_by_source(kafka_bootstrap, topics.output)
    assert len(results) >= consumed > 400, "what was consumed was finished, not abandoned"
    assert all(len(docs) == 1 for docs in results.values())
    position = committed(kafka_bootstrap, topics.group, topics.input, 1)[0]
    assert position == len(results), "every published result is committed, nothing more"
    # The restart resumes right after the committed position: nothing is done twice.
    with running_service(env, tmp_path / "second.log") as service:
        wait_until(
            lambda: len(results_by_source(kafka_bootstrap, topics.output)) >= 2_000,
            120,
            "the rest after the restart",
        )
        assert service.stop(timeout_s=60) == 0
    counts = Counter(
        len(docs) for docs in results_by_source(kafka_bootstrap, topics.output).values()
    )
    assert counts == Counter({1: 2_000})
