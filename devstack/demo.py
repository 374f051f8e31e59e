"""The README's first command: the whole job, end to end, on the embedded default.

Starts a local Kafka broker and the HubSpot emulator, creates the topics, runs
`python -m service run` as a real process, produces a realistic stream of subscription
events (repeated ids, a few bad events), waits until every event has its result, prints
what happened, and stops everything it started. `--format avro` runs the billing example of
docs/upstream-events.md instead: a local Schema Registry (Apicurio) too, the billing system's
Avro events in both schema versions, and the service reading them through the example's
mapping (devstack/examples/). A development tool: never imported by `service/`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from devstack.emulator import RunningEmulator, start_in_subprocess
from devstack.emulator.config import DEFAULT_KNOWN_PROPERTIES
from devstack.examples.billing import (
    CUSTOM_PROPERTIES,
    MAPPING_FILE,
    avro_serializers,
    subscription_events,
)
from devstack.kafka import LocalBroker, create_topics, ensure_kafka_libs, free_ports
from devstack.registry import LocalRegistry

TOKEN = "demo-private-app-token"
TOPIC = "subscription-events"
TOPICS = {"subscription-events": 6, "subscription-upsert-results": 6, "subscription-events-dlq": 1}
STATUSES = ("active", "active", "active", "past_due", "canceled", "expired", "scheduled")


def _events(count: int, subscriptions: int, seed: int) -> list[tuple[bytes | None, bytes]]:
    rng = random.Random(seed)
    events: list[tuple[bytes | None, bytes]] = []
    for n in range(count):
        sub_id = f"sub-{rng.randrange(subscriptions):05d}"
        properties = {
            "hs_name": f"Plan {rng.choice(['Bronze', 'Silver', 'Gold'])}",
            "hs_status": rng.choice(STATUSES),
            "hs_recurring_billing_frequency": rng.choice(["monthly", "annually"]),
            "hs_currency_code": "EUR",
            "hs_amount": round(rng.uniform(5, 500), 2),
        }
        events.append((sub_id.encode(), orjson.dumps({"id": sub_id, "properties": properties})))
        if n % 997 == 500:
            events.extend(_bad_events(n))
    return events


def _bad_events(n: int) -> list[tuple[bytes | None, bytes]]:
    return [
        (b"broken", b'{"id": "sub-broken", "properties": '),
        (b"nested", orjson.dumps({"id": f"nested-{n}", "properties": {"hs_name": {"x": 1}}})),
        (b"unknown", orjson.dumps({"id": f"unknown-{n}", "properties": {"no_such": "x"}})),
    ]


def _billing_events(
    count: int, subscriptions: int, registry_url: str
) -> list[tuple[bytes | None, bytes]]:
    """The billing example's events, Avro in both schema versions, and two unreadable ones."""
    serialize = avro_serializers(SchemaRegistryClient({"url": registry_url}), TOPIC)
    stream = subscription_events(count, subscriptions, seed=1)
    events: list[tuple[bytes | None, bytes]] = [
        (event.subscription_id.encode(), serialize(event)) for event in stream
    ]
    events[len(events) // 2 : len(events) // 2] = [
        (b"plain-json", b'{"id": "sub-x", "properties": {}}'),  # NOT_SCHEMA_REGISTRY_FRAMED
        (b"unknown-schema", b"\x00\x7f\xff\xff\xf0\x02"),  # SCHEMA_NOT_FOUND
    ]
    return events


