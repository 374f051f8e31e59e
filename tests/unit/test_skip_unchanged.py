"""SKIP_UNCHANGED through the loop (fakes for Kafka and HubSpot): what is sent, what the
results say, and when the memory is not trusted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from service.core.batching import BatchLimits
from service.core.clock import FakeClock
from service.core.last_written import LastWritten
from service.core.records import Topics
from service.core.responses import HttpReply
from service.loop.pipeline import Pipeline, PipelineConfig
from service.loop.skipping import SkipUnchanged
from tests.unit.factories import LIMITS, raw
from tests.unit.fake_kafka import FakeSink, FakeSource
from tests.unit.fakes import FakeTransport, counted, make_caller, reply

TOPICS = Topics(output="out", dlq="dlq")
TP = ("subscription-events", 0)


class Loop:
    """A pipeline over the fakes with SKIP_UNCHANGED on; events are fed in rounds, each round
    run until every event so far has its result."""

    def __init__(self, transport: FakeTransport, batching: BatchLimits | None = None) -> None:
        self.clock, self.sink = FakeClock(), FakeSink()
        self.source, self.transport = FakeSource([]), transport
        caller, self.metrics, health = make_caller(transport, self.clock)
        self.cache = LastWritten(1_000, 3_600, self.clock)
        limits = batching or BatchLimits(max_size=100, max_wait_s=0)
        self.pipeline = Pipeline(
            source=self.source,
            sink=self.sink,
            execute=caller.execute,
            clock=self.clock,
            metrics=self.metrics,
            health=health,
            config=PipelineConfig(topics=TOPICS, validation=LIMITS, batching=limits),
            skip_unchanged=SkipUnchanged(self.cache, self.metrics),
        )
        self.pipeline.subscribe()

    def feed(self, *snapshots: tuple[str, Mapping[str, object]]) -> list[dict[str, object]]:
        """Produce one event per (id, properties) and run until all have results; returns the
        results of this round."""
        before = len(self.results())
        offset = len(self.source.messages)
        for n, (sub_id, properties) in enumerate(snapshots):
            message = raw({"id": sub_id, "properties": properties}, offset=offset + n)
            self.source.messages.append(message)
        deadline = time.monotonic() + 10
        while len(self.results()) < offset + len(snapshots):
            assert time.monotonic() < deadline, "the loop did not settle"
            self.pipeline.step()
            self.clock.advance(0.01)
            time.sleep(0.001)
        return self.results()[before:]

    def results(self) -> list[dict[str, object]]:
        return [orjson.loads(r.value or b"") for r in self.sink.records if r.topic == "out"]

    def sent(self) -> list[list[dict[str, object]]]:
        """The inputs of every request so far."""
        return [request["inputs"] for request in self.transport.requests]  # type: ignore[misc]


def test_an_input_equal_to_the_last_write_is_not_sent_and_its_result_says_unchanged() -> None:
    loop = Loop(FakeTransport())
    loop.feed(("a", {"hs_status": "active", "hs_amount": 10}))
    [result] = loop.feed(("a", {"hs_status": "active", "hs_amount": 10}))
    assert len(loop.transport.requests) == 1
    assert result["status"] == "unchanged" and result["hubspotId"] == "h-a"
    assert result["error"] is None and result["new"] is None and result["batch"] is None
    assert result["objectWriteTraceId"] == "subscription-events-0-1"
    assert [r.topic for r in loop.sink.records].count("dlq") == 0
    assert counted(loop.metrics, "dead_letters", status="unchanged", category="UNKNOWN") == 0
    assert counted(loop.metrics, "skip_unchanged_inputs") == 1
    assert counted(loop.metrics, "skip_unchanged_properties") == 2
    assert counted(loop.metrics, "results", status="unchanged") == 1


def test_only_the_changed_properties_are_sent_under_a_trace_id_of_their_own() -> None:
    loop = Loop(FakeTransport())
    loop.feed(("a", {"hs_status": "active", "hs_amount": 10, "hs_name": "Gold"}))
    [result] = loop.feed(("a", {"hs_status": "active", "hs_amount": 12, "hs_name": "Gold"}))
    [[sent]] = loop.sent()[1:]
    assert sent["properties"] == {"hs_amount": "12"}
    assert str(sent["objectWriteTraceId"]).startswith("changed-")
    assert result["status"] == "upserted" and result["hubspotId"] == "h-a"
    assert result["objectWriteTraceId"] == "subscription-events-0-1"  # the event's own
    assert counted(loop.metrics, "skip_unchanged_properties") == 2
    [again] = loop.feed(("a", {"hs_status": "active", "hs_amount": 12, "hs_name": "Gold"}))
    assert again["status"] == "unchanged"  # what was sent merged into what was known


def test_unchanged_inputs_take_no_place_in_a_batch() -> None:
    # 40 ids written; then a snapshot of all 40 where 8 changed: one full request of the 8
    # (and the 32 unchanged answered at once), not 4 requests of 2.
    loop = Loop(FakeTransport(), BatchLimits(max_size=10, max_wait_s=0))
    loop.feed(*[(f"s-{n}", {"v": 1}) for n in range(40)])
    changed = {n for n in range(40) if n % 5 == 0}
    snapshot = [(f"s-{n}", {"v": 2 if n in changed else 1}) for n in range(40)]
    results = loop.feed(*snapshot)
    assert [len(inputs) for inputs in loop.sent()[4:]] == [8]
    assert {str(i["id"]) for i in loop.sent()[4][0:8]} == {f"s-{n}" for n in changed}
    statuses = {str(r["id"]): r["status"] for r in results}
    assert statuses == {f"s-{n}": "upserted" if n in changed else "unchanged" for n in range(40)}


def test_a_rejected_write_forgets_the_id_so_its_next_input_is_sent_whole() -> None:
    def reject(request: dict[str, object]) -> HttpReply:
        inputs: list[dict[str, Any]] = request["inputs"]  # type: ignore[assignment]
        [item] = inputs
        error = {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "bad value",
            "context": {"objectWriteTraceId": [item["objectWriteTraceId"]]},
        }
        return reply(207, {"status": "COMPLETE", "results": [], "errors": [error]})

    from tests.unit.fakes import ok_for

    loop = Loop(FakeTransport(ok_for, reject, ok_for))
    loop.feed(("a", {"x": 1, "y": 1}))
    [failed] = loop.feed(("a", {"x": 1, "y": "bad"}))
    [result] = loop.feed(("a", {"x": 1, "y": 1}))
    assert failed["status"] == "failed" and result["status"] == "upserted"
    assert loop.sent()[2][0]["properties"] == {"x": "1", "y": "1"}


def test_a_partition_that_leaves_takes_its_memory_with_it() -> None:
    loop = Loop(FakeTransport())
    loop.feed(("a", {"x": 1}))
    assert len(loop.cache) == 1
    loop.source.revoke([TP])
    assert len(loop.cache) == 0
    loop.source.assign([TP])
    [result] = loop.feed(("a", {"x": 1}))
    assert result["status"] == "upserted" and len(loop.transport.requests) == 2


def test_with_the_setting_off_every_input_is_sent() -> None:
    # The same rounds through a loop without SKIP_UNCHANGED: the control for the tests above.
    clock, sink = FakeClock(), FakeSink()
    messages = [raw({"id": "a", "properties": {"x": 1}}, offset=n) for n in range(3)]
    source, transport = FakeSource([]), FakeTransport()
    caller, metrics, health = make_caller(transport, clock)
    pipeline = Pipeline(
        source=source,
        sink=sink,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        config=PipelineConfig(topics=TOPICS, validation=LIMITS, batching=BatchLimits(max_wait_s=0)),
    )
    pipeline.subscribe()
    for message in messages:
        source.messages.append(message)
        deadline = time.monotonic() + 10
        while len([r for r in sink.records if r.topic == "out"]) < message.offset + 1:
            assert time.monotonic() < deadline
            pipeline.step()
            time.sleep(0.001)
    assert len(transport.requests) == 3
