from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import pytest

from service.core.batching import BatchLimits
from service.core.clock import FakeClock
from service.core.model import RawMessage
from service.core.offsets import CommitPoint
from service.core.records import Topics
from service.core.responses import HttpReply
from service.loop.commit import Committer
from service.loop.pipeline import Pipeline, PipelineConfig
from tests.unit.factories import LIMITS, raw
from tests.unit.fakes import FakeSink, FakeSource, FakeTransport, make_caller, ok_for, reply

TOPICS = Topics(output="out", dlq="dlq")
HALF_SECOND_WINDOW = BatchLimits(max_size=100, max_wait_s=0.5)
NO_WINDOW = BatchLimits(max_wait_s=0)


def _pipeline(
    source: FakeSource,
    sink: FakeSink,
    transport: FakeTransport,
    clock: FakeClock,
    batching: BatchLimits = HALF_SECOND_WINDOW,
    *,
    committer: Committer | None = None,
    **buffer: int,
) -> Pipeline:
    """A loop over the fakes; `buffer`: max_buffered_events, poll_max_messages, ..."""
    caller, metrics, health = make_caller(transport, clock)
    return Pipeline(
        source=source,
        sink=sink,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        committer=committer,
        config=PipelineConfig(topics=TOPICS, validation=LIMITS, batching=batching, **buffer),
    )


def _run_until_settled(pipeline: Pipeline, source: FakeSource, clock: FakeClock) -> None:
    pipeline.subscribe()
    deadline = time.monotonic() + 10
    while pipeline._tracker.unfinished() or source.position < len(source.messages):
        assert time.monotonic() < deadline, "the loop did not settle"
        pipeline.step()
        clock.advance(0.1)
        time.sleep(0.001)
    pipeline._finish()


def _results(sink: FakeSink, topic: str = "out") -> list[dict[str, object]]:
    return [orjson.loads(r.value or b"") for r in sink.records if r.topic == topic]


def test_every_event_gets_one_result_and_the_whole_topic_is_committed() -> None:
    messages = [raw({"id": f"s-{n % 30}", "properties": {"n": n}}, offset=n) for n in range(250)]
    messages.append(raw(b"not json", offset=250))
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    pipeline = _pipeline(source, sink, transport, clock)
    _run_until_settled(pipeline, source, clock)
    results = _results(sink)
    assert sorted(r["source"]["offset"] for r in results) == list(range(251))  # type: ignore[index]
    assert source.committed_offsets == {("subscription-events", 0): 251}
    assert sum(1 for r in results if r["status"] == "invalid") == 1
    assert len([r for r in sink.records if r.topic == "dlq"]) == 1
    for request in transport.requests:
        ids = [item["id"] for item in request["inputs"]]  # type: ignore[attr-defined]
        assert len(ids) == len(set(ids))


def test_nothing_is_committed_past_an_undelivered_result() -> None:
    messages = [raw({"id": "a", "properties": {}}, offset=0)]
    source, sink, clock = FakeSource(messages), FakeSink(fail_with="broker down"), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock)
    pipeline.subscribe()
    for _ in range(20):
        pipeline.step()
        clock.advance(0.1)
    assert pipeline._finish() == 1
    assert source.committed_offsets.get(("subscription-events", 0), 0) == 0


def test_backpressure_pauses_consumption_when_the_buffer_is_full() -> None:
    messages: list[RawMessage] = [
        raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(300)
    ]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    gate = threading.Event()

    def blocked(request: dict[str, object]) -> object:
        gate.wait(5)
        from tests.unit.fakes import ok_for

        return ok_for(request)

    transport = FakeTransport(blocked)  # type: ignore[arg-type]
    pipeline = _pipeline(
        source, sink, transport, clock, BatchLimits(), max_buffered_events=100, poll_max_messages=50
    )
    pipeline.subscribe()
    for _ in range(5):
        pipeline.step()
    assert source.paused
    assert source.position <= 150
    gate.set()
    deadline = time.monotonic() + 10
    while len(_results(sink)) < 300 and time.monotonic() < deadline:
        pipeline.step()
        clock.advance(0.1)
        time.sleep(0.001)
    pipeline._finish()
    assert len(_results(sink)) == 300
    assert not source.paused


