"""A clean stop or hand-over repeats nothing: partitions that leave (a rebalance, a SIGTERM)
first finish every event consumed from them, buffered or held back, then commit; what cannot
finish in time is left to the next owner, and the commit records what did finish past its
position, which the next owner skips. Observed through the ports: what the sink received,
what the source committed, what HubSpot was sent."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import orjson
from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core import commit_metadata
from service.core.batching import BatchLimits
from service.core.clock import Clock, FakeClock, SystemClock
from service.core.health import Health
from service.core.model import (
    Batch,
    BatchOutcome,
    InputOutcome,
    RawMessage,
    Status,
    UpsertedRecord,
)
from service.core.records import Topics
from service.core.responses import HttpReply
from service.core.retry import Backoff
from service.loop.caller import CallerPolicy
from service.loop.pipeline import Pipeline, PipelineConfig
from tests.unit.factories import LIMITS, raw
from tests.unit.fake_kafka import FakeSink, FakeSource
from tests.unit.fakes import TEST_POLICY, FakeTransport, make_caller, ok_for, reply
from tests.unit.observe import step_until

TP = ("subscription-events", 0)
TOPICS = Topics(output="out", dlq="dlq")
LONG_WINDOW = BatchLimits(max_size=10, max_wait_s=30.0)  # events wait in the buffer


def _pipeline(
    source: FakeSource,
    sink: FakeSink,
    transport: FakeTransport,
    clock: Clock,
    policy: CallerPolicy = TEST_POLICY,
    **config: float,
) -> Pipeline:
    caller, metrics, health = make_caller(transport, clock, policy=policy)  # type: ignore[arg-type]
    return Pipeline(
        source=source,
        sink=sink,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        config=PipelineConfig(
            topics=TOPICS,
            validation=LIMITS,
            batching=LONG_WINDOW,
            max_in_flight=2,
            **config,  # type: ignore[arg-type]
        ),
    )


def _stream(events: int, ids: int) -> list[RawMessage]:
    """Heavily repeated ids, so that most events wait behind an earlier one of their id."""
    return [
        raw({"id": f"s-{n % ids}", "properties": {"n": str(n)}}, offset=n) for n in range(events)
    ]


def _result_offsets(sink: FakeSink) -> list[int]:
    results = [orjson.loads(r.value or b"") for r in sink.records if r.topic == "out"]
    return [result["source"]["offset"] for result in results]


def _successor(source: FakeSource) -> FakeSource:
    """The partition's next owner, in the same group: it reads from the group's commit on."""
    return FakeSource(source.messages, commits=source.commits)


def test_a_revoked_partition_finishes_its_buffered_and_held_back_events_first() -> None:
    messages = _stream(200, ids=7)
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock)
    pipeline.subscribe()
    pipeline.step()  # reads 200 events; none is due yet (a 30 s window)
    assert sink.records == []
    source.revoke([TP])
    assert sorted(_result_offsets(sink)) == list(range(200))
    assert source.commits[TP].offset == 200  # everything: the next owner starts past it
    follow_sink = FakeSink()
    follow = _pipeline(_successor(source), follow_sink, FakeTransport(), clock)
    follow.subscribe()
    for _ in range(5):
        follow.step()
    assert _result_offsets(follow_sink) == []


def test_per_id_order_holds_while_a_revoked_partition_finishes() -> None:
    sent: list[list[str]] = []

    def recording(request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        sent.append([f"{item['id']}={item['properties']['n']}" for item in inputs])
        return ok_for(request)

    source, sink, clock = FakeSource(_stream(60, ids=3)), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(recording), clock)
    pipeline.subscribe()
    pipeline.step()
    source.revoke([TP])
    last: dict[str, int] = {}
    for request in sent:
        for item in request:
            key, value = item.split("=")
            assert int(value) > last.get(key, -1), "an older value sent after a newer one"
            last[key] = int(value)
    assert last == {"s-0": 57, "s-1": 58, "s-2": 59}


def test_what_finished_past_a_stuck_event_is_not_redone_by_the_next_owner() -> None:
    # Event 0's id is stuck (HubSpot answers 503 to it); everything else finishes (s-0 is
    # isolated, and its batch goes on without it). The revoke gives up on event 0 after its
    # timeout, and the commit at 0 records the rest.
    def stuck_on_s0(request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        if any(item["id"] == "s-0" for item in inputs):
            return reply(503, {"status": "error", "message": "down"})
        return ok_for(request)

    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(30)]
    source, sink, clock = FakeSource(messages), FakeSink(), SystemClock()
    quick_retries = replace(TEST_POLICY, backoff=Backoff(base_s=0.02, cap_s=0.05))
    pipeline = _pipeline(
        source, sink, FakeTransport(stuck_on_s0), clock, quick_retries, rebalance_timeout_s=1.0
    )
    pipeline.subscribe()
    pipeline.step()
    source.revoke([TP])  # s-0 is isolated and retried until the timeout, then handed over
    finished = set(_result_offsets(sink))
    assert finished == set(range(1, 30))  # everything else went through
    point = source.commits[TP]
    assert point.offset == 0
    assert commit_metadata.decode(0, point.metadata) == finished

    successor, follow_sink = _successor(source), FakeSink()
    follow = _pipeline(successor, follow_sink, FakeTransport(), clock)
    follow.subscribe()
    step_until(follow, lambda: successor.drained)
    follow.finish(None, clock.monotonic() + 60)
    redone = _result_offsets(follow_sink)
    assert sorted(redone) == sorted(set(range(30)) - finished)
    everything = Counter([*finished, *redone])
    assert set(everything) == set(range(30)) and max(everything.values()) == 1  # no duplicate


def test_a_stop_finishes_every_consumed_event_before_the_last_commit() -> None:
    source, sink, clock = FakeSource(_stream(120, ids=5)), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock, drain_timeout_s=30.0)
    stop = threading.Event()
    source.on_poll = stop.set  # SIGTERM arrives while this turn's events are being read
    assert pipeline.run(stop) == 0
    assert sorted(_result_offsets(sink)) == list(range(120))
    assert source.commits[TP].offset == 120


def _pipeline_executing(
    execute: Callable[[Batch], BatchOutcome], source: FakeSource, sink: FakeSink, clock: FakeClock
) -> Pipeline:
    """A loop whose batches `execute` runs (no caller): it decides each batch's outcome."""
    metrics = Metrics(CollectorRegistry(), clock.monotonic)
    return Pipeline(
        source=source,
        sink=sink,
        execute=execute,
        clock=clock,
        metrics=metrics,
        health=Health(clock),
        config=PipelineConfig(topics=TOPICS, validation=LIMITS, batching=BatchLimits(max_wait_s=0)),
    )


