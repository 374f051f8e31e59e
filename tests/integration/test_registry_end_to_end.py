"""Upstream events in a Schema Registry format, end to end (issue 17), for Avro, Protobuf and
JSON Schema: the billing example's events, written by confluent-kafka's serializers in two
schema versions, go through the mapping into the HubSpot emulator; HubSpot's final state is
exactly the mapped values; unreadable records and a mapping failure are `invalid` with their
category and dead-lettered with their original bytes; and the registry stopped mid-run and
restarted loses nothing and fails nothing.

The expected properties are computed here from the events, independently of the service's
mapping code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from confluent_kafka.schema_registry import SchemaRegistryClient

from devstack.emulator import RunningEmulator
from devstack.emulator.config import DEFAULT_KNOWN_PROPERTIES
from devstack.examples.billing import (
    CUSTOM_PROPERTIES,
    MAPPING_FILE,
    Subscription,
    avro_serializers,
    subscription_events,
)
from devstack.examples.formats import json_schema_serializers, protobuf_serializers
from devstack.registry import LocalRegistry
from tests.integration.support import (
    ServiceProcess,
    Topics,
    new_topics,
    produce,
    read_all,
    results_by_source,
    running_service,
    service_env,
    wait_until,
)

pytestmark = pytest.mark.kafka

SERIALIZERS: dict[str, Callable[[SchemaRegistryClient, str], Callable[[Subscription], bytes]]] = {
    "avro": avro_serializers,
    "protobuf": protobuf_serializers,
    "json_schema": json_schema_serializers,
}
# The example mapping's status map without UNPAID: those events fail the mapping, and only them.
STATUS_MAP = {
    "TRIALING": "active",
    "ACTIVE": "active",
    "PAST_DUE": "past_due",
    "CANCELED": "canceled",
}
INTERVAL_MAP = {"MONTH": "monthly", "YEAR": "annually"}
Document = dict[str, Any]
UNKNOWN_SCHEMA = b"\x00" + (2**31 - 5).to_bytes(4, "big") + b"\x00\x02\x04"


def _mapping_file(tmp_path: Path) -> Path:
    document = yaml.safe_load(MAPPING_FILE.read_text())
    document["properties"]["hs_status"]["values"] = STATUS_MAP
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected_properties(event: Subscription) -> dict[str, str]:
    """What the mapping must send for `event` (the fields a null or missing value clears
    are "", those it omits are absent)."""
    properties = {
        "hs_name": event.plan_name,
        "hs_status": STATUS_MAP[event.status],
        "hs_recurring_billing_frequency": INTERVAL_MAP[event.interval],
        "hs_currency_code": event.currency,
        "hs_amount": f"{event.amount:f}",
        "hs_recurring_billing_start_date": event.period_start.date().isoformat(),
        "hs_next_payment_due_date": event.period_end.date().isoformat(),
        "hs_product_id": event.items[0].price_code,
        "billing_customer_id": event.customer_id,
        "billing_customer_email": event.customer_email or "",
        "billing_seats": str(sum(item.quantity for item in event.items)),
        "billing_period_end": _timestamp(event.period_end),
        "billing_cancel_at_period_end": "true" if event.cancel_at_period_end else "false",
        "billing_discount_amount": ""
        if event.discount_amount is None
        else f"{event.discount_amount:f}",
        "billing_source": "billing",
    }
    if event.trial_end is not None:
        properties["billing_trial_end"] = _timestamp(event.trial_end)
    return properties


def final_state(events: list[Subscription]) -> dict[str, dict[str, str]]:
    """HubSpot's state after the valid events, in order: later values win property by
    property; an omitted property keeps what the id had."""
    state: dict[str, dict[str, str]] = {}
    for event in events:
        if event.status in STATUS_MAP:
            state.setdefault(event.subscription_id, {}).update(expected_properties(event))
    return state


def _readiness(url: str) -> str:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return ""


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    emulator: RunningEmulator
    registry: LocalRegistry
    client: SchemaRegistryClient


@pytest.fixture
def stack(
    kafka_bootstrap: str,
    emulator: RunningEmulator,
    restartable_registry: LocalRegistry,
    schema_registry: SchemaRegistryClient,
) -> Stack:
    emulator.control.configure(
        known_properties=sorted(DEFAULT_KNOWN_PROPERTIES | CUSTOM_PROPERTIES)
    )
    return Stack(kafka_bootstrap, emulator, restartable_registry, schema_registry)


@dataclass
class Produced:
    first: list[Subscription]  # written while the registry is up: version 1 only
    later: list[Subscription]  # both versions: v2's schema is new to the service then
    bad: list[tuple[bytes, bytes]]
    first_records: list[tuple[bytes, bytes]] = field(default_factory=list)
    later_records: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.first_records) + len(self.bad) + len(self.later_records)

    @property
    def events(self) -> list[Subscription]:
        return [*self.first, *self.later]


def _produce_first(
    stack: Stack, topic: str, serialize: Callable[[Subscription], bytes]
) -> Produced:
    stream = subscription_events(160, 25, seed=17)
    first = [event for event in stream[:80] if event.version == 1]
    bad = [
        (b"not-framed", b'{"id": "sub-x", "properties": {}}'),
        (b"unknown-schema", UNKNOWN_SCHEMA),
        (b"truncated", serialize(first[0])[:9]),
    ]
    produced = Produced(first, stream[80:], bad)
    produced.first_records = [(e.subscription_id.encode(), serialize(e)) for e in first]
    records = produced.first_records
    produce(stack.bootstrap, topic, [*records[:20], *bad, *records[20:]])
    # serialized now, while the registry is up (this registers version 2); produced later
    produced.later_records = [(e.subscription_id.encode(), serialize(e)) for e in produced.later]
    return produced


def _registry_down_mid_run(
    stack: Stack, service: ServiceProcess, topic: str, produced: Produced
) -> None:
    """The registry stops; the later events arrive; the service waits, marking nothing."""
    readyz = service.metrics_url.replace("/metrics", "/readyz")
    stack.registry.stop()
    try:
        produce(stack.bootstrap, topic, produced.later_records)
        wait_until(
            lambda: "schema_registry: unavailable" in _readiness(readyz),
            60,
            "readiness to say the registry is unavailable",
        )
        assert service.metric("subscription_upserter_schema_registry_paused_partitions") >= 1
        time.sleep(3)  # retries fail meanwhile: still nothing is marked
        assert service.metric("subscription_upserter_results_total") < produced.total
    finally:
        stack.registry.start()
    wait_until(
        lambda: service.metric("subscription_upserter_results_total") >= produced.total,
        120,
        f"{produced.total} results",
    )
    wait_until(lambda: _readiness(readyz).strip() == "ok", 30, "readiness")


@pytest.mark.parametrize("fmt", ["avro", "protobuf", "json_schema"])
def test_registry_events_map_into_hubspot_and_survive_a_registry_restart(
    fmt: str, stack: Stack, tmp_path: Path
) -> None:
    topics = new_topics(stack.bootstrap, partitions=3)
    produced = _produce_first(stack, topics.input, SERIALIZERS[fmt](stack.client, topics.input))
    env = service_env(
        stack.bootstrap,
        topics,
        stack.emulator.url,
        INPUT_FORMAT=fmt,
        SCHEMA_REGISTRY_URL=stack.registry.url,
        SCHEMA_REGISTRY_TIMEOUT_S="2",
        EVENT_MAPPING_FILE=str(_mapping_file(tmp_path)),
    )
    with running_service(env, tmp_path / "service.log") as service:
        first_done = len(produced.first) + len(produced.bad)
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= first_done,
            90,
            "the first events' results",
        )
        _registry_down_mid_run(stack, service, topics.input, produced)
        assert service.stop() == 0
    invalid = _assert_one_result_each(stack, topics, produced)
    _assert_dead_letters(stack, topics, produced, invalid)
    _assert_hubspot_holds_the_mapped_values(stack, produced)


def _assert_one_result_each(stack: Stack, topics: Topics, produced: Produced) -> list[Document]:
    results = results_by_source(stack.bootstrap, topics.output)
    assert len(results) == produced.total and all(len(docs) == 1 for docs in results.values())
    documents = [docs[0] for docs in results.values()]
    assert all(doc["status"] in ("upserted", "invalid") for doc in documents)
    invalid = [doc for doc in documents if doc["status"] == "invalid"]
    unpaid = [e for e in produced.events if e.status not in STATUS_MAP]
    assert unpaid, "the stream holds events the mapping fails"
    categories = sorted(str(doc["error"]["category"]) for doc in invalid)  # type: ignore[index]
    assert categories == sorted(
        ["NOT_SCHEMA_REGISTRY_FRAMED", "SCHEMA_NOT_FOUND", "UNDECODABLE"]
        + ["MAPPING_ERROR"] * len(unpaid)
    )
    for doc in invalid:
        error = doc["error"]
        assert isinstance(error, dict)
        if error["category"] == "MAPPING_ERROR":
            assert "mapping entry properties.hs_status (path `status`)" in error["message"]
            assert str(doc["id"]).startswith("sub-")  # the id mapped before the failure
    upserted = [doc for doc in documents if doc["status"] == "upserted"]
    own = {str(d["objectWriteTraceId"]) for d in upserted} - {""}
    own = {trace for trace in own if not trace.startswith("merged-")}  # not coalesced inputs'
    assert own and own <= {e.event_id for e in produced.events}  # the mapped event ids
    return invalid


def _assert_dead_letters(
    stack: Stack, topics: Topics, produced: Produced, invalid: list[Document]
) -> None:
    dead = read_all(stack.bootstrap, topics.dlq)
    assert len(dead) == len(invalid)
    records = [*produced.first_records, *produced.bad, *produced.later_records]
    assert all(letter.value in {value for _, value in records} for letter in dead)  # unchanged
    assert {letter.value for letter in dead} >= {value for _, value in produced.bad}
    assert {letter.headers["error.status"] for letter in dead} == {b"invalid"}


def _assert_hubspot_holds_the_mapped_values(stack: Stack, produced: Produced) -> None:
    store = stack.emulator.control.store()
    expected = final_state(produced.events)
    assert set(store) == set(expected)
    for subscription_id, properties in expected.items():
        stored = store[subscription_id]["properties"]
        assert {name: stored.get(name) for name in properties} == properties, subscription_id
        if "billing_trial_end" not in properties:  # never sent for this id
            assert stored.get("billing_trial_end") in (None, ""), subscription_id
