"""In-memory stand-ins for the ports, for fast unit tests of the caller and the loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import orjson
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core.clock import FakeClock
from service.core.health import Health
from service.core.model import RawMessage
from service.core.offsets import CommitPoint, TopicPartition
from service.core.ports import DeliveryCallback, RebalanceListener, Tracing
from service.core.ratelimit import RateLimiter
from service.core.records import OutboundRecord
from service.core.responses import HttpReply
from service.core.retry import Backoff
from service.core.tracing import NO_TRACING
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

    def post(self, body: bytes) -> HttpReply:
        request = orjson.loads(body)
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
    transport: FakeTransport,
    clock: FakeClock | None = None,
    limiter: RateLimiter | None = None,
    *,
    policy: CallerPolicy = TEST_POLICY,
    handover: Handover | None = None,
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
        tracing=tracing,
    )
    return caller, metrics, health


class FakeSource:
    """A single-partition input topic with a committed position, in memory."""

    def __init__(self, messages: list[RawMessage]) -> None:
        self.messages = messages
        self.position = 0
        self.commits: dict[TopicPartition, CommitPoint] = {}  # with their metadata
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.paused: list[TopicPartition] = []
        self.listener: RebalanceListener | None = None
        self.ends: dict[TopicPartition, int] = {}  # end offsets, as statistics would report
        self.app_positions: dict[TopicPartition, int] = {}  # past markers, as librdkafka's

    def subscribe(self, listener: RebalanceListener) -> None:
        self.listener = listener
        listener.on_assigned([("subscription-events", 0)])

    def revoke(self, partitions: list[TopicPartition]) -> None:
        """A rebalance takes `partitions` away (as the consumer's revoke callback does)."""
        assert self.listener is not None
        self.listener.on_revoked(partitions)

    def assign(self, partitions: list[TopicPartition]) -> None:
        assert self.listener is not None
        self.listener.on_assigned(partitions)

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        if self.paused:
            return []
        chunk = self.messages[self.position : self.position + max_messages]
        self.position += len(chunk)
        return chunk

    def commit(self, points: dict[TopicPartition, CommitPoint]) -> None:
        self.commits.update(points)
        self.committed_offsets.update({tp: point.offset for tp, point in points.items()})

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, CommitPoint]:
        return {tp: self.commits[tp] for tp in partitions if tp in self.commits}

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused = partitions

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused = []

    def positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.app_positions[tp] for tp in partitions if tp in self.app_positions}

    def lag(self, committed: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        return {
            tp: end - committed.get(tp, self.committed_offsets.get(tp, 0))
            for tp, end in self.ends.items()
        }

    def group_metadata(self) -> object:
        return None

    def partition_count(self) -> int:
        return 1

    def close(self) -> None:
        return


TOO_LARGE = "Broker: Message size too large"


class FakeSink:
    """Collects published records; acknowledges them on `poll` unless told to fail."""

    def __init__(self, fail_with: str | None = None, max_bytes: int | None = None) -> None:
        self.records: list[OutboundRecord] = []
        self.refused: list[OutboundRecord] = []
        self._pending: list[tuple[DeliveryCallback, str | None]] = []
        self._fail_with = fail_with
        self._max_bytes = max_bytes  # records bigger than this are refused for their size

    def publish(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        size = len(record.value or b"") + sum(len(n) + len(v) for n, v in record.headers or [])
        if self._max_bytes is not None and size > self._max_bytes:
            self.refused.append(record)
            self._pending.append((on_delivery, TOO_LARGE))
            return
        self.records.append(record)
        self._pending.append((on_delivery, self._fail_with))

    def too_large(self, error: object) -> bool:
        return error == TOO_LARGE

    def poll(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        for callback, error in pending:
            callback(error, None)

    def flush(self, timeout_s: float) -> int:
        self.poll(0)
        return 0

    def close(self) -> None:
        return


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    """A counter's value (`name` without the prefix and `_total`), 0 when never counted."""
    value = metrics.registry.get_sample_value(f"subscription_upserter_{name}_total", labels)
    return value or 0.0
