"""exactly_once mode: results, dead letters and offsets commit in one Kafka transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.emulator import RunningEmulator
from tests.integration.support import (
    event_bytes,
    input_offsets,
    new_topics,
    produce,
    read_all,
    result_counts,
    running_service,
    service_env,
    wait_for_zero_lag,
    wait_until,
)

pytestmark = [pytest.mark.kafka]


def test_a_read_committed_reader_sees_exactly_one_result_per_offset(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap)
    events = [event_bytes(f"sub-{n % 70:03d}", hs_name=f"Plan {n}") for n in range(1_000)]
    events.insert(10, (b"bad", b"{nope"))
    produce(kafka_bootstrap, topics.input, list(events))
    env = service_env(
        kafka_bootstrap,
        topics,
        emulator.url,
        DELIVERY_GUARANTEE="exactly_once",
        KAFKA_TRANSACTIONAL_ID=f"{topics.group}-tx",
    )
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: (
                sum(result_counts(kafka_bootstrap, topics.output, "read_committed").values())
                >= 1_001
            ),
            90,
            "every result, committed",
        )
        # lag counts from the service's own commits: the consumer never sees the offsets
        # committed with a transaction (librdkafka's own figure stayed at the whole backlog)
        wait_for_zero_lag(service, partitions=3)
        assert service.stop() == 0
    counts = result_counts(kafka_bootstrap, topics.output, "read_committed")
    assert set(counts) == input_offsets(kafka_bootstrap, topics.input)
    assert set(counts.values()) == {1}
    dead = read_all(kafka_bootstrap, topics.dlq)
    assert [d.value for d in dead] == [b"{nope"]