def test_inputs_deferred_by_a_batch_of_a_lost_partition_are_left_to_its_next_owner() -> None:
    # A batch still running when its partition is lost comes back later with an input it
    # deferred (HubSpot kept failing it). The partition's next owner redoes that event, so
    # this member must neither send it again nor keep its id in flight: assigned the
    # partition again, it reads the event from the commit and sends it once, with one result.
    gate, sent, returned = threading.Event(), [], threading.Event()
    upserted = InputOutcome(Status.UPSERTED, UpsertedRecord("h-1", False, None, None))

    def execute(batch: Batch) -> BatchOutcome:
        sent.append([item.id for item in batch.inputs])
        if len(sent) == 1:
            gate.wait(5)
            returned.set()
            return BatchOutcome(batch, deferred=list(batch.inputs), retry_in_s=0.0)
        return BatchOutcome(batch, {item.trace_id: upserted for item in batch.inputs})

    source, sink, clock = (
        FakeSource([raw({"id": "a", "properties": {}}, 0)]),
        FakeSink(),
        FakeClock(),
    )
    pipeline = _pipeline_executing(execute, source, sink, clock)
    pipeline.subscribe()
    step_until(pipeline, lambda: sent, clock, 0.1)
    source.lose([TP])
    gate.set()
    step_until(pipeline, returned.is_set, clock, 0.1)
    for _ in range(5):  # the batch is collected
        pipeline.step()
        clock.advance(0.1)
    source.assign([TP])
    step_until(pipeline, lambda: _result_offsets(sink), clock, 0.1)
    for _ in range(20):  # anything sent again would show by now
        pipeline.step()
        clock.advance(0.1)
    assert sent == [["a"], ["a"]]
    assert _result_offsets(sink) == [0]