def test_a_partial_batch_leaves_at_once_when_the_buffer_is_full_and_nothing_is_in_flight() -> None:
    # 40 distinct ids fill a 40-event buffer: consumption pauses with fewer inputs than a full
    # batch. Nothing in flight can free held-back ids and no new event can arrive, so the
    # batch goes without waiting for its window (the clock never moves here).
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(40)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    window = BatchLimits(max_size=100, max_wait_s=60)
    pipeline = _pipeline(source, sink, transport, clock, window, max_buffered_events=40)
    pipeline.subscribe()
    deadline = time.monotonic() + 10
    while len(_results(sink)) < 40 and time.monotonic() < deadline:
        pipeline.step()
        time.sleep(0.001)
    assert len(_results(sink)) == 40
    assert [len(r["inputs"]) for r in transport.requests] == [40]  # type: ignore[arg-type]


def test_below_a_full_buffer_a_partial_batch_waits_for_its_window() -> None:
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(40)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    pipeline = _pipeline(source, sink, transport, clock)  # window 0.5 s, buffer 20,000
    pipeline.subscribe()
    for _ in range(20):
        pipeline.step()
        time.sleep(0.001)
    assert transport.requests == []
    clock.advance(0.6)
    deadline = time.monotonic() + 10
    while len(_results(sink)) < 40 and time.monotonic() < deadline:
        pipeline.step()
        time.sleep(0.001)
    assert [len(r["inputs"]) for r in transport.requests] == [40]  # type: ignore[arg-type]


class _BlockingSource(FakeSource):
    """Like a real consumer: an empty poll blocks for its whole timeout (recorded)."""

    def __init__(self, messages: list[RawMessage]) -> None:
        super().__init__(messages)
        self.blocking_polls: list[tuple[float, int]] = []  # (timeout, batches in flight)
        self.polls_while_in_flight = 0
        self.pipeline: Pipeline | None = None

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        chunk = super().poll(max_messages, timeout_s)
        assert self.pipeline is not None
        in_flight = self.pipeline._workers.in_flight
        self.polls_while_in_flight += in_flight > 0
        if not chunk and timeout_s > 0:
            self.blocking_polls.append((timeout_s, in_flight))
            time.sleep(timeout_s)
        return chunk


def test_with_a_batch_in_flight_the_loop_waits_on_it_not_on_kafka() -> None:
    # A batch that finishes while the loop sleeps in an empty poll would leave its worker
    # idle until the poll timed out: with work in flight the loop waits on the workers.
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(250)]
    source, sink, clock = _BlockingSource(messages), FakeSink(), FakeClock()

    def slow(request: dict[str, object]) -> HttpReply:
        time.sleep(0.1)
        return ok_for(request)

    transport = FakeTransport(slow)
    pipeline = _pipeline(source, sink, transport, clock, BatchLimits(max_size=100, max_wait_s=0))
    source.pipeline = pipeline
    _run_until_settled(pipeline, source, clock)
    assert len(_results(sink)) == 250
    assert len(transport.requests) == 3
    assert [in_flight for _, in_flight in source.blocking_polls if in_flight] == []
    # It waited, on the workers: while the 100 ms batches are in flight, a turn takes about
    # 10 ms (the test adds 1 ms per turn); one that never waited would take 1 ms.
    assert 0 < source.polls_while_in_flight < 100  # about 30 (a spinning loop: about 270)


class _UnackedSink(FakeSink):
    """A producer whose broker does not answer: nothing is acknowledged, and a poll waits
    for acknowledgements for its whole timeout."""

    def poll(self, timeout_s: float) -> None:
        time.sleep(timeout_s)


def test_paused_with_nothing_in_flight_the_loop_sleeps_instead_of_spinning() -> None:
    # Results wait for acknowledgements that do not come (the broker is down): consumption
    # is paused and no batch is in flight. Each turn must wait, not burn a core.
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(30)]
    source, sink, clock = FakeSource(messages), _UnackedSink(), FakeClock()
    pipeline = _pipeline(
        source, sink, FakeTransport(), clock, BatchLimits(max_wait_s=0), max_buffered_events=20
    )
    pipeline.subscribe()
    deadline = time.monotonic() + 10
    while len(_results(sink)) < 30 and time.monotonic() < deadline:
        pipeline.step()
    assert source.paused and not pipeline._workers.in_flight
    started = time.monotonic()
    for _ in range(10):
        pipeline.step()
    assert time.monotonic() - started >= 0.05


