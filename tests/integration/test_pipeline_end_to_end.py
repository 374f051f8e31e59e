"""The pipeline against the real broker and the HubSpot emulator (issue: a real pipeline)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from devstack.emulator import RunningEmulator
from devstack.kafka import watermark_offsets
from tests.integration.support import (
    ID_PROPERTY,
    TOKEN,
    Topics,
    committed,
    event_bytes,
    input_offsets,
    new_topics,
    produce,
    read_all,
    results_by_source,
    run_until_results,
    running_service,
    service_env,
    wait_for_zero_lag,
    wait_until,
)

pytestmark = pytest.mark.kafka


def _snapshot_events(count: int, ids: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    statuses = ["active", "past_due", "canceled", "expired"]
    return [
        event_bytes(
            f"sub-{rng.randrange(ids):04d}",
            hs_name=f"Plan {n}",
            hs_status=rng.choice(statuses),
            hs_amount=n,
        )
        for n in range(count)
    ]


def _last_event_per_id(bootstrap: str, topic: str) -> dict[str, dict[str, str]]:
    last: dict[str, tuple[int, dict[str, str]]] = {}
    for record in read_all(bootstrap, topic):
        try:
            document = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            continue
        properties = {k: str(v) for k, v in document.get("properties", {}).items()}
        if record.offset >= last.get(document["id"], (-1, {}))[0]:
            last[document["id"]] = (record.offset, properties)
    return {key: props for key, (_, props) in last.items()}


def _assert_hubspot_matches_last_events(
    bootstrap: str, topics: Topics, emulator: RunningEmulator
) -> None:
    store = emulator.control.store()
    expected = _last_event_per_id(bootstrap, topics.input)
    for event_id, properties in expected.items():
        if set(properties) - {"hs_name", "hs_status", "hs_amount"}:
            continue
        stored = store[event_id]["properties"]
        assert {k: stored.get(k) for k in properties} == properties, event_id


def _wait_for_all_results(
    bootstrap: str, topics: Topics, expected: int, timeout_s: float = 90
) -> None:
    wait_until(
        lambda: len(results_by_source(bootstrap, topics.output)) >= expected,
        timeout_s,
        f"{expected} results",
    )


def test_a_stream_with_repeated_ids_and_bad_events_ends_with_one_result_per_event(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap)
    events: list[tuple[bytes | None, bytes | None]] = list(_snapshot_events(600, 80, seed=1))
    bad = [
        (b"bad-1", b"{not json"),
        (b"bad-2", b'{"id": "sub-x", "properties": {"a": {"b": 1}}}'),
        (b"bad-3", b"\xff\xfe"),
        (None, b'{"properties": {}}'),
    ]
    events[100:100] = bad
    produce(kafka_bootstrap, topics.input, events)
    env = service_env(kafka_bootstrap, topics, emulator.url)
    with running_service(env, tmp_path / "service.log") as service:
        _wait_for_all_results(kafka_bootstrap, topics, len(events))
        assert service.stop() == 0

    results = results_by_source(kafka_bootstrap, topics.output)
    assert set(results) == input_offsets(kafka_bootstrap, topics.input)
    statuses = [docs[0]["status"] for docs in results.values()]
    assert statuses.count("invalid") == 4
    assert statuses.count("upserted") == 600
    dead = read_all(kafka_bootstrap, topics.dlq)
    assert sorted(d.headers["error.category"] for d in dead) == sorted(
        [b"NOT_JSON", b"NESTED_PROPERTY", b"NOT_UTF8", b"MISSING_ID"]
    )
    assert {d.value for d in dead} == {value for _, value in bad}
    assert all(d.headers["error.status"] == b"invalid" and d.headers["error.message"] for d in dead)

    requests = emulator.control.requests()
    assert requests and all(r["status"] == 200 for r in requests)
    coalesced = [docs[0] for docs in results.values() if docs[0]["coalescedInto"]]
    assert coalesced, "repeated ids inside a window should have been coalesced"
    assert sum(r["inputs"] for r in requests) == 600 - len(coalesced)
    _assert_hubspot_matches_last_events(kafka_bootstrap, topics, emulator)
    ends = committed(kafka_bootstrap, topics.group, topics.input, 3)
    per_partition = {p: 1 + max(o for q, o in results if q == p) for p, _ in results}
    assert ends == per_partition


def test_a_multi_status_reply_maps_to_per_event_outcomes_even_when_shuffled(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(shuffle_results=True)
    topics = new_topics(kafka_bootstrap, partitions=1)
    events = [event_bytes(f"sub-{n:03d}", hs_name=f"Plan {n}") for n in range(60)]
    events[17] = event_bytes("sub-017", hs_name="x", not_a_property="boom")
    events[44] = event_bytes("sub-044", hs_name="y", hs_object_id="123")
    produce(kafka_bootstrap, topics.input, list(events))
    env = service_env(kafka_bootstrap, topics, emulator.url, BATCH_MAX_WAIT_MS="2000")
    with running_service(env, tmp_path / "service.log") as service:
        _wait_for_all_results(kafka_bootstrap, topics, 60)
        assert service.stop() == 0

    results = {
        offset: docs[0]
        for (_, offset), docs in results_by_source(kafka_bootstrap, topics.output).items()
    }
    store = emulator.control.store()
    assert any(r["status"] == 207 for r in emulator.control.requests())
    for offset, result in results.items():
        if offset in (17, 44):
            assert result["status"] == "failed"
            error = result["error"]
            assert isinstance(error, dict) and error["category"] == "VALIDATION_ERROR"
            continue
        assert result["status"] == "upserted"
        assert result["hubspotId"] == store[str(result["id"])]["hubspotId"]
        assert result["new"] is True
    dead = read_all(kafka_bootstrap, topics.dlq)
    assert sorted(int(d.headers["source.offset"]) for d in dead) == [17, 44]
    assert all(d.headers["error.status"] == b"failed" for d in dead)


def test_transient_faults_are_retried_and_never_fail_an_event(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    emulator.control.fault_next("503", count=2)
    emulator.control.fault_next("drop", count=1)
    emulator.control.fault_next("500", count=1, when="after")
    events = _snapshot_events(150, 40, seed=3)
    produce(kafka_bootstrap, topics.input, list(events))
    env = service_env(kafka_bootstrap, topics, emulator.url)
    with running_service(env, tmp_path / "service.log") as service:
        _wait_for_all_results(kafka_bootstrap, topics, 150)
        assert service.metric("subscription_upserter_hubspot_retries_total") >= 4
        assert service.stop() == 0
    statuses = {
        docs[0]["status"] for docs in results_by_source(kafka_bootstrap, topics.output).values()
    }
    assert statuses == {"upserted"}
    assert read_all(kafka_bootstrap, topics.dlq) == []
    _assert_hubspot_matches_last_events(kafka_bootstrap, topics, emulator)


def test_a_restart_mid_stream_loses_nothing(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(latency_ms=60)
    topics = new_topics(kafka_bootstrap)
    first = _snapshot_events(3_000, 300, seed=5)
    produce(kafka_bootstrap, topics.input, list(first))
    env = service_env(kafka_bootstrap, topics, emulator.url)
    run_until_results(env, tmp_path / "first.log", 500, timeout_s=60)
    produce(kafka_bootstrap, topics.input, list(_snapshot_events(1_000, 300, seed=6)))
    with running_service(env, tmp_path / "second.log") as service:
        _wait_for_all_results(kafka_bootstrap, topics, 4_000)
        assert service.stop() == 0

    results = results_by_source(kafka_bootstrap, topics.output)
    assert set(results) == input_offsets(kafka_bootstrap, topics.input)
    _assert_hubspot_matches_last_events(kafka_bootstrap, topics, emulator)
    traces: dict[str, bytes] = {}
    for request in emulator.control.requests():
        assert request["status"] == 200
    history = emulator.control.history()
    for writes in history.values():
        for write in writes:
            content = orjson.dumps(write["properties"], option=orjson.OPT_SORT_KEYS)
            assert traces.setdefault(str(write["traceId"]), content) == content


def test_a_bad_setting_stops_start_up_with_one_line_and_no_secret(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    env = service_env(kafka_bootstrap, topics, emulator.url, BATCH_MAX_SIZE="500")
    with running_service(env, tmp_path / "bad.log") as service:
        assert service.process.wait(timeout=30) == 2
    lines = service.log_text().strip().splitlines()
    assert len(lines) == 1
    assert "BATCH_MAX_SIZE" in lines[0] and TOKEN not in lines[0]


def test_a_missing_topic_stops_start_up_with_a_clear_line(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    env = service_env(kafka_bootstrap, topics, emulator.url, KAFKA_DLQ_TOPIC="no-such-topic")
    with running_service(env, tmp_path / "missing.log") as service:
        assert service.process.wait(timeout=60) != 0
    assert "no-such-topic" in service.log_text()
    assert ID_PROPERTY  # settings other than the topics were valid


def test_a_poison_input_in_a_rejected_batch_is_isolated_and_the_other_99_are_upserted(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.configure(multi_status=False)
    topics = new_topics(kafka_bootstrap, partitions=1)
    events = [event_bytes(f"sub-{n:03d}", hs_name=f"Plan {n}") for n in range(100)]
    events[63] = event_bytes("sub-063", hs_name="x", no_such_property="poison")
    produce(kafka_bootstrap, topics.input, list(events))
    env = service_env(kafka_bootstrap, topics, emulator.url, BATCH_MAX_WAIT_MS="3000")
    with running_service(env, tmp_path / "service.log") as service:
        _wait_for_all_results(kafka_bootstrap, topics, 100)
        assert service.stop() == 0
    results = {
        o: docs[0] for (_, o), docs in results_by_source(kafka_bootstrap, topics.output).items()
    }
    assert [o for o, r in results.items() if r["status"] == "failed"] == [63]
    assert sum(1 for r in results.values() if r["status"] == "upserted") == 99
    requests = emulator.control.requests()
    assert requests[0]["inputs"] == 100 and requests[0]["status"] == 400
    assert len(requests) <= 1 + 2 * 7
    assert len(emulator.control.store()) == 99
    dead = read_all(kafka_bootstrap, topics.dlq)
    assert [d.headers["source.offset"] for d in dead] == [b"63"]


def test_input_written_in_transactions_is_committed_to_its_end_and_reads_no_lag(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    # Each transaction leaves a marker after its records: a commit at the last record + 1
    # would stay one short of the end, and an idle partition would read lag 1 for good
    # (and, lag above 0 with no commit moving, set off the no-progress alert).
    topics = new_topics(kafka_bootstrap)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{topics.group}-upstream"}
    )
    producer.init_transactions()
    for batch in range(4):
        producer.begin_transaction()
        for n in range(30):
            key, value = event_bytes(f"sub-{batch}-{n}", hs_name="Plan")
            producer.produce(topics.input, value, key)
        producer.commit_transaction()
    ends = {p: _high_watermark(kafka_bootstrap, topics.input, p) for p in range(3)}
    with running_service(
        service_env(kafka_bootstrap, topics, emulator.url), tmp_path / "service.log"
    ) as service:
        wait_until(
            lambda: committed(kafka_bootstrap, topics.group, topics.input, 3) == ends,
            60,
            f"commits at each partition's end {ends}",
        )
        wait_for_zero_lag(service, partitions=3)
        assert service.stop() == 0


def _high_watermark(bootstrap: str, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return watermark_offsets(consumer, TopicPartition(topic, partition), 10)[1]
    finally:
        consumer.close()