def _produce(bootstrap: str, events: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for key, value in events:
        producer.produce("subscription-events", key=key, value=value)
        producer.poll(0)
    producer.flush(60)


def _read_results(bootstrap: str, expected: int, timeout_s: float) -> list[dict[str, object]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-reader-{os.getpid()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(["subscription-upsert-results"])
    results: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout_s
    next_report = time.monotonic() + 5
    try:
        while len(results) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if not message.error():
                    results.append(orjson.loads(message.value() or b"{}"))
            if time.monotonic() >= next_report:
                next_report += 5
                print(f"  results so far: {len(results)}/{expected}", flush=True)
        return results
    finally:
        consumer.close()


def _start_service(
    bootstrap: str, emulator: RunningEmulator, work: Path, registry_url: str | None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if registry_url is not None:
        env.update(
            INPUT_FORMAT="avro",
            SCHEMA_REGISTRY_URL=registry_url,
            EVENT_MAPPING_FILE=str(MAPPING_FILE),
        )
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        HUBSPOT_BASE_URL=emulator.url,
        HUBSPOT_ACCESS_TOKEN=TOKEN,
        HUBSPOT_ID_PROPERTY="external_subscription_id",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(free_ports(1)[0]),
        BATCH_MAX_WAIT_MS="500",
    )
    log = (work / "service.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "service", "run"], env=env, stdout=log, stderr=log
    )


def _report(
    events: int, results: list[dict[str, object]], emulator: RunningEmulator, seconds: float
) -> None:
    requests = emulator.control.requests()
    inputs = sum(r["inputs"] for r in requests)
    statuses = Counter(str(r["status"]) for r in results)
    dead = Counter(
        str(error["category"])
        for r in results
        if r["status"] != "upserted" and isinstance(error := r.get("error"), dict)
    )
    print(f"events in:                {events}")
    print(f"results out:              {len(results)} in {seconds:.1f}s")
    print(f"results by status:        {dict(sorted(statuses.items()))}")
    print(f"coalesced events:         {sum(1 for r in results if r.get('coalescedInto'))}")
    print(
        f"requests sent to HubSpot: {len(requests)} "
        f"(by status: {dict(Counter(r['status'] for r in requests))})"
    )
    print(f"mean inputs per request:  {inputs / max(len(requests), 1):.1f}")
    print(f"dead letters:             {sum(dead.values())} {dict(sorted(dead.items()))}")
    print(f"records in HubSpot:       {len(emulator.control.store())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--subscriptions", type=int, default=5_000)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument(
        "--format",
        choices=("json", "avro"),
        default="json",
        help="json: the contract's events; avro: the billing example through a Schema "
        "Registry and the event mapping (docs/upstream-events.md)",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="upserter-demo-"))
    print(f"fetching Kafka (cached after the first run): {ensure_kafka_libs()}")
    with ExitStack() as stack:
        broker = stack.enter_context(LocalBroker(work / "kafka"))
        print(f"kafka listening on {broker.bootstrap_servers}")
        create_topics(broker.bootstrap_servers, TOPICS)
        registry_url = None
        if args.format == "avro":
            registry_url = stack.enter_context(LocalRegistry(work / "registry")).url
            print(f"schema registry (Apicurio) on {registry_url}; mapping {MAPPING_FILE}")
        return _run(args, broker.bootstrap_servers, registry_url, work)


def _run(args: argparse.Namespace, bootstrap: str, registry_url: str | None, work: Path) -> int:
    emulator = start_in_subprocess(
        ["--token", TOKEN, "--latency-ms", str(args.latency_ms), "--jitter-ms", "50",
         "--rate-limit", "190/10000"]
    )  # fmt: skip
    if registry_url is not None:  # the example's custom subscription properties exist
        emulator.control.configure(
            known_properties=sorted(DEFAULT_KNOWN_PROPERTIES | CUSTOM_PROPERTIES)
        )
    print(f"HubSpot emulator on {emulator.url} (190 requests per 10 s)")
    service = _start_service(bootstrap, emulator, work, registry_url)
    results: list[dict[str, object]] = []
    try:
        if registry_url is None:
            events = _events(args.events, args.subscriptions, seed=1)
        else:
            events = _billing_events(args.events, args.subscriptions, registry_url)
        _produce(bootstrap, events)
        print(f"produced {len(events)} events; waiting for their results")
        started = time.monotonic()
        results = _read_results(bootstrap, len(events), timeout_s=600)
        _report(len(events), results, emulator, time.monotonic() - started)
    finally:
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=60)
        print(f"service stopped with exit code {code}; its log: {work / 'service.log'}")
        emulator.stop()
    return 0 if len(results) == len(events) else 1


if __name__ == "__main__":
    sys.exit(main())
