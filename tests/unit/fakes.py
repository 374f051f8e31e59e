"""In-memory stand-ins for HubSpot and the caller's collaborators, for fast unit tests of the
caller and the loop (Kafka's are in tests/unit/fake_kafka.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core.clock import FakeClock
from service.core.health import Health
from service.core.ports import Tracing, UpsertTransport
from service.core.ratelimit import RateLimiter
from service.core.responses import HttpReply
from service.core.retry import Backoff
from service.core.tracing import NO_TRACING
from service.loop.associator import AssociationPolicy
from service.loop.caller import CallerPolicy, UpsertCaller
from service.loop.handover import Handover

Responder = Callable[[dict[str, object]], HttpReply]


def reply(status: int, body: object, **headers: str) -> HttpReply:
    return HttpReply(
        status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, orjson.dumps(body)
    )


def ok_for(request: dict[str, object]) -> HttpReply:
    inputs = request["inputs"]
    assert isinstance(inputs, list)
    results = [
        {
            "id": f"h-{item['id']}",
            "new": True,
            "createdAt": "c",
            "updatedAt": "u",
            "archived": False,
            "properties": {item["idProperty"]: item["id"]},
        }
        for item in inputs
    ]
    return reply(
        200, {"status": "COMPLETE", "results": results, "startedAt": "s", "completedAt": "e"}
    )


class FakeTransport:
    """Answers each post with the next scripted responder (the last one repeats)."""

    def __init__(self, *responders: Responder | Exception) -> None:
        self._responders = list(responders) or [ok_for]
        self.requests: list[dict[str, object]] = []
        self.paths: list[str | None] = []  # None: the upsert path

    def post(self, body: bytes, path: str | None = None) -> HttpReply:
        request = orjson.loads(body)
        self.paths.append(path)
        self.requests.append(request)
        step = self._responders.pop(0) if len(self._responders) > 1 else self._responders[0]
        if isinstance(step, Exception):
            raise step
        return step(request)

    def close(self) -> None:
        return


def acquire_from_another_thread(limiter: RateLimiter) -> float:
    """`limiter.try_acquire()` as another worker thread would call it."""
    waits: list[float] = []
    worker = threading.Thread(target=lambda: waits.append(limiter.try_acquire()))
    worker.start()
    worker.join()
    return waits[0]


TEST_BACKOFF = Backoff(base_s=1.0, cap_s=8.0, rand=lambda: 1.0)
TEST_POLICY = CallerPolicy(backoff=TEST_BACKOFF, auth_retry_s=5.0)


def make_caller(
    transport: UpsertTransport,
    clock: FakeClock | None = None,
    limiter: RateLimiter | None = None,
    *,
    policy: CallerPolicy = TEST_POLICY,
    handover: Handover | None = None,
    associations: AssociationPolicy | None = None,
    tracing: Tracing = NO_TRACING,
) -> tuple[UpsertCaller, Metrics, Health]:
    clock = clock or FakeClock()
    metrics = Metrics(CollectorRegistry(), clock.monotonic)
    health = Health(clock)
    caller = UpsertCaller(
        transport,
        limiter=limiter or RateLimiter(190, 10.0, clock),
        clock=clock,
        metrics=metrics,
        health=health,
        policy=policy,
        aborted=lambda: False,
        handover=handover,
        associations=associations,
        tracing=tracing,
    )
    return caller, metrics, health


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    """A counter's value (`name` without the prefix and `_total`), 0 when never counted."""
    value = metrics.registry.get_sample_value(f"subscription_upserter_{name}_total", labels)
    return value or 0.0
