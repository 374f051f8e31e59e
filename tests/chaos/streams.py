"""The event streams the chaos tests run: ids repeating at random, each event a new version of
its id (so HubSpot's final state and per-id order can be checked), produced over a while."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from tests.integration.support import event_bytes, produce

Events = list[tuple[bytes | None, bytes | None]]


def versioned_events(count: int, ids: int, seed: int) -> Events:
    """`count` events over `ids` ids; each carries its id's version in hs_amount (and hs_name)."""
    rng = random.Random(seed)
    versions: Counter[str] = Counter()
    events: Events = []
    for _ in range(count):
        sub_id = f"sub-{rng.randrange(ids):05d}"
        versions[sub_id] += 1
        events.append(
            event_bytes(sub_id, hs_name=f"v{versions[sub_id]}", hs_amount=versions[sub_id])
        )
    return events


def produce_over(bootstrap: str, topic: str, events: Events, seconds: float) -> threading.Thread:
    """Produce `events` in 50 chunks spread over `seconds`, from a background thread."""

    def run() -> None:
        chunks = 50
        size = len(events) // chunks + 1
        for start in range(0, len(events), size):
            produce(bootstrap, topic, events[start : start + size])
            time.sleep(seconds / chunks)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
