"""The loop while the Schema Registry is down (service/loop/parking.py, Pipeline's decoded
intake, OffsetTracker.unconsume): the partition of a record whose schema cannot be had is
parked at that record, nothing is marked for it, other partitions go on, and it resumes at
that record once the registry answers: no event skipped, reordered, failed or repeated."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping

import orjson

from service.core.batching import BatchLimits
from service.core.clock import FakeClock
from service.core.errors import SchemaRegistryUnavailableError
from service.core.mapping.apply import MappedReader
from service.core.mapping.document import read_mapping
from service.core.mapping.json_input import JsonDecoder
from service.core.model import RawMessage
from service.core.offsets import NEW, REDELIVERED, CommitPoint, OffsetTracker, TopicPartition
from service.core.ports import RebalanceListener
from service.core.records import Topics
from service.loop.parking import FIRST_RETRY_S, MAX_RETRY_S
from service.loop.pipeline import Pipeline, PipelineConfig
from tests.unit.factories import LIMITS
from tests.unit.fake_kafka import FakeSink, FakeSource
from tests.unit.fakes import FakeTransport, counted, make_caller

TOPIC = "subscription-events"
P0, P1 = (TOPIC, 0), (TOPIC, 1)
MAPPING = read_mapping({"id": "sub", "properties": {"hs_name": "name"}})


class PartitionedSource(FakeSource):
    """Two partitions, each read in order from its own position; pause, resume and seek per
    partition, as the Kafka client does them."""

    def __init__(self, messages: list[RawMessage]) -> None:
        super().__init__(messages)
        self.logs = {tp: [m for m in messages if (m.topic, m.partition) == tp] for tp in (P0, P1)}
        self.at = {P0: 0, P1: 0}
        self.paused_set: set[TopicPartition] = set()

    def subscribe(self, listener: RebalanceListener) -> None:
        self.listener = listener
        listener.on_assigned([P0, P1])

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        batch: list[RawMessage] = []
        for tp, log in self.logs.items():
            if tp not in self.paused_set:
                batch.extend(log[self.at[tp] : self.at[tp] + 4])  # a few of each per poll
                self.at[tp] = min(self.at[tp] + 4, len(log))
        return batch

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused_set.update(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused_set.difference_update(partitions)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.at[tp] = next(i for i, m in enumerate(self.logs[tp]) if m.offset >= offset)

    def all_read(self) -> bool:
        return all(self.at[tp] >= len(log) for tp, log in self.logs.items())


class RegistryDecoder(JsonDecoder):
    """JSON records naming their "schema"; while `down`, only schemas seen before decode (as
    the registry client caches them)."""

    def __init__(self) -> None:
        self.down = False
        self.cached: set[str] = set()
        self.attempts: list[tuple[int, int]] = []

    def decode(self, raw: RawMessage) -> object:
        self.attempts.append((raw.partition, raw.offset))
        document = super().decode(raw)
        assert isinstance(document, dict)
        if document["schema"] not in self.cached:
            if self.down:
                raise SchemaRegistryUnavailableError("connection refused")
            self.cached.add(document["schema"])
        return document


def record(partition: int, offset: int, schema: str = "v1") -> RawMessage:
    body = {"schema": schema, "sub": f"s-{partition}-{offset}", "name": f"n{offset}"}
    return RawMessage(TOPIC, partition, offset, b"k", orjson.dumps(body), None, 1)


def stream() -> list[RawMessage]:
    """Partition 0 meets a new schema version at offset 2; partition 1 only the old one."""
    p0 = [record(0, n, "v1" if n < 2 else "v2") for n in range(6)]
    return p0 + [record(1, n) for n in range(6)]


def build(
    messages: list[RawMessage], **buffer: int
) -> tuple[Pipeline, PartitionedSource, FakeSink, RegistryDecoder, FakeClock]:
    source, sink, clock = PartitionedSource(messages), FakeSink(), FakeClock()
    caller, metrics, health = make_caller(FakeTransport(), clock)
    decoder = RegistryDecoder()
    pipeline = Pipeline(
        source=source,
        sink=sink,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        config=PipelineConfig(
            topics=Topics(output="out", dlq="dlq"),
            validation=LIMITS,
            batching=BatchLimits(max_wait_s=0),
            **buffer,
        ),
        reader=MappedReader(decoder, MAPPING, LIMITS),
    )
    pipeline.subscribe()
    return pipeline, source, sink, decoder, clock


def turn(pipeline: Pipeline, clock: FakeClock, times: int = 30, step_s: float = 0.05) -> None:
    for _ in range(times):
        pipeline.step()
        clock.advance(step_s)
        time.sleep(0.001)  # the worker threads answer


def results(sink: FakeSink) -> list[dict[str, object]]:
    return [orjson.loads(r.value or b"") for r in sink.records if r.topic == "out"]


def offsets_of(sink: FakeSink, partition: int) -> list[int]:
    found = []
    for result in results(sink):
        source = result["source"]
        assert isinstance(source, Mapping)
        if source["partition"] == partition:
            found.append(int(source["offset"]))
    return sorted(found)


def test_a_partition_parks_at_the_record_whose_schema_cannot_be_had() -> None:
    pipeline, source, sink, decoder, clock = build(stream())
    decoder.down = True
    decoder.cached = {"v1"}  # read before the registry went down
    turn(pipeline, clock, times=20, step_s=0.01)  # within the first retry interval
    assert offsets_of(sink, 0) == [0, 1]  # before the record: done; from it: nothing
    assert offsets_of(sink, 1) == list(range(6))  # the other partition goes on
    assert {r["status"] for r in results(sink)} == {"upserted"}  # nothing marked
    assert not [r for r in sink.records if r.topic == "dlq"]
    assert source.seeks == [(P0, 2)] and source.paused_set == {P0}
    pipeline.commit()
    assert source.committed_offsets[P0] == 2  # not past the parked record
    assert source.committed_offsets[P1] == 6
    ready, reasons = pipeline._health.ready()
    assert not ready
    assert reasons[0].startswith("schema_registry: unavailable, 1 partition(s) paused: ")
    assert pipeline._health.readiness() == "schema_registry"
    metrics = pipeline._metrics
    assert counted(metrics, "schema_registry_unavailable") == 1  # type: ignore[arg-type]


def test_the_partition_resumes_at_that_record_once_the_registry_answers() -> None:
    pipeline, source, sink, decoder, clock = build(stream())
    decoder.down, decoder.cached = True, {"v1"}
    turn(pipeline, clock, times=10, step_s=0.01)
    decoder.down = False
    turn(pipeline, clock, times=40, step_s=0.05)  # past the retry interval
    assert source.all_read()
    assert offsets_of(sink, 0) == list(range(6))  # every one, once: none skipped or repeated
    assert offsets_of(sink, 1) == list(range(6))
    assert {r["status"] for r in results(sink)} == {"upserted"}
    assert source.seeks == [(P0, 2), (P0, 2)]  # parked there, read again from there
    assert source.paused_set == set()
    pipeline.commit()
    assert source.committed_offsets == {P0: 6, P1: 6}
    assert pipeline._health.ready() == (True, ["ok"])
    assert pipeline._metrics.registry_paused_partitions._value.get() == 0  # type: ignore[attr-defined]


def test_retries_back_off_while_the_registry_stays_down() -> None:
    pipeline, source, _, decoder, clock = build(stream())
    decoder.down, decoder.cached = True, {"v1"}
    turn(pipeline, clock, times=1, step_s=0.0)
    parked_at = clock.monotonic()
    probes: list[float] = []
    while clock.monotonic() - parked_at < 100:
        before = decoder.attempts.count((0, 2))
        pipeline.step()
        if decoder.attempts.count((0, 2)) > before:
            probes.append(round(clock.monotonic() - parked_at, 1))
        clock.advance(0.5)
    # every probe after the first interval doubles the wait, up to the cap
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert probes[0] == FIRST_RETRY_S
    assert gaps[:5] == [2.0, 4.0, 8.0, 16.0, 30.0]
    assert max(gaps) == MAX_RETRY_S
    assert source.paused_set == {P0}


def test_backpressure_never_resumes_a_parked_partition() -> None:
    pipeline, source, _, decoder, clock = build(stream())
    decoder.down, decoder.cached = True, {"v1"}
    turn(pipeline, clock, times=5, step_s=0.01)
    pipeline._paused = True  # as if the buffer had been full meanwhile
    pipeline._apply_backpressure()  # the buffer is empty: consumption resumes
    assert pipeline._paused is False
    assert source.paused_set == {P0}


def test_a_parked_partition_that_leaves_is_forgotten() -> None:
    pipeline, source, _, decoder, clock = build(stream())
    decoder.down, decoder.cached = True, {"v1"}
    turn(pipeline, clock, times=5, step_s=0.01)
    assert not pipeline._health.ready()[0]
    source.revoke([P0])
    assert pipeline._health.ready() == (True, ["ok"])
    assert pipeline._parking.partitions == frozenset()


def test_a_record_the_registry_says_is_unreadable_is_invalid_not_parked() -> None:
    messages = [record(0, 0), RawMessage(TOPIC, 0, 1, b"k", b"\xff", None, 1), record(0, 2)]
    pipeline, source, sink, _, clock = build(messages)
    turn(pipeline, clock, times=10)
    statuses = [str(r["status"]) for r in results(sink)]
    assert offsets_of(sink, 0) == [0, 1, 2]
    assert sorted(statuses) == ["invalid", "upserted", "upserted"]
    assert source.seeks == []


# -- OffsetTracker.unconsume -------------------------------------------------------------


def test_unconsume_takes_back_the_last_offset_read() -> None:
    tracker = OffsetTracker()
    tracker.assign(P0, CommitPoint(10))
    assert tracker.consumed(P0, 10) == NEW
    assert tracker.consumed(P0, 11) == NEW
    tracker.unconsume(P0, 11)
    assert tracker.unfinished(P0) == 1
    assert tracker.consumed(P0, 11) == NEW  # read again after the seek: new, not redelivered
    assert tracker.consumed(P0, 10) == REDELIVERED


def test_an_unconsumed_first_offset_commits_at_itself() -> None:
    tracker = OffsetTracker()
    tracker.assign(P0)
    tracker.consumed(P0, 5)
    tracker.unconsume(P0, 5)
    assert tracker.unfinished() == 0
    assert tracker.commit_points() == {P0: CommitPoint(5)}


def test_unconsume_leaves_anything_but_the_last_offset_alone() -> None:
    tracker = OffsetTracker()
    tracker.consumed(P0, 1)
    tracker.consumed(P0, 2)
    tracker.unconsume(P0, 1)  # not the last one read
    tracker.unconsume(P1, 1)  # not tracked
    assert tracker.unfinished(P0) == 2
    assert tracker.consumed(P0, 2) == REDELIVERED
