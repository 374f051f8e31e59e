"""What SKIP_UNCHANGED's cache costs: memory per id, and time per comparison and per revoke.

`python -m bench.skip_memory [IDS]` (default: SKIP_UNCHANGED_MAX_IDS's default) fills a
LastWritten cache with IDS ids of realistic subscriptions (10, 15 and 20 properties: names,
statuses, dates, amounts, ids, e-mail addresses), each decoded by the service's own codec from
the JSON a producer sends (so its strings are the objects the service would keep), and
prints for each size (each measured in a fresh interpreter):
- bytes per id: what tracemalloc counts as allocated and still held once the cache is full
  (each event is released once remembered, as in the service), divided by IDS;
- RSS growth per id: the process's VmRSS increase over the fill (allocator slack included;
  measured first, without tracemalloc), divided by IDS;
- microseconds per `compare` of an input with every property unchanged, and milliseconds to
  drop one of 12 partitions (a revoke scans the whole cache).
No Kafka, no HubSpot: this measures the data structure alone.
"""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson

from service.core.clock import SystemClock
from service.core.codec import ValidationLimits, decode_event
from service.core.last_written import LastWritten
from service.core.model import Event, RawMessage
from service.entry.settings import Settings

TOPIC = "subscription-events"
PARTITIONS = 12
LIMITS = ValidationLimits(default_id_property="external_subscription_id")


def subscription(n: int, count: int, rng: random.Random) -> dict[str, object]:
    """A subscription snapshot with `count` (10 to 20) properties."""
    properties: dict[str, object] = {
        "hs_name": rng.choice(("Plan Bronze", "Plan Silver", "Plan Gold")),
        "hs_status": rng.choice(("active", "past_due", "canceled", "expired")),
        "hs_recurring_billing_frequency": rng.choice(("monthly", "annually")),
        "hs_currency_code": "EUR",
        "hs_amount": round(rng.uniform(5, 500), 2),
        "hs_start_date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "hs_next_payment_due_date": f"2027-{rng.randint(1, 12):02d}-01",
        "hs_customer_id": f"cus_{rng.randrange(10**12):012d}",
        "hs_product_sku": f"SKU-{rng.randrange(10_000):04d}",
        "hs_quantity": rng.randint(1, 5),
        "hs_discount_percent": rng.choice((0, 10, 15)),
        "hs_tax_rate": 19.0,
        "hs_payment_method": rng.choice(("card", "sepa", "paypal")),
        "hs_country": rng.choice(("DE", "FR", "NL", "US")),
        "hs_sales_channel": rng.choice(("web", "partner", "sales")),
        "hs_trial_end_date": None,
        "hs_cancel_reason": None,
        "hs_renewal_count": rng.randrange(40),
        "hs_owner_email": f"owner{rng.randrange(999)}@example.com",
        "hs_notes": "Renewed automatically",
    }
    return dict(list(properties.items())[:count])


def stream(ids: int, count: int, seed: int = 0) -> Iterator[Event]:
    """The ids' snapshots, decoded one at a time (nothing but the cache keeps them)."""
    rng = random.Random(seed * 100 + count)
    for n in range(ids):
        value = {"id": f"sub-{n:07d}", "properties": subscription(n, count, rng)}
        raw = RawMessage(TOPIC, n % PARTITIONS, n, None, orjson.dumps(value))
        event = decode_event(raw, LIMITS)
        assert isinstance(event, Event)
        yield event


def fill(cache: LastWritten, ids: int, count: int) -> None:
    """Remember each id's snapshot as the loop does after a successful write."""
    for event in stream(ids, count):
        tp = (event.raw.topic, event.raw.partition)
        hubspot_id = str(51_000_000_000 + event.raw.offset)
        cache.remember((event.id_property, event.id), tp, event.properties, hubspot_id)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def measure(ids: int, count: int) -> dict[str, float]:
    """One size, in this process (run it in a fresh one: see `main`). RSS first, while the
    interpreter has no freed memory the fill could reuse."""
    rss_before = rss_bytes()
    cache = LastWritten(ids, 86_400, SystemClock())
    fill(cache, ids, count)
    gc.collect()
    rss = rss_bytes() - rss_before
    del cache
    gc.collect()
    tracemalloc.start()
    cache = LastWritten(ids, 86_400, SystemClock())
    fill(cache, ids, count)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    same = list(stream(min(ids, 20_000), count))  # equal values, other string objects
    started = time.perf_counter()
    for event in same:
        cache.compare((event.id_property, event.id), (TOPIC, event.raw.partition), event.properties)
    compare_us = (time.perf_counter() - started) / len(same) * 1e6
    started = time.perf_counter()
    cache.drop_partitions({(TOPIC, 0)})
    drop_ms = (time.perf_counter() - started) * 1000
    return {"bytes": held / ids, "rss": rss / ids, "compare_us": compare_us, "drop_ms": drop_ms}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:  # a child: one size, in a fresh interpreter
        print(json.dumps(measure(int(argv[1]), int(argv[2]))))
        return
    ids = int(argv[0]) if argv else int(Settings.model_fields["skip_unchanged_max_ids"].default)
    print(f"{ids:,} ids, python {sys.version.split()[0]}")
    print("| properties | bytes per id | RSS per id | RSS when full | compare | revoke |")
    print("|---|---|---|---|---|---|")
    for count in (10, 15, 20):
        child = [sys.executable, "-m", "bench.skip_memory", "--one", str(ids), str(count)]
        got = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
        full_mb = got["rss"] * ids / 1e6
        print(
            f"| {count} | {got['bytes']:.0f} | {got['rss']:.0f} | {full_mb:.0f} MB | "
            f"{got['compare_us']:.1f} us | {got['drop_ms']:.0f} ms |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
