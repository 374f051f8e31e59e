"""A partition handed over while its batch still runs: the batch sends none of its events
any more, and the member lets the partition go only once a request on the wire has ended
(the next owner redoes the events; an older write must not land after its newer ones)."""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

import orjson
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core.batching import BatchLimits
from service.core.clock import FakeClock, SystemClock
from service.core.health import Health
from service.core.model import Batch, BatchInput, RawMessage
from service.core.ratelimit import RateLimiter, read_headers
from service.core.records import Topics
from service.core.responses import HttpReply
from service.core.retry import Backoff
from service.loop.caller import CallerPolicy, UpsertCaller
from service.loop.handover import Handover
from service.loop.pipeline import Pipeline, PipelineConfig
from tests.unit.factories import LIMITS, event, raw
from tests.unit.fake_kafka import FakeSink, FakeSource
from tests.unit.fakes import FakeTransport, acquire_from_another_thread, ok_for, reply
from tests.unit.observe import refreshed_gauge

P0, P1 = ("subscription-events", 0), ("subscription-events", 1)


class _Recorder:
    """A HubSpot that answers each request with the next step, recording what it was sent."""

    def __init__(self, *steps: object) -> None:
        self.sent: list[list[str]] = []
        self._steps = list(steps)

    def __call__(self, request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        self.sent.append([item["id"] for item in inputs])
        step = self._steps.pop(0) if len(self._steps) > 1 else self._steps[0]
        if isinstance(step, threading.Event):
            step.wait(5)
            return ok_for(request)
        if step == "503":
            return reply(503, {"status": "error", "message": "down"})
        return ok_for(request)


class _Clock(SystemClock):
    """The real clock, which a test may also move forward (to refresh the loop's gauges)."""

    def __init__(self) -> None:
        self._ahead = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self._ahead

    def advance(self, seconds: float) -> None:
        self._ahead += seconds


class _Loop(NamedTuple):
    pipeline: Pipeline
    metrics: Metrics
    clock: _Clock


def _pipeline(
    transport: FakeTransport, source: FakeSource, sink: FakeSink, backoff_s: float = 0.3
) -> _Loop:
    clock, handover = _Clock(), Handover()
    metrics, health = Metrics(CollectorRegistry()), Health(clock)
    caller = UpsertCaller(
        transport,
        limiter=RateLimiter(190, 10.0, clock),
        clock=clock,
        metrics=metrics,
        health=health,
        policy=CallerPolicy(
            backoff=Backoff(base_s=backoff_s, cap_s=backoff_s, rand=lambda: 1.0),
            auth_retry_s=5.0,
        ),
        aborted=lambda: False,
        handover=handover,
    )
    config = PipelineConfig(
        topics=Topics(output="out", dlq="dlq"),
        validation=LIMITS,
        batching=BatchLimits(max_size=100, max_wait_s=0),
        rebalance_timeout_s=0.1,
        request_timeout_s=3.0,
    )
    pipeline = Pipeline(
        source=source,
        sink=sink,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        config=config,
        handover=handover,
    )
    return _Loop(pipeline, metrics, clock)


def _messages(*ids_and_partitions: tuple[str, int]) -> list[RawMessage]:
    return [
        raw({"id": event_id, "properties": {"n": str(n)}}, offset=n, partition=partition)
        for n, (event_id, partition) in enumerate(ids_and_partitions)
    ]


def _finish_all(loop: _Loop, seconds: float = 5) -> bool:
    """Let every batch come back and every consumed event still owned finish; True when all
    did in time and nothing failed."""
    return loop.pipeline.finish(None, loop.clock.monotonic() + seconds)


def _result_ids(sink: FakeSink) -> list[str]:
    return [orjson.loads(r.value or b"")["id"] for r in sink.records if r.topic == "out"]


def test_a_batch_retrying_when_its_partition_is_handed_over_never_sends_it_again() -> None:
    hubspot = _Recorder("503", "ok")
    source, sink = FakeSource(_messages(("a", 0))), FakeSink()
    loop = pipeline, metrics, clock = _pipeline(FakeTransport(hubspot), source, sink, 2.0)
    pipeline.subscribe()
    pipeline.step()
    deadline = time.monotonic() + 5
    while not hubspot.sent:  # the first attempt failed; the batch now waits to retry
        assert time.monotonic() < deadline
        time.sleep(0.005)
    source.revoke([P0])  # the retry is still 2 s away: the settle (0.1 s) gives up first
    assert _finish_all(loop)  # the batch came back, and nothing failed
    assert hubspot.sent == [["a"]]  # the next owner sends it; this member never again
    assert _result_ids(sink) == []  # nor does it publish a result for it
    # It left the buffer (else pauses never lift).
    assert refreshed_gauge(pipeline, clock, metrics, "buffered_bytes") == 0


def test_the_partition_goes_only_once_a_request_on_the_wire_has_ended() -> None:
    on_the_wire, ended_at = threading.Event(), []
    hubspot = _Recorder(on_the_wire)

    def answer_late() -> None:
        time.sleep(0.5)
        ended_at.append(time.monotonic())
        on_the_wire.set()

    source, sink = FakeSource(_messages(("a", 0))), FakeSink()
    loop = _pipeline(FakeTransport(hubspot), source, sink)
    pipeline = loop.pipeline
    pipeline.subscribe()
    pipeline.step()
    threading.Thread(target=answer_late, daemon=True).start()
    source.revoke([P0])  # the settle (0.1 s) gives up while the request is out
    revoke_returned = time.monotonic()
    assert ended_at and ended_at[0] <= revoke_returned
    assert _finish_all(loop)
    assert hubspot.sent == [["a"]]


def test_inputs_of_partitions_still_owned_are_sent_committed_and_reported() -> None:
    hubspot = _Recorder("503", "ok")
    source, sink = FakeSource(_messages(("a", 0), ("b", 1)), partitions=2), FakeSink()
    loop = _pipeline(FakeTransport(hubspot), source, sink, backoff_s=2.0)
    pipeline = loop.pipeline
    pipeline.subscribe()
    pipeline.step()
    deadline = time.monotonic() + 5
    while not hubspot.sent:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    source.revoke([P0])
    assert _finish_all(loop)
    assert hubspot.sent == [["a", "b"], ["b"]]
    assert _result_ids(sink) == ["b"]
    for _ in range(3):
        pipeline.step()
    pipeline.commit()
    assert source.committed_offsets == {P0: 0, P1: 2}  # P0 as handed over: a unfinished


class _HandedOverAsItsSlotIsTaken(RateLimiter):
    """A limiter during whose wait the batch's partition is handed over."""

    def __init__(self, handover: Handover, seq: int) -> None:
        super().__init__(190, 10.0, SystemClock())
        self._handover, self._seq = handover, seq

    def try_acquire(self) -> float:
        wait = super().try_acquire()
        if wait == 0:
            self._handover.hand_over({P0}, [self._seq], wait_s=0)
        return wait


def test_a_slot_taken_for_inputs_handed_over_meanwhile_is_given_back() -> None:
    handover = Handover()
    limiter = _HandedOverAsItsSlotIsTaken(handover, seq=7)
    hubspot = _Recorder("ok")
    caller = UpsertCaller(
        FakeTransport(hubspot),
        limiter=limiter,
        clock=SystemClock(),
        metrics=Metrics(CollectorRegistry()),
        health=Health(SystemClock()),
        policy=CallerPolicy(backoff=Backoff(base_s=0.01, cap_s=0.01), auth_retry_s=1.0),
        aborted=lambda: False,
        handover=handover,
    )
    item = BatchInput("a", "external_subscription_id", "trace-a", {"x": "1"}, [event("a", 0)])
    outcome = caller.execute(Batch(7, [item], 0.0))
    assert hubspot.sent == []
    assert outcome.handed_over == [item]
    # Before any reply the limiter lets one request out at a time: the slot came back.
    assert acquire_from_another_thread(limiter) == 0


def test_a_probe_whose_inputs_are_handed_over_lets_another_worker_probe() -> None:
    clock, handover = FakeClock(), Handover()
    limiter = RateLimiter(190, 10.0, clock)
    limiter.observe(read_headers({"x-hubspot-ratelimit-remaining": "189"}), clock.monotonic())
    assert limiter.hold_then_probe(30, sent_at=clock.monotonic())  # e.g. credentials refused

    def down_then_handed_over(request: dict[str, object]) -> HttpReply:
        handover.hand_over({P0}, [7], wait_s=0)  # revoked while the probe is out
        return reply(503, {"status": "error", "message": "down"})

    caller = UpsertCaller(
        FakeTransport(down_then_handed_over),
        limiter=limiter,
        clock=clock,
        metrics=Metrics(CollectorRegistry(), clock.monotonic),
        health=Health(clock),
        policy=CallerPolicy(backoff=Backoff(base_s=1.0, cap_s=1.0), auth_retry_s=30.0),
        aborted=lambda: False,
        handover=handover,
    )
    item = BatchInput("a", "external_subscription_id", "trace-a", {"x": "1"}, [event("a", 0)])
    outcome = caller.execute(Batch(7, [item], 0.0))  # probes, fails, and has nothing left
    assert outcome.handed_over == [item]
    clock.advance(1)
    assert acquire_from_another_thread(limiter) == 0  # another worker probes now
