"""Delivery guarantees under faults: SIGKILLs, a rebalance and a broker restart mid-stream.

One long run per delivery mode against the real broker and the emulator: events are produced
while service processes are killed with SIGKILL at random moments and restarted, a second
instance joins and leaves the group, and the broker restarts. Afterwards: no input offset is
without a result, HubSpot's final state equals the last event per id, per-id order held,
a trace id was never sent with different content, duplicates exist only where a kill left
work uncommitted (none at all for a read_committed reader in exactly_once mode), and the
resident memory of every process stayed under the cap.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from devstack.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from devstack.kafka import LocalBroker
from tests.chaos.streams import produce_over, versioned_events
from tests.integration.support import (
    TOKEN,
    ServiceProcess,
    Topics,
    committed,
    input_offsets,
    new_topics,
    read_all,
    result_counts,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 50_000
IDS = 2_000
PARTITIONS = 6
KILLS = 10
RSS_CAP_BYTES = 300 * 1024 * 1024


@pytest.fixture
def chaos_emulator() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        tokens=frozenset({TOKEN}), latency_ms=30, jitter_ms=20, rate_limit_max=None, seed=11
    )
    running = start_in_thread(config)
    try:
        yield running
    finally:
        running.stop()


def _peak_rss(service: ServiceProcess) -> int:
    try:
        for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Chaos:
    """Starts, kills and restarts service processes and records what each kill left behind."""

    def __init__(self, bootstrap: str, topics: Topics, env: dict[str, str], tmp: Path) -> None:
        self.bootstrap, self.topics, self.env, self.tmp = bootstrap, topics, env, tmp
        self.committed_at_kill: list[dict[int, int]] = []
        self.peak_rss: list[int] = []
        self._count = 0

    def start(self) -> ServiceProcess:
        self._count += 1
        env = {**self.env, "HTTP_PORT": str(20_000 + random.randrange(20_000))}
        return ServiceProcess(env, self.tmp / f"service-{self._count}.log")

    def kill(self, service: ServiceProcess) -> None:
        self.peak_rss.append(_peak_rss(service))
        service.kill()
        self.committed_at_kill.append(
            committed(self.bootstrap, self.topics.group, self.topics.input, PARTITIONS)
        )

    def stop(self, service: ServiceProcess) -> int:
        self.peak_rss.append(_peak_rss(service))
        return service.stop(timeout_s=90)


def _run_chaos(
    chaos: _Chaos, broker: LocalBroker | None, producer: threading.Thread, rng: random.Random
) -> None:
    service = chaos.start()
    for kill in range(KILLS):
        time.sleep(rng.uniform(1.5, 3.5))
        if kill == 3:
            joiner = chaos.start()  # a second instance joins, works a while, and leaves
            time.sleep(6)
            assert chaos.stop(joiner) == 0
        if kill == 6 and broker is not None:
            broker.restart()
        chaos.kill(service)
        service = chaos.start()
    producer.join(timeout=120)
    expected = len(input_offsets(chaos.bootstrap, chaos.topics.input))
    wait_until(
        lambda: (
            service.metric("subscription_upserter_buffered_events") == 0
            and _distinct_results(chaos) >= expected
        ),
        240,
        "the last incarnation to finish",
    )
    assert chaos.stop(service) == 0


def _duplicates(bootstrap: str, topics: Topics, counts: Counter[tuple[int, int]]) -> str:
    """What a failure needs to be understood: the first duplicated results, as committed."""
    twice = {source for source, seen in counts.items() if seen > 1}
    lines = [f"{len(twice)} input offsets have more than one committed result"]
    for record in read_all(bootstrap, topics.output):
        document = record.json()
        source = document["source"]
        assert isinstance(source, dict)
        if (source["partition"], source["offset"]) in twice and len(lines) < 13:
            lines.append(f"  result at {record.partition}/{record.offset}: {document}")
    return "\n".join(lines)


def _distinct_results(chaos: _Chaos) -> int:
    return len(result_counts(chaos.bootstrap, chaos.topics.output, "read_committed"))


def _last_event_per_id(bootstrap: str, topic: str) -> dict[str, dict[str, object]]:
    last: dict[str, tuple[int, int, dict[str, object]]] = {}
    for record in read_all(bootstrap, topic):
        document = orjson.loads(record.value or b"")
        key = document["id"]
        if key not in last or record.offset > last[key][1]:
            last[key] = (record.partition, record.offset, document["properties"])
    return {key: props for key, (_, _, props) in last.items()}


def _assert_hubspot_state_and_order(
    emulator: RunningEmulator, bootstrap: str, topics: Topics, restarts: int
) -> None:
    store = emulator.control.store()
    for sub_id, properties in _last_event_per_id(bootstrap, topics.input).items():
        stored = store[sub_id]["properties"]
        assert stored["hs_amount"] == str(properties["hs_amount"]), sub_id
    contents: dict[str, bytes] = {}
    inversions: dict[str, int] = defaultdict(int)
    for sub_id, writes in emulator.control.history().items():
        versions = [int(w["properties"]["hs_amount"]) for w in writes]
        inversions[sub_id] = sum(1 for a, b in itertools.pairwise(versions) if b < a)
        for write in writes:
            content = orjson.dumps(write["properties"], option=orjson.OPT_SORT_KEYS)
            trace = str(write["traceId"])
            assert contents.setdefault(trace, content) == content, trace
    # Only a replay after a kill (or a revoked partition) may step an id back, once per replay.
    assert max(inversions.values()) <= restarts + 2


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_kills_a_rebalance_and_a_broker_restart_lose_nothing_and_keep_per_id_order(
    guarantee: str,
    kafka_bootstrap: str,
    local_broker: LocalBroker | None,
    chaos_emulator: RunningEmulator,
    tmp_path: Path,
) -> None:
    rng = random.Random(2026)
    topics = new_topics(kafka_bootstrap, partitions=PARTITIONS)
    env = service_env(
        kafka_bootstrap,
        topics,
        chaos_emulator.url,
        DELIVERY_GUARANTEE=guarantee,
        KAFKA_TRANSACTIONAL_ID=f"{topics.group}-tx",
        MAX_BUFFERED_BYTES="16000000",
        MAX_BUFFERED_EVENTS="5000",
        MAX_IN_FLIGHT_BATCHES="2",
        DRAIN_TIMEOUT_S="20",
    )
    chaos = _Chaos(kafka_bootstrap, topics, env, tmp_path)
    events = versioned_events(EVENTS, IDS, seed=7)
    producer = produce_over(kafka_bootstrap, topics.input, events, seconds=25)
    _run_chaos(chaos, local_broker, producer, rng)

    inputs = input_offsets(kafka_bootstrap, topics.input)
    assert len(inputs) == EVENTS
    isolation = "read_committed"
    counts = result_counts(kafka_bootstrap, topics.output, isolation)
    assert set(counts) == inputs, f"{len(inputs - set(counts))} offsets have no result"
    if guarantee == "exactly_once":
        assert set(counts.values()) == {1}, _duplicates(kafka_bootstrap, topics, counts)
    else:
        for (partition, offset), seen in counts.items():
            uncommitted_at = sum(
                1 for c in chaos.committed_at_kill if offset >= c.get(partition, 0)
            )
            assert seen - 1 <= uncommitted_at, (partition, offset, seen)
    _assert_hubspot_state_and_order(chaos_emulator, kafka_bootstrap, topics, len(chaos.peak_rss))
    assert max(chaos.peak_rss) < RSS_CAP_BYTES
