"""The event streams the scenarios feed the service, and how they are produced to Kafka.

Events look like the demo's: `{"id": "sub-000123", "properties": {...}}` keyed by id. Ids are
drawn from a pool with a Zipf-like skew (a few subscriptions change often, most rarely), so
ids repeat the way real subscription streams do and coalescing has something to do.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaError, Message, Producer

Event = tuple[bytes, bytes]  # key, value

STATUSES = ("active", "active", "active", "past_due", "canceled", "expired", "scheduled")
PLANS = ("Plan Bronze", "Plan Silver", "Plan Gold")
SKEW_EXPONENT = 0.5
SKEW_OFFSET = 0.01  # of the pool size: keeps the head of the distribution from dominating


def event(sub_id: str, rng: random.Random) -> Event:
    properties = {
        "hs_name": rng.choice(PLANS),
        "hs_status": rng.choice(STATUSES),
        "hs_recurring_billing_frequency": rng.choice(("monthly", "annually")),
        "hs_currency_code": "EUR",
        "hs_amount": round(rng.uniform(5, 500), 2),
    }
    return sub_id.encode(), orjson.dumps({"id": sub_id, "properties": properties})


def skewed_events(count: int, pool: int, seed: int = 1) -> list[Event]:
    """`count` events whose ids come from `pool` ids, weight 1/(rank + pool/100)^0.5."""
    rng = random.Random(seed)
    offset = 1 + pool * SKEW_OFFSET
    weights = [1 / (rank + offset) ** SKEW_EXPONENT for rank in range(pool)]
    ranked = list(range(pool))
    rng.shuffle(ranked)  # popular ids are spread over the id space (and the partitions)
    picks = rng.choices(ranked, cum_weights=list(itertools.accumulate(weights)), k=count)
    return [event(f"sub-{n:06d}", rng) for n in picks]


SNAPSHOT_CHANGES = ("hs_status", "hs_amount", "hs_next_payment_due_date", "hs_product_id")


def _snapshot(rng: random.Random) -> dict[str, str]:
    """A whole subscription as an upstream that publishes snapshots sends it (9 properties)."""
    return {
        "hs_name": rng.choice(PLANS),
        "hs_status": rng.choice(STATUSES),
        "hs_recurring_billing_start_date": f"2026-{rng.randint(1, 12):02d}-01",
        "hs_recurring_billing_frequency": rng.choice(("monthly", "annually")),
        "hs_next_payment_due_date": f"2027-{rng.randint(1, 12):02d}-01",
        "hs_currency_code": "EUR",
        "hs_invoice_creation": rng.choice(("on", "off")),
        "hs_amount": f"{rng.uniform(5, 500):.2f}",
        "hs_product_id": str(rng.randrange(10**6)),
    }


@dataclass
class SnapshotStream:
    """Events publishing whole snapshots: every id's first (`warm_up`), then the stream proper
    (`events`); and what HubSpot must hold once all are applied."""

    warm_up: list[Event]
    events: list[Event]
    last: dict[str, dict[str, str]]
    unchanged: int  # events equal to their id's previous snapshot


def snapshot_stream(
    ids: int, repeats: int, unchanged_share: float, seed: int = 5
) -> SnapshotStream:
    """Each id's first snapshot (in random order), then `repeats` snapshots of random ids, of
    which `unchanged_share` equal the id's previous one and the rest change 1 or 2 values
    (of the status, amount, next payment date and product)."""
    rng = random.Random(seed)
    names = [f"sub-{n:06d}" for n in range(ids)]
    rng.shuffle(names)
    last = {name: _snapshot(rng) for name in names}
    warm_up = [_snapshot_event(name, last[name]) for name in names]
    events: list[Event] = []
    unchanged = 0
    for _ in range(repeats):
        name = rng.choice(names)
        if rng.random() < unchanged_share:
            unchanged += 1
        else:
            changed = dict(last[name])
            for prop in rng.sample(SNAPSHOT_CHANGES, rng.randint(1, 2)):
                while changed[prop] == last[name][prop]:
                    changed[prop] = _snapshot(rng)[prop]
            last[name] = changed
        events.append(_snapshot_event(name, last[name]))
    return SnapshotStream(warm_up, events, last, unchanged)


def _snapshot_event(sub_id: str, properties: dict[str, str]) -> Event:
    return sub_id.encode(), orjson.dumps({"id": sub_id, "properties": properties})


def distinct_events(count: int, prefix: str, seed: int = 2) -> list[Event]:
    rng = random.Random(seed)
    return [event(f"{prefix}-{n:07d}", rng) for n in range(count)]


def distinct_ids(events: Sequence[Event]) -> int:
    return len({key for key, _ in events})


def _producer(bootstrap: str, linger_ms: int) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "enable.idempotence": True,
        }
    )


def produce_backlog(bootstrap: str, topic: str, events: Sequence[Event]) -> float:
    """Write every event as fast as possible; returns the seconds it took."""
    producer = _producer(bootstrap, linger_ms=20)
    started = time.monotonic()
    for key, value in events:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"could not produce the backlog to {topic}")
    return time.monotonic() - started


@dataclass
class PacedProduction:
    """Events produced at a steady rate; `sent` maps (partition, offset) to the timestamp (ms)."""

    sent: dict[tuple[int, int], int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0


def produce_paced(
    bootstrap: str,
    topic: str,
    events: Sequence[Event],
    rate_per_s: float,
    stop: threading.Event | None = None,
) -> PacedProduction:
    """Produce `events` at `rate_per_s`, recording each message's Kafka timestamp."""
    producer = _producer(bootstrap, linger_ms=5)
    result = PacedProduction()
    lock = threading.Lock()

    def delivered(error: KafkaError | None, message: Message) -> None:
        with lock:
            if error is not None:
                result.errors += 1
                return
            _, stamp = message.timestamp()
            result.sent[(message.partition() or 0, message.offset() or 0)] = stamp

    started = time.monotonic()
    for n, (key, value) in enumerate(events):
        if stop is not None and stop.is_set():
            break
        due = started + n / rate_per_s
        _sleep_until(due, producer.poll)
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    result.seconds = time.monotonic() - started
    if producer.flush(60) != 0:
        raise RuntimeError(f"could not deliver every paced event to {topic}")
    return result


def _sleep_until(due: float, poll: Callable[[float], object]) -> None:
    while (left := due - time.monotonic()) > 0:
        poll(min(left, 0.005))
    poll(0)
