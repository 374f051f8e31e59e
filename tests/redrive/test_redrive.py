"""`python -m service redrive` against the real broker: filters, dry run, committed progress,
the loop guard, and a failed event that is upserted after the schema is fixed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from devstack.emulator import RunningEmulator
from tests.integration.support import (
    Consumed,
    Topics,
    event_bytes,
    new_topics,
    produce,
    read_all,
    results_by_source,
    run_command,
    running_service,
    service_env,
    wait_until,
)

pytestmark = pytest.mark.kafka

HOUR_MS = 3_600_000


def _dead_letter(
    key: str,
    category: str,
    status: str = "invalid",
    *,
    original: list[tuple[str, bytes]] | None = None,
    timestamp_ms: int | None = None,
    source: tuple[str, int] = ("events", 0),
) -> dict[str, object]:
    headers = [
        *(original or [("trace", f"t-{key}".encode())]),
        ("error.status", status.encode()),
        ("error.category", category.encode()),
        ("error.message", f"{category} for {key}".encode()),
        ("source.topic", source[0].encode()),
        ("source.partition", str(source[1]).encode()),
        ("source.offset", b"7"),
    ]
    return {
        "key": key.encode(),
        "value": orjson.dumps({"id": key, "properties": {"hs_name": key}}),
        "headers": headers,
        "timestamp": timestamp_ms or 0,
    }


def _write_dlq(bootstrap: str, topic: str, records: list[dict[str, object]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        producer.produce(topic, **record)  # type: ignore[arg-type]
    assert producer.flush(30) == 0


def _redrive(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_command(env, "redrive", *args, timeout_s=90)


def _setup(bootstrap: str) -> tuple[Topics, dict[str, str]]:
    topics = new_topics(bootstrap, partitions=1)
    return topics, service_env(bootstrap, topics, "http://127.0.0.1:9")


def _keys(records: list[Consumed]) -> list[bytes | None]:
    return [r.key for r in records]


def test_category_and_status_filters_select_what_is_republished_with_clean_headers(
    kafka_bootstrap: str,
) -> None:
    topics, env = _setup(kafka_bootstrap)
    _write_dlq(
        kafka_bootstrap,
        topics.dlq,
        [
            _dead_letter("a", "NOT_JSON"),
            _dead_letter("b", "VALIDATION_ERROR", "failed"),
            _dead_letter("c", "NESTED_PROPERTY"),
            _dead_letter("d", "NOT_JSON", "failed"),
        ],
    )
    done = _redrive(
        env, "--category", "NOT_JSON", "--category", "NESTED_PROPERTY", "--status", "invalid"
    )
    assert done.returncode == 0, done.stderr
    assert "sent 2, skipped by filter 2, skipped by loop guard 0" in done.stdout
    sent = read_all(kafka_bootstrap, topics.input)
    assert _keys(sent) == [b"a", b"c"]
    first = sent[0]
    assert first.value == orjson.dumps({"id": "a", "properties": {"hs_name": "a"}})
    assert first.headers == {"trace": b"t-a", "redrive.count": b"1"}


def test_since_and_until_select_by_the_dead_letter_timestamp(kafka_bootstrap: str) -> None:
    topics, env = _setup(kafka_bootstrap)
    now = int(time.time() * 1000)
    _write_dlq(
        kafka_bootstrap,
        topics.dlq,
        [
            _dead_letter("old", "NOT_JSON", timestamp_ms=now - 3 * HOUR_MS),
            _dead_letter("middle", "NOT_JSON", timestamp_ms=now - 2 * HOUR_MS),
            _dead_letter("new", "NOT_JSON", timestamp_ms=now),
        ],
    )
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime((now - 2.5 * HOUR_MS) / 1000))
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((now - HOUR_MS) / 1000))  # naive: UTC
    done = _redrive(env, "--since", since, "--until", until)
    assert done.returncode == 0, done.stderr
    assert _keys(read_all(kafka_bootstrap, topics.input)) == [b"middle"]
    assert "sent 1, skipped by filter 2" in done.stdout


def test_dry_run_lists_records_and_neither_sends_nor_commits(kafka_bootstrap: str) -> None:
    topics, env = _setup(kafka_bootstrap)
    _write_dlq(
        kafka_bootstrap,
        topics.dlq,
        [_dead_letter("a", "NOT_JSON"), _dead_letter("b", "VALIDATION_ERROR", "failed")],
    )
    dry = _redrive(env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == "would send 0/0 key='a' NOT_JSON: NOT_JSON for a"
    assert lines[1] == "would send 0/1 key='b' VALIDATION_ERROR: VALIDATION_ERROR for b"
    assert "would send 2, skipped by filter 0" in lines[2]
    assert read_all(kafka_bootstrap, topics.input) == []
    real = _redrive(env)
    assert real.returncode == 0, real.stderr
    assert _keys(read_all(kafka_bootstrap, topics.input)) == [b"a", b"b"]


def test_a_second_run_resends_nothing_and_picks_up_only_new_dead_letters(
    kafka_bootstrap: str,
) -> None:
    topics, env = _setup(kafka_bootstrap)
    _write_dlq(kafka_bootstrap, topics.dlq, [_dead_letter("a", "NOT_JSON")])
    assert _redrive(env).returncode == 0
    again = _redrive(env)
    assert again.returncode == 0, again.stderr
    assert "sent 0, skipped by filter 0, skipped by loop guard 0" in again.stdout
    _write_dlq(kafka_bootstrap, topics.dlq, [_dead_letter("b", "NOT_JSON")])
    third = _redrive(env)
    assert "sent 1," in third.stdout
    assert _keys(read_all(kafka_bootstrap, topics.input)) == [b"a", b"b"]


def test_the_loop_guard_skips_records_redriven_max_times_with_a_note(kafka_bootstrap: str) -> None:
    topics, env = _setup(kafka_bootstrap)
    _write_dlq(
        kafka_bootstrap,
        topics.dlq,
        [
            _dead_letter("twice", "VALIDATION_ERROR", "failed", original=[("redrive.count", b"2")]),
            _dead_letter(
                "thrice", "VALIDATION_ERROR", "failed", original=[("redrive.count", b"3")]
            ),
        ],
    )
    done = _redrive(env)
    assert done.returncode == 0, done.stderr
    assert "skip 0/1 key='thrice' VALIDATION_ERROR: already redriven 3 times" in done.stdout
    assert "sent 1, skipped by filter 0, skipped by loop guard 1" in done.stdout
    [sent] = read_all(kafka_bootstrap, topics.input)
    assert sent.key == b"twice" and sent.headers == {"redrive.count": b"3"}
    redone = _redrive(env, "--group", f"{topics.group}-other", "--max-redrives", "4")
    assert "sent 2, skipped by filter 0, skipped by loop guard 0" in redone.stdout


def test_a_failed_event_is_upserted_after_the_schema_is_fixed_and_it_is_redriven(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap)
    known = emulator.control.config()["known_properties"]
    produce(
        kafka_bootstrap,
        topics.input,
        [
            event_bytes("sub-ok", hs_name="fine"),
            event_bytes("sub-new", hs_name="x", plan_tier="gold"),
        ],
    )
    env = service_env(kafka_bootstrap, topics, emulator.url)
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(lambda: len(read_all(kafka_bootstrap, topics.dlq)) == 1, 60, "a dead letter")
        [dead] = read_all(kafka_bootstrap, topics.dlq)
        assert dead.key == b"sub-new" and dead.headers["error.status"] == b"failed"
        assert dead.headers["error.category"] == b"VALIDATION_ERROR"
        assert "sub-new" not in emulator.control.store()

        emulator.control.configure(known_properties=[*known, "plan_tier"])
        done = _redrive(env, "--status", "failed")
        assert done.returncode == 0, done.stderr
        assert "sent 1," in done.stdout

        wait_until(lambda: "sub-new" in emulator.control.store(), 60, "the redriven upsert")
        assert service.stop() == 0
    assert emulator.control.store()["sub-new"]["properties"]["plan_tier"] == "gold"
    statuses = sorted(
        str(docs[0]["status"])
        for docs in results_by_source(kafka_bootstrap, topics.output).values()
    )
    assert statuses == ["failed", "upserted", "upserted"]
    assert len(read_all(kafka_bootstrap, topics.dlq)) == 1


def test_a_range_larger_than_the_producers_queue_is_sent_whole(kafka_bootstrap: str) -> None:
    topics, env = _setup(kafka_bootstrap)
    count = 300
    _write_dlq(
        kafka_bootstrap, topics.dlq, [_dead_letter(f"k{n}", "NOT_JSON") for n in range(count)]
    )
    small_queue = {**env, "KAFKA_EXTRA_CONFIG": '{"queue.buffering.max.messages": 20}'}
    done = _redrive(small_queue)
    assert done.returncode == 0, done.stderr
    assert f"sent {count}," in done.stdout
    assert _keys(read_all(kafka_bootstrap, topics.input)) == [
        f"k{n}".encode() for n in range(count)
    ]


def test_each_event_goes_back_to_the_input_partition_it_came_from(kafka_bootstrap: str) -> None:
    # Upstream may partition ids with another hash than librdkafka's default: sent back by
    # key, an event could land beside a different member's newer events for the same id.
    topics = new_topics(kafka_bootstrap, partitions=3)
    env = service_env(kafka_bootstrap, topics, "http://127.0.0.1:9")
    records = [_dead_letter(f"id-{n}", "NOT_JSON", source=(topics.input, n % 3)) for n in range(9)]
    _write_dlq(kafka_bootstrap, topics.dlq, records)
    done = _redrive(env)
    assert done.returncode == 0, done.stderr
    sent = read_all(kafka_bootstrap, topics.input)
    assert sorted((r.key, r.partition) for r in sent) == sorted(
        (f"id-{n}".encode(), n % 3) for n in range(9)
    )
