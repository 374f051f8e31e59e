"""A generated corpus of hostile and good events through the real service and the emulator:
exact accounting of results and dead letters, clear reasons, and a clean exit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from devstack.emulator import RunningEmulator
from tests.integration.support import (
    new_topics,
    read_all,
    results_by_source,
    running_service,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

GOOD = 9_000
# Inputs stay below librdkafka's default message.max.bytes (1,000,000) with room for the
# dead-letter headers: a dead letter copies the whole value, so an input at the limit would
# make a dead letter the broker refuses.
HUGE_VALUE_CHARS = 900_000


def _bad_events(rng: random.Random) -> list[tuple[str, bytes | None, str]]:
    """(kind, value, expected category): several of each hostile kind."""
    nested = "[" * 5_000 + "]" * 5_000
    kinds: list[tuple[str, bytes | None, str]] = [
        ("random-bytes", bytes(rng.randrange(256) for _ in range(64)) + b"\xff", "NOT_UTF8"),
        ("not-json", b"{not json", "NOT_JSON"),
        ("deep", f'{{"id": "deep", "properties": {{"x": {nested}}}}}'.encode(), "NOT_JSON"),
        ("surrogate", b'{"id": "s\\ud800", "properties": {}}', "NOT_JSON"),
        ("number-id", b'{"id": 12345, "properties": {}}', "INVALID_ID"),
        ("bool-id", b'{"id": true, "properties": {}}', "INVALID_ID"),
        ("empty-id", b'{"id": "", "properties": {}}', "INVALID_ID"),
        ("dup-keys", b'{"id": "dup", "properties": {"a": 1, "a": {"b": 2}}}', "NESTED_PROPERTY"),
        (
            "many-props",
            orjson.dumps({"id": "many", "properties": {f"p{n}": n for n in range(1_200)}}),
            "TOO_MANY_PROPERTIES",
        ),
        (
            "long-value",
            orjson.dumps({"id": "long", "properties": {"hs_name": "v" * 65_537}}),
            "VALUE_TOO_LONG",
        ),
        (
            "huge-value",
            orjson.dumps({"id": "huge", "properties": {"hs_name": "h" * HUGE_VALUE_CHARS}}),
            "VALUE_TOO_LONG",
        ),
        ("huge-id", orjson.dumps({"id": "i" * HUGE_VALUE_CHARS, "properties": {}}), "INVALID_ID"),
        ("tombstone", None, "EMPTY_VALUE"),
        ("array", b"[1, 2]", "NOT_AN_OBJECT"),
        ("unknown-property", None, "VALIDATION_ERROR"),  # valid JSON; HubSpot rejects it
    ]
    events = []
    for kind, value, category in kinds:
        for n in range(70):
            unknown = {"id": f"unknown-{n}", "properties": {"hs_name": "x", "no_such_prop": "y"}}
            body = orjson.dumps(unknown) if kind == "unknown-property" else value
            events.append((kind, body, category))
    return events


def test_ten_thousand_hostile_and_good_events_are_accounted_for_exactly(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    rng = random.Random(11)
    topics = new_topics(kafka_bootstrap)
    corpus: list[tuple[str, bytes | None, str | None]] = [
        (
            "good",
            json.dumps(
                {"id": f"sub-{rng.randrange(2_000):04d}", "properties": {"hs_name": f"é ☃ {n}"}}
            ).encode(),
            None,
        )
        for n in range(GOOD)
    ]
    corpus += _bad_events(rng)
    rng.shuffle(corpus)
    assert len(corpus) >= 10_000
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    for index, (kind, value, _) in enumerate(corpus):
        headers: list[tuple[str, str | bytes]] = [
            ("kind", kind.encode()),
            ("n", str(index).encode()),
        ]
        producer.produce(topics.input, key=f"k{index}".encode(), value=value, headers=headers)
        producer.poll(0)
    assert producer.flush(60) == 0

    env = service_env(kafka_bootstrap, topics, emulator.url)
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= len(corpus),
            180,
            "a result for every event",
        )
        assert service.stop() == 0, service.log_text()[-3_000:]

    inputs = {(r.partition, r.offset): r for r in read_all(kafka_bootstrap, topics.input)}
    assert len(inputs) == len(corpus)
    results = results_by_source(kafka_bootstrap, topics.output)
    assert set(results) == set(inputs)
    assert all(len(docs) == 1 for docs in results.values()), "a clean stop gives exactly one"
    dead_letters = {}
    for record in read_all(kafka_bootstrap, topics.dlq):
        where = (int(record.headers["source.partition"]), int(record.headers["source.offset"]))
        assert where not in dead_letters, f"two dead letters for {where}"
        dead_letters[where] = record

    expected = {index: category for index, (_, _, category) in enumerate(corpus)}
    for where, original in inputs.items():
        [result] = results[where]
        category = expected[int(original.headers["n"])]
        if result["status"] == "upserted":
            assert category is None, (original.headers["kind"], result)
            assert where not in dead_letters
            continue
        error = result["error"]
        assert isinstance(error, dict)
        assert error["category"] == category, (original.headers["kind"], error)
        dead = dead_letters[where]
        assert (dead.key, dead.value) == (original.key, original.value)
        assert {
            k: v for k, v in dead.headers.items() if not k.startswith(("error.", "source."))
        } == (original.headers)
        assert dead.headers["error.status"] == str(result["status"]).encode()
        assert dead.headers["error.category"] == str(category).encode()
        assert dead.headers["error.message"]
    assert len(dead_letters) == len(corpus) - GOOD
