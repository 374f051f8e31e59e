"""Outcomes the events deserve, on the real broker and the HubSpot emulator: only the events
HubSpot rejects on their own fail (never a valid event for another's mistake), the lenient
mode for properties deleted in HubSpot, an input HubSpot keeps failing transiently while it
answers the rest, an outage that fails nothing, and a dead letter too big for its topic."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from devstack.emulator import RunningEmulator
from devstack.kafka import create_topics
from tests.integration.support import (
    Topics,
    committed,
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

pytestmark = [pytest.mark.kafka]

READ_ONLY = "hs_createdate"  # HubSpot answers READ_ONLY_VALUE for it, per input, in a 207
POISON = "poison_marker"  # the emulator answers 500 to any request with one of its values
QUICK_GIVE_UP = {"HUBSPOT_TRANSIENT_MAX_ATTEMPTS": "3", "HUBSPOT_TRANSIENT_MAX_S": "1"}


@dataclass(frozen=True)
class Sent:
    offset: int
    sub_id: str
    kind: str  # valid, read_only, invalid, poison
    properties: dict[str, str]


def _mixed_stream(count: int, ids: int, poison_at: tuple[int, ...], seed: int = 22) -> list[Sent]:
    """Ids repeating heavily, so most rejected events share an input with valid ones: 2% set
    a read-only property, 3% are invalid, and the events at `poison_at` carry a poison."""
    rng = random.Random(seed)
    sent = []
    for offset in range(count):
        sub_id = f"sub-{rng.randrange(ids):03d}"
        properties = {"hs_name": f"n{offset}", "hs_amount": str(offset % 97)}
        roll = rng.random()
        kind = "valid"
        if offset in poison_at:
            kind, properties[POISON] = "poison", f"poison-{poison_at.index(offset)}"
        elif roll < 0.02:
            kind, properties[READ_ONLY] = "read_only", "2020-01-01"
        elif roll < 0.05:
            kind = "invalid"
        sent.append(Sent(offset, sub_id, kind, properties))
    return sent


def _encoded(sent: Sent) -> tuple[bytes, bytes]:
    if sent.kind == "invalid":
        return sent.sub_id.encode(), b'{"id": "' + sent.sub_id.encode() + b'", "properties": ['
    return sent.sub_id.encode(), orjson.dumps({"id": sent.sub_id, "properties": sent.properties})


def _results(bootstrap: str, topics: Topics) -> dict[int, dict[str, object]]:
    by_source = results_by_source(bootstrap, topics.output)
    assert all(len(docs) == 1 for docs in by_source.values()), "a duplicate result"
    return {offset: docs[0] for (_, offset), docs in by_source.items()}


def _run_until_all(
    bootstrap: str, topics: Topics, env: dict[str, str], log: Path, count: int
) -> None:
    with running_service(env, log) as service:
        wait_until(lambda: len(results_by_source(bootstrap, topics.output)) >= count, 180, "all")
        assert service.stop() == 0


def _run_with_traffic_until(
    bootstrap: str, topics: Topics, env: dict[str, str], log: Path, offsets: range
) -> None:
    """Run the service until every offset of `offsets` has its result, while other events
    keep arriving (their ids apart): HubSpot answering them is what proves an input it keeps
    failing is the problem, as live traffic does (on a quiet topic such an input waits)."""
    with running_service(env, log) as service:
        deadline, n = time.monotonic() + 180, 0
        while not set(offsets) <= {o for (_, o) in results_by_source(bootstrap, topics.output)}:
            assert time.monotonic() < deadline, "not every event got its result"
            produce(bootstrap, topics.input, [event_bytes(f"other-{n}", hs_name="x")])
            n += 1
            time.sleep(0.2)
        assert service.stop() == 0


def _category(result: dict[str, object]) -> str:
    error = result["error"]
    assert isinstance(error, dict)
    return str(error["category"])


def test_only_the_events_hubspot_rejects_fail_and_hubspot_holds_the_accepted_ones_in_order(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    known = emulator.control.config()["known_properties"]
    emulator.control.configure(known_properties=[*known, POISON])
    stream = _mixed_stream(3_000, ids=60, poison_at=(400, 1_500, 2_600))
    for n in range(3):
        emulator.control.add_content_fault(POISON, f"poison-{n}", 500)
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, [_encoded(sent) for sent in stream])
    env = service_env(kafka_bootstrap, topics, emulator.url, **QUICK_GIVE_UP)
    log = tmp_path / "service.log"
    _run_with_traffic_until(kafka_bootstrap, topics, env, log, range(len(stream)))

    results = {o: r for o, r in _results(kafka_bootstrap, topics).items() if o < len(stream)}
    assert set(results) == set(range(len(stream))), "nothing lost"
    expected_status = {"valid": "upserted", "read_only": "failed", "invalid": "invalid"}
    for sent in stream:
        result = results[sent.offset]
        assert result["status"] == expected_status.get(sent.kind, "failed"), (sent, result)
        if sent.kind == "read_only":
            assert _category(result) == "VALIDATION_ERROR" and READ_ONLY in str(result["error"])
        if sent.kind == "poison":
            assert _category(result) == "TRANSIENT_EXHAUSTED"
    dead = {int(d.headers["source.offset"]) for d in read_all(kafka_bootstrap, topics.dlq)}
    assert dead == {s.offset for s in stream if s.kind != "valid"}
    traffic = [r for o, r in _results(kafka_bootstrap, topics).items() if o >= len(stream)]
    assert {str(r["status"]) for r in traffic} <= {"upserted"}
    _assert_hubspot_holds_the_accepted_events_in_order(emulator, stream, results)
    assert _counted(tmp_path / "service.log", "resending its") > 0, "merged inputs were split"


def _assert_hubspot_holds_the_accepted_events_in_order(
    emulator: RunningEmulator, stream: list[Sent], results: dict[int, dict[str, object]]
) -> None:
    expected: dict[str, dict[str, str]] = {}
    for sent in stream:
        if results[sent.offset]["status"] == "upserted":
            expected.setdefault(sent.sub_id, {}).update(sent.properties)
    store = {k: v for k, v in emulator.control.store().items() if not k.startswith("other-")}
    assert set(store) == set(expected)
    for sub_id, properties in expected.items():
        held = store[sub_id]["properties"]
        assert {name: held.get(name) for name in properties} == properties, sub_id
    for sub_id, writes in emulator.control.history().items():
        if sub_id.startswith("other-"):
            continue
        order = [int(w["properties"]["hs_name"].removeprefix("n")) for w in writes]
        assert all(b > a for a, b in pairwise(order)), (sub_id, order)


def _counted(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text)


def test_drop_mode_upserts_events_without_the_properties_deleted_in_hubspot(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    events = []
    for n in range(300):
        properties = {"hs_name": f"n{n}"}
        if n % 10 == 3:
            properties["legacy_tier"] = "gold"  # deleted in HubSpot: PROPERTY_DOESNT_EXIST
        sub_id = f"sub-{n % 40:02d}"
        events.append((sub_id.encode(), orjson.dumps({"id": sub_id, "properties": properties})))
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, events)
    env = service_env(kafka_bootstrap, topics, emulator.url, ON_INVALID_PROPERTY="drop")
    _run_until_all(kafka_bootstrap, topics, env, tmp_path / "service.log", len(events))

    results = _results(kafka_bootstrap, topics)
    assert {str(r["status"]) for r in results.values()} == {"upserted"}
    for offset, result in results.items():
        dropped = result.get("droppedProperties")
        assert dropped == (["legacy_tier"] if offset % 10 == 3 else None), (offset, result)
    assert read_all(kafka_bootstrap, topics.dlq) == []
    store = emulator.control.store()
    assert len(store) == 40 and all("legacy_tier" not in r["properties"] for r in store.values())
    assert store["sub-19"]["properties"]["hs_name"] == "n299"  # the last event of its id


def test_an_input_hubspot_fails_transiently_alone_is_failed_and_the_partition_commits(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.control.add_content_fault("hs_name", "poison-1", 500)
    events = []
    for n in range(400):
        sub_id = f"sub-{n:03d}"
        name = "poison-1" if n == 37 else f"n{n}"
        events.append(event_bytes(sub_id, hs_name=name))
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, events)
    env = service_env(kafka_bootstrap, topics, emulator.url, **QUICK_GIVE_UP)
    log = tmp_path / "service.log"
    _run_with_traffic_until(kafka_bootstrap, topics, env, log, range(len(events)))

    results = _results(kafka_bootstrap, topics)
    failed = {o: r for o, r in results.items() if r["status"] != "upserted"}
    assert list(failed) == [37] and _category(failed[37]) == "TRANSIENT_EXHAUSTED"
    assert {f"sub-{n:03d}" for n in range(400)} - set(emulator.control.store()) == {"sub-037"}
    [dead] = read_all(kafka_bootstrap, topics.dlq)
    assert dead.headers["error.category"] == b"TRANSIENT_EXHAUSTED"
    [position] = committed(kafka_bootstrap, topics.group, topics.input, 1).values()
    assert position >= len(events), "every offset committed, the failed one too"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_outage_of_a_minute_fails_nothing(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    events = [event_bytes(f"sub-{n:03d}", hs_name="x") for n in range(300)]
    topics = new_topics(kafka_bootstrap, partitions=3)
    produce(kafka_bootstrap, topics.input, events)
    emulator.control.outage("503")
    env = service_env(kafka_bootstrap, topics, emulator.url, **QUICK_GIVE_UP)
    with running_service(env, tmp_path / "service.log") as service:
        retries = "subscription_upserter_hubspot_retries_total"
        wait_until(lambda: service.metric(retries) > 50, 60, "retries")
        time.sleep(60)
        assert service.metric("subscription_upserter_results_total") == 0
        emulator.control.end_outage()
        wait_until(
            lambda: len(results_by_source(kafka_bootstrap, topics.output)) >= 300, 120, "all"
        )
        assert service.stop() == 0
    assert {str(r["status"]) for r in _results(kafka_bootstrap, topics).values()} == {"upserted"}
    assert read_all(kafka_bootstrap, topics.dlq) == []


def test_a_dead_letter_too_big_for_its_topic_goes_cut_and_the_service_goes_on(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    limit = 100_000
    topics = _topics_with_limit(kafka_bootstrap, limit)
    original = os.urandom(limit - 100)  # not UTF-8: invalid; as big as the topic takes
    good = orjson.dumps({"id": "sub-after", "properties": {"hs_name": "fine"}})
    produce(kafka_bootstrap, topics.input, [(b"sub-big", original)])  # a record batch each
    produce(kafka_bootstrap, topics.input, [(b"sub-after", good)])
    env = service_env(kafka_bootstrap, topics, emulator.url)
    _run_until_all(kafka_bootstrap, topics, env, tmp_path / "service.log", 2)

    results = _results(kafka_bootstrap, topics)
    assert results[0]["status"] == "invalid" and results[1]["status"] == "upserted"
    [dead] = read_all(kafka_bootstrap, topics.dlq)
    assert dead.headers["dlq.truncated"] == b"true"
    assert dead.headers["dlq.original.size"] == str(len(original)).encode()
    assert dead.value is not None and 0 < len(dead.value) < len(original)
    assert original.startswith(dead.value)
    assert committed(kafka_bootstrap, topics.group, topics.input, 1) == {0: 2}

    redriven = run_command(env, "redrive", "--status", "invalid")
    assert redriven.returncode == 0, redriven.stderr
    assert "sent 1," in redriven.stdout
    back = read_all(kafka_bootstrap, topics.input)[-1]
    assert back.value == original and back.headers["redrive.count"] == b"1"


def _topics_with_limit(bootstrap: str, max_message_bytes: int) -> Topics:
    topics = new_topics(bootstrap, partitions=1)
    suffix = topics.input.removeprefix("events-")
    limited = Topics(f"big-events-{suffix}", topics.output, f"big-dlq-{suffix}", topics.group)
    create_topics(
        bootstrap,
        {limited.input: 1, limited.dlq: 1},
        {"max.message.bytes": str(max_message_bytes)},
    )
    return limited


@pytest.fixture(autouse=True)
def _no_leftover_faults(emulator: RunningEmulator) -> Iterator[None]:
    yield
    emulator.control.clear_content_faults()