def test_a_daily_block_with_nothing_left_to_send_does_not_stop_consumption() -> None:
    # A rejected request whose headers say the daily budget is spent leaves the daily block
    # set, with no batch left to probe it. Consumption must go on: only a new batch's probe
    # can clear the block.
    source, sink, clock = (
        FakeSource([raw({"id": "a", "properties": {}}, offset=0)]),
        FakeSink(),
        FakeClock(),
    )
    spent = reply(400, {"message": "bad"}, x_hubspot_ratelimit_daily_remaining="0")
    transport = FakeTransport(lambda _: spent, ok_for)
    pipeline = _pipeline(source, sink, transport, clock, BatchLimits(max_wait_s=0))
    pipeline.subscribe()
    _step_until(pipeline, lambda: len(_results(sink)) == 1)
    source.messages.append(raw({"id": "b", "properties": {}}, offset=1))
    _step_until(pipeline, lambda: len(_results(sink)) == 2)
    assert [r["status"] for r in _results(sink)] == ["failed", "upserted"]
    assert not source.paused


def _step_until(pipeline: Pipeline, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "the loop did not get there"
        pipeline.step()
        time.sleep(0.001)


def _settled(events: int) -> tuple[Pipeline, FakeSource]:
    """A loop that has read `events` events of one partition and finished them all."""
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(events)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock, BatchLimits(max_wait_s=0))
    pipeline.subscribe()
    _step_until(pipeline, lambda: not pipeline._tracker.unfinished() and source.position == events)
    return pipeline, source


def _with_committer(
    source: FakeSource,
    sink: FakeSink,
    transport: FakeTransport,
    clock: FakeClock,
    *,
    committer: Committer,
    batching: BatchLimits = NO_WINDOW,
) -> Pipeline:
    return _pipeline(source, sink, transport, clock, batching, committer=committer)


def test_events_dropped_with_a_revoked_partition_leave_the_buffer() -> None:
    # Events still waiting in the batcher when their partition is revoked are read again by
    # its next owner. They must leave the byte count too: otherwise every rebalance leaks
    # bytes, and once the leak passes half the cap consumption never resumes after a pause.
    big = "x" * 2_000
    messages = [raw({"id": f"s-{n}", "properties": {"p": big}}, offset=n) for n in range(600)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    window = BatchLimits(max_size=100, max_wait_s=5.0)
    pipeline = _pipeline(
        source, sink, FakeTransport(), clock, window,
        max_in_flight=1, max_buffered_bytes=1_000_000, poll_max_messages=600,
    )  # fmt: skip
    pipeline.subscribe()
    pipeline.step()  # reads all 600; one batch of 100 goes, 500 wait
    source.revoke([("subscription-events", 0)])
    source.assign([("subscription-events", 0)])
    _step_until(pipeline, lambda: not pipeline._paused and not pipeline._workers.in_flight)
    assert pipeline._buffered_bytes() == 0


def test_finishing_a_slow_batch_on_revocation_keeps_the_service_live() -> None:
    # A revoked partition's batch in flight is finished before the partition is handed over
    # (up to the rebalance timeout). That is progress: liveness must not report a stall.
    messages = [raw({"id": "a", "properties": {}}, offset=0)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    gate = threading.Event()

    def slow(request: dict[str, object]) -> HttpReply:
        gate.wait(5)
        clock.advance(45)  # HubSpot took its time
        return ok_for(request)

    pipeline = _pipeline(source, sink, FakeTransport(slow), clock, BatchLimits(max_wait_s=0))
    pipeline.subscribe()
    pipeline.step()
    assert pipeline._workers.in_flight == 1
    clock.advance(45)
    gate.set()
    source.revoke([("subscription-events", 0)])
    assert len(_results(sink)) == 1
    assert pipeline._health.live()[0] is True


def test_events_of_different_ids_with_one_trace_id_each_get_their_own_outcome() -> None:
    # The contract lets upstream set objectWriteTraceId; nothing makes it unique.
    messages = [
        raw({"id": event_id, "objectWriteTraceId": "T", "properties": {"x": "1"}}, offset=n)
        for n, event_id in enumerate(("a", "b"))
    ]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    pipeline = _pipeline(source, sink, transport, clock)
    _run_until_settled(pipeline, source, clock)
    results = {r["id"]: r for r in _results(sink)}
    assert {k: (r["status"], r["hubspotId"]) for k, r in results.items()} == {
        "a": ("upserted", "h-a"),
        "b": ("upserted", "h-b"),
    }
    assert [len(request["inputs"]) for request in transport.requests] == [1, 1]  # type: ignore[arg-type]


def _samples(pipeline: Pipeline, name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels.values()): sample.value
        for family in pipeline._metrics.registry.collect()  # type: ignore[attr-defined]
        for sample in family.samples
        if sample.name == f"subscription_upserter_{name}"
    }


def test_lag_counts_from_the_services_own_commits_and_leaves_with_the_partition() -> None:
    # Lag is reported by the partition's owner only, from what the service committed; a
    # revoked partition's series go (left behind, a frozen lag adds to the group's total).
    tp, labels = ("subscription-events", 0), ("subscription-events", "0")
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(40)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    source.ends = {tp: 100}
    pipeline = _pipeline(source, sink, FakeTransport(), clock)
    _run_until_settled(pipeline, source, clock)
    clock.advance(60)
    pipeline.step()
    assert _samples(pipeline, "consumer_lag") == {labels: 60}
    assert _samples(pipeline, "committed_offset") == {labels: 40}
    source.committed_offsets.clear()  # the lag must come from the service's own commits
    clock.advance(60)
    pipeline.step()
    assert _samples(pipeline, "consumer_lag") == {labels: 60}
    source.revoke([tp])
    for name in ("consumer_lag", "committed_offset", "last_commit_timestamp_seconds"):
        assert _samples(pipeline, name) == {}, name
    clock.advance(60)
    pipeline.step()  # the source still reports the partition: not this member's to export
    assert _samples(pipeline, "consumer_lag") == {}


def test_after_a_commit_fails_in_a_rebalance_callback_the_turn_goes_no_further() -> None:
    # exactly_once: a failed transaction commit in on_revoked leaves no transaction open;
    # publishing in the same turn would be refused (an uncaught client error, not a clear
    # stop), and dispatching would send HubSpot batches nobody will report.
    from service.core.errors import TransactionError
    from service.core.offsets import OffsetTracker

    class FailingTransactions:
        exactly_once = True

        def commit(
            self, tracker: OffsetTracker, only: set[tuple[str, int]] | None = None
        ) -> dict[tuple[str, int], CommitPoint]:
            raise TransactionError("the transaction was aborted")

    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(5)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    pipeline = _with_committer(
        source, sink, FakeTransport(), clock, committer=FailingTransactions()
    )
    pipeline.subscribe()
    real_poll = source.poll

    def poll_with_a_rebalance(max_messages: int, timeout_s: float) -> list[RawMessage]:
        source.revoke([("subscription-events", 0)])
        return real_poll(max_messages, timeout_s)

    source.poll = poll_with_a_rebalance  # type: ignore[method-assign]
    pipeline.step()
    assert pipeline._failed() is not None
    assert pipeline._workers.in_flight == 0 and sink.records == []


def test_a_commit_that_fails_as_partitions_leave_is_retried_once_at_once() -> None:
    # Nobody retries it later: the partitions' tracking goes with them.
    from service.core.errors import CommitError

    tp = ("subscription-events", 0)
    _, source = _settled(events=5)
    failures = [CommitError("coordinator moved")]
    real_commit = source.commit

    def flaky_commit(points: dict[tuple[str, int], CommitPoint]) -> None:
        if failures:
            raise failures.pop()
        real_commit(points)

    source.commit = flaky_commit  # type: ignore[method-assign]
    source.committed_offsets.clear()
    source.revoke([tp])
    assert source.committed_offsets == {tp: 5}


def test_exactly_once_a_transaction_that_cannot_commit_as_partitions_leave_stops_the_service() -> (
    None
):
    # Its records would become visible with a later commit while the next owner redoes
    # their events: restarting aborts the transaction instead.
    from service.core.errors import CommitError, TransactionError
    from service.core.offsets import OffsetTracker

    class SlowAcks:
        exactly_once = True
        calls = 0

        def commit(
            self, tracker: OffsetTracker, only: set[tuple[str, int]] | None = None
        ) -> dict[tuple[str, int], CommitPoint]:
            self.calls += 1
            raise CommitError("3 records not acknowledged within 10 s")

    source, sink, clock = FakeSource([]), FakeSink(), FakeClock()
    pipeline = _with_committer(
        source, sink, FakeTransport(), clock, committer=SlowAcks(), batching=BatchLimits()
    )
    pipeline.subscribe()
    source.revoke([("subscription-events", 0)])
    assert isinstance(pipeline._failed(), TransactionError)
    committer = pipeline._committer
    assert isinstance(committer, SlowAcks)
    attempts = committer.calls
    source.revoke([("subscription-events", 1)])  # as closing the consumer does
    assert committer.calls == attempts  # nothing more is committed: the restart aborts it


def test_finished_work_is_committed_while_a_revocation_waits_for_a_slow_batch() -> None:
    # exactly_once: nothing committed during a minute-long settle would let the broker abort
    # the open transaction (transaction.timeout.ms) and stop the service.
    from service.core.offsets import OffsetTracker

    class CountingCommitter:
        exactly_once = False

        def __init__(self) -> None:
            self.calls = 0

        def commit(
            self, tracker: OffsetTracker, only: set[tuple[str, int]] | None = None
        ) -> dict[tuple[str, int], CommitPoint]:
            self.calls += 1
            return {}

    clock = FakeClock()

    def slow(request: dict[str, object]) -> HttpReply:
        for _ in range(10):  # HubSpot takes ten seconds
            clock.advance(1.0)
            time.sleep(0.02)
        return ok_for(request)

    source, sink = FakeSource([raw({"id": "a", "properties": {}}, offset=0)]), FakeSink()
    committer = CountingCommitter()
    pipeline = _with_committer(source, sink, FakeTransport(slow), clock, committer=committer)
    pipeline.subscribe()
    pipeline.step()
    before = committer.calls
    source.revoke([("subscription-events", 0)])
    assert committer.calls - before >= 5  # about one a second, plus the revocation's own


def test_a_caught_up_partition_commits_at_the_consumers_position() -> None:
    tp = ("subscription-events", 0)
    pipeline, source = _settled(events=5)
    source.app_positions = {tp: 6}  # a transaction marker followed the last record
    pipeline.commit()
    assert source.committed_offsets == {tp: 6}


def test_after_a_poll_whose_messages_were_never_accepted_no_position_is_taken_on_trust() -> None:
    # The consumer's position counts messages handed over; if the loop failed before
    # tracking them, committing that position would skip them for good.
    tp = ("subscription-events", 0)
    pipeline, source = _settled(events=3)

    def failing_poll(max_messages: int, timeout_s: float) -> list[RawMessage]:
        source.app_positions = {tp: 10}  # it handed over offsets 3 to 9...
        raise RuntimeError("...and the loop never saw them")

    source.poll = failing_poll  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        pipeline.step()
    source.revoke([tp])  # closing the consumer revokes, and commits
    assert source.committed_offsets == {tp: 3}


def test_an_offset_the_client_hands_over_again_is_worked_on_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # librdkafka can hand over records it already gave (around pause, resume and seek): a
    # second result for one input offset would break exactly_once for read_committed readers.
    first = [raw({"id": f"s-{n}", "properties": {"n": n}}, offset=n) for n in range(5)]
    again = [raw({"id": f"s-{n}", "properties": {"n": n}}, offset=n) for n in (3, 4)]
    later = [raw({"id": "s-5", "properties": {"n": 5}}, offset=5)]
    source, sink, clock = FakeSource([*first, *again, *later]), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock)
    _run_until_settled(pipeline, source, clock)
    offsets = [r["source"]["offset"] for r in _results(sink)]  # type: ignore[index]
    assert sorted(offsets) == [0, 1, 2, 3, 4, 5]
    assert source.committed_offsets == {("subscription-events", 0): 6}
    assert "offset 3: already read in this assignment" in caplog.text
