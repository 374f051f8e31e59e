"""The loop over in-memory Kafka and HubSpot, observed only from the outside: what the source
was asked (commits, pauses), what the sink received, what HubSpot was sent, the metrics and
the exit code of `run`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import pytest

from service.adapters.prometheus import Metrics
from service.core.batching import BatchLimits
from service.core.clock import FakeClock
from service.core.errors import CommitError, TransactionError
from service.core.health import Health
from service.core.model import RawMessage
from service.core.offsets import CommitPoint, OffsetTracker, TopicPartition
from service.core.records import Topics
from service.core.responses import HttpReply
from service.loop.commit import Committer
from service.loop.pipeline import Pipeline, PipelineConfig
from tests.unit.factories import LIMITS, raw
from tests.unit.fake_kafka import FakeSink, FakeSource
from tests.unit.fakes import FakeTransport, counted, make_caller, ok_for, reply
from tests.unit.observe import (
    committed_to_the_end,
    gauge,
    refreshed_gauge,
    results,
    samples,
    step_until,
)

TOPICS = Topics(output="out", dlq="dlq")
HALF_SECOND_WINDOW = BatchLimits(max_size=100, max_wait_s=0.5)
NO_WINDOW = BatchLimits(max_wait_s=0)
TP = ("subscription-events", 0)


class _Loop(NamedTuple):
    pipeline: Pipeline
    metrics: Metrics
    health: Health


def _pipeline(
    source: FakeSource,
    sink: FakeSink,
    transport: FakeTransport,
    clock: FakeClock,
    batching: BatchLimits = HALF_SECOND_WINDOW,
    *,
    committer: Committer | None = None,
    **buffer: int,
) -> _Loop:
    """A loop over the fakes; `buffer`: max_buffered_events, poll_max_messages, ..."""
    caller, metrics, health = make_caller(transport, clock)
    pipeline = Pipeline(
        source=source,
        sink=sink,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        committer=committer,
        config=PipelineConfig(topics=TOPICS, validation=LIMITS, batching=batching, **buffer),
    )
    return _Loop(pipeline, metrics, health)


def _settle(pipeline: Pipeline, source: FakeSource, clock: FakeClock, tick_s: float = 0.1) -> None:
    """Subscribe and turn the loop until it has read, finished and committed everything."""
    pipeline.subscribe()
    step_until(pipeline, lambda: committed_to_the_end(source), clock, tick_s)


def _stop_after(
    turns: int, source: FakeSource, clock: FakeClock, first: Callable[[], None] | None = None
) -> threading.Event:
    """A stop that is set in the loop's `turns`-th poll (the clock moves 0.1 s a turn);
    `first` runs in its first poll. Also a bound for a loop that should stop on its own."""
    stop, polls = threading.Event(), [0]

    def turn() -> None:
        polls[0] += 1
        if polls[0] == 1 and first is not None:
            first()
        clock.advance(0.1)
        if polls[0] >= turns:
            stop.set()

    source.on_poll = turn
    return stop


def test_every_event_gets_one_result_and_the_whole_topic_is_committed() -> None:
    messages = [raw({"id": f"s-{n % 30}", "properties": {"n": n}}, offset=n) for n in range(250)]
    messages.append(raw(b"not json", offset=250))
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    pipeline = _pipeline(source, sink, transport, clock).pipeline
    _settle(pipeline, source, clock)
    published = results(sink)
    assert sorted(r["source"]["offset"] for r in published) == list(range(251))  # type: ignore[index]
    assert source.committed_offsets == {TP: 251}
    assert sum(1 for r in published if r["status"] == "invalid") == 1
    assert len([r for r in sink.records if r.topic == "dlq"]) == 1
    for request in transport.requests:
        ids = [item["id"] for item in request["inputs"]]  # type: ignore[attr-defined]
        assert len(ids) == len(set(ids))


def test_nothing_is_committed_past_an_undelivered_result() -> None:
    messages = [raw({"id": "a", "properties": {}}, offset=0)]
    source, sink, clock = FakeSource(messages), FakeSink(fail_with="broker down"), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock).pipeline
    assert pipeline.run(_stop_after(20, source, clock)) == 1
    assert source.committed_offsets.get(TP, 0) == 0


def test_backpressure_pauses_consumption_when_the_buffer_is_full() -> None:
    messages: list[RawMessage] = [
        raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(300)
    ]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    gate = threading.Event()

    def blocked(request: dict[str, object]) -> HttpReply:
        gate.wait(5)
        return ok_for(request)

    transport = FakeTransport(blocked)
    pipeline, metrics, _ = _pipeline(
        source, sink, transport, clock, BatchLimits(), max_buffered_events=100, poll_max_messages=50
    )
    pipeline.subscribe()
    for _ in range(5):
        pipeline.step()
    assert source.paused
    assert counted(metrics, "events_consumed") <= 150
    gate.set()
    step_until(pipeline, lambda: len(results(sink)) == 300, clock, 0.1)
    assert len(results(sink)) == 300
    assert not source.paused


def test_a_partial_batch_leaves_at_once_when_the_buffer_is_full_and_nothing_is_in_flight() -> None:
    # 40 distinct ids fill a 40-event buffer: consumption pauses with fewer inputs than a full
    # batch. Nothing in flight can free held-back ids and no new event can arrive, so the
    # batch goes without waiting for its window (the clock never moves here).
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(40)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    window = BatchLimits(max_size=100, max_wait_s=60)
    pipeline = _pipeline(source, sink, transport, clock, window, max_buffered_events=40).pipeline
    pipeline.subscribe()
    deadline = time.monotonic() + 10
    while len(results(sink)) < 40 and time.monotonic() < deadline:
        pipeline.step()
        time.sleep(0.001)
    assert len(results(sink)) == 40
    assert [len(r["inputs"]) for r in transport.requests] == [40]  # type: ignore[arg-type]


def test_below_a_full_buffer_a_partial_batch_waits_for_its_window() -> None:
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(40)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    pipeline = _pipeline(source, sink, transport, clock).pipeline  # window 0.5 s, buffer 20,000
    pipeline.subscribe()
    for _ in range(20):
        pipeline.step()
        time.sleep(0.001)
    assert transport.requests == []
    clock.advance(0.6)
    deadline = time.monotonic() + 10
    while len(results(sink)) < 40 and time.monotonic() < deadline:
        pipeline.step()
        time.sleep(0.001)
    assert [len(r["inputs"]) for r in transport.requests] == [40]  # type: ignore[arg-type]


class _BlockingSource(FakeSource):
    """Like a real consumer: an empty poll blocks for its whole timeout (recorded, with the
    batches in flight as the loop's gauge said at the end of the turn before)."""

    def __init__(self, messages: list[RawMessage]) -> None:
        super().__init__(messages)
        self.blocking_polls: list[tuple[float, float]] = []  # (timeout, batches in flight)
        self.polls_while_in_flight = 0
        self.metrics: Metrics | None = None

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        chunk = super().poll(max_messages, timeout_s)
        assert self.metrics is not None
        in_flight = gauge(self.metrics, "in_flight_batches")
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
    loop = _pipeline(source, sink, transport, clock, BatchLimits(max_size=100, max_wait_s=0))
    source.metrics = loop.metrics
    # A second of the clock a turn: the gauges are fresh at every poll.
    _settle(loop.pipeline, source, clock, tick_s=1.0)
    assert len(results(sink)) == 250
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
    pipeline, metrics, _ = _pipeline(
        source, sink, FakeTransport(), clock, BatchLimits(max_wait_s=0), max_buffered_events=20
    )
    pipeline.subscribe()
    deadline = time.monotonic() + 10
    while len(results(sink)) < 30 and time.monotonic() < deadline:
        pipeline.step()
    assert refreshed_gauge(pipeline, clock, metrics, "in_flight_batches") == 0
    assert source.paused and gauge(metrics, "paused_partitions") == 1
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
    pipeline = _pipeline(source, sink, transport, clock, BatchLimits(max_wait_s=0)).pipeline
    pipeline.subscribe()
    step_until(pipeline, lambda: len(results(sink)) == 1)
    source.messages.append(raw({"id": "b", "properties": {}}, offset=1))
    step_until(pipeline, lambda: len(results(sink)) == 2)
    assert [r["status"] for r in results(sink)] == ["failed", "upserted"]
    assert not source.paused


def _settled(events: int) -> tuple[Pipeline, FakeSource]:
    """A loop that has read `events` events of one partition and finished them all (their
    results acknowledged: the sink acknowledges in the turn that publishes), not yet
    committed (the clock stands still after the first turn's commit)."""
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(events)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock, NO_WINDOW).pipeline
    pipeline.subscribe()
    step_until(pipeline, lambda: len(results(sink)) == events)
    assert source.committed_offsets.get(TP, 0) == 0  # none of them
    return pipeline, source


def test_events_dropped_with_a_revoked_partition_leave_the_buffer() -> None:
    # Events still waiting in the batcher when their partition is revoked (the revocation
    # gave up finishing them: no time for it here) are read again by its next owner. They
    # must leave the byte count too: otherwise every rebalance leaks bytes, and once the leak
    # passes half the cap consumption never resumes after a pause.
    big = "x" * 2_000
    messages = [raw({"id": f"s-{n}", "properties": {"p": big}}, offset=n) for n in range(600)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    window = BatchLimits(max_size=100, max_wait_s=5.0)
    pipeline, metrics, _ = _pipeline(
        source, sink, FakeTransport(), clock, window, max_in_flight=1,
        max_buffered_bytes=1_000_000, poll_max_messages=600, rebalance_timeout_s=0,
    )  # fmt: skip
    pipeline.subscribe()
    pipeline.step()  # reads all 600 (and pauses: 1.2 MB); one batch of 100 goes, 500 wait
    assert source.paused
    source.revoke([TP])
    source.assign([TP])  # back, from the group's commit
    step_until(pipeline, lambda: committed_to_the_end(source), clock, 1.0)
    assert refreshed_gauge(pipeline, clock, metrics, "buffered_bytes") == 0
    assert gauge(metrics, "buffered_events") == 0 and not source.paused


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

    pipeline, metrics, health = _pipeline(
        source, sink, FakeTransport(slow), clock, BatchLimits(max_wait_s=0)
    )
    pipeline.subscribe()
    pipeline.step()
    assert gauge(metrics, "in_flight_batches") == 1
    clock.advance(45)
    gate.set()
    source.revoke([TP])
    assert len(results(sink)) == 1
    assert health.live()[0] is True


def test_events_of_different_ids_with_one_trace_id_each_get_their_own_outcome() -> None:
    # The contract lets upstream set objectWriteTraceId; nothing makes it unique.
    messages = [
        raw({"id": event_id, "objectWriteTraceId": "T", "properties": {"x": "1"}}, offset=n)
        for n, event_id in enumerate(("a", "b"))
    ]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    transport = FakeTransport()
    pipeline = _pipeline(source, sink, transport, clock).pipeline
    _settle(pipeline, source, clock)
    by_id = {r["id"]: r for r in results(sink)}
    assert {k: (r["status"], r["hubspotId"]) for k, r in by_id.items()} == {
        "a": ("upserted", "h-a"),
        "b": ("upserted", "h-b"),
    }
    assert [len(request["inputs"]) for request in transport.requests] == [1, 1]  # type: ignore[arg-type]


def test_lag_counts_from_the_services_own_commits_and_leaves_with_the_partition() -> None:
    # Lag is reported by the partition's owner only, from what the service committed; a
    # revoked partition's series go (left behind, a frozen lag adds to the group's total).
    labels = ("subscription-events", "0")
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n) for n in range(40)]
    source, sink, clock = FakeSource(messages), FakeSink(), FakeClock()
    source.ends = {TP: 100}
    pipeline, metrics, _ = _pipeline(source, sink, FakeTransport(), clock)
    _settle(pipeline, source, clock)
    clock.advance(60)
    pipeline.step()
    assert samples(metrics, "consumer_lag") == {labels: 60}
    assert samples(metrics, "committed_offset") == {labels: 40}
    source.committed_offsets.clear()  # the lag must come from the service's own commits
    clock.advance(60)
    pipeline.step()
    assert samples(metrics, "consumer_lag") == {labels: 60}
    source.revoke([TP])
    for name in ("consumer_lag", "committed_offset", "last_commit_timestamp_seconds"):
        assert samples(metrics, name) == {}, name
    clock.advance(60)
    pipeline.step()  # the source still reports the partition: not this member's to export
    assert samples(metrics, "consumer_lag") == {}


class _FailingTransactions:
    """exactly_once commits that fail, counted."""

    exactly_once = True

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def commit(
        self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommitPoint]:
        self.calls += 1
        raise self.error


def test_after_a_commit_fails_in_a_rebalance_callback_the_turn_goes_no_further() -> None:
    # exactly_once: a failed transaction commit in on_revoked leaves no transaction open;
    # publishing in the same turn would be refused (an uncaught client error, not a clear
    # stop), and dispatching would send HubSpot batches nobody will report.
    messages = [raw({"id": f"s-{n}", "properties": {}}, offset=n, partition=1) for n in range(5)]
    source, sink, clock = FakeSource(messages, partitions=2), FakeSink(), FakeClock()
    transport = FakeTransport()
    committer = _FailingTransactions(TransactionError("the transaction was aborted"))
    loop = _pipeline(source, sink, transport, clock, NO_WINDOW, committer=committer)
    # A rebalance in the first poll takes P0; the same poll hands over P1's events.
    stop = _stop_after(20, source, clock, first=lambda: source.revoke([TP]))
    assert loop.pipeline.run(stop) == 1
    assert gauge(loop.metrics, "in_flight_batches") == 0  # as a turn that went on would say
    assert sink.records == [] and transport.requests == []


def test_a_commit_that_fails_as_partitions_leave_is_retried_once_at_once() -> None:
    # Nobody retries it later: the partitions' tracking goes with them.
    _, source = _settled(events=5)
    source.commit_failures.append(CommitError("coordinator moved"))
    source.committed_offsets.clear()
    source.revoke([TP])
    assert source.commit_failures == []
    assert source.committed_offsets == {TP: 5}


def test_exactly_once_a_transaction_that_cannot_commit_as_partitions_leave_stops_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its records would become visible with a later commit while the next owner redoes
    # their events: restarting aborts the transaction instead.
    source, sink, clock = FakeSource([], partitions=2), FakeSink(), FakeClock()
    committer = _FailingTransactions(CommitError("3 records not acknowledged within 10 s"))
    pipeline = _pipeline(
        source, sink, FakeTransport(), clock, BatchLimits(), committer=committer
    ).pipeline
    attempts: list[int] = []

    def rebalance() -> None:
        source.revoke([TP])
        attempts.append(committer.calls)

    assert pipeline.run(_stop_after(20, source, clock, first=rebalance)) == 1
    assert "could not commit before partitions left; restarting aborts" in caplog.text
    assert source.assignment == set()  # closing revoked P1 too...
    assert committer.calls == attempts[0]  # ...and committed nothing: the restart aborts it


def test_finished_work_is_committed_while_a_revocation_waits_for_a_slow_batch() -> None:
    # exactly_once: nothing committed during a minute-long settle would let the broker abort
    # the open transaction (transaction.timeout.ms) and stop the service.
    class CountingCommitter:
        exactly_once = False

        def __init__(self) -> None:
            self.calls = 0

        def commit(
            self, tracker: OffsetTracker, only: set[TopicPartition] | None = None
        ) -> dict[TopicPartition, CommitPoint]:
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
    pipeline = _pipeline(
        source, sink, FakeTransport(slow), clock, NO_WINDOW, committer=committer
    ).pipeline
    pipeline.subscribe()
    pipeline.step()
    before = committer.calls
    source.revoke([TP])
    assert committer.calls - before >= 5  # about one a second, plus the revocation's own


def test_a_caught_up_partition_commits_at_the_consumers_position() -> None:
    pipeline, source = _settled(events=5)
    source.app_positions = {TP: 6}  # a transaction marker followed the last record
    pipeline.commit()
    assert source.committed_offsets == {TP: 6}


def test_after_a_poll_whose_messages_were_never_accepted_no_position_is_taken_on_trust() -> None:
    # The consumer's position counts messages handed over; if the loop failed before
    # tracking them, committing that position would skip them for good.
    pipeline, source = _settled(events=3)

    def failing_poll() -> None:
        source.app_positions = {TP: 10}  # it handed over offsets 3 to 9...
        raise RuntimeError("...and the loop never saw them")

    source.on_poll = failing_poll
    with pytest.raises(RuntimeError):
        pipeline.step()
    source.revoke([TP])  # closing the consumer revokes, and commits
    assert source.committed_offsets == {TP: 3}


class _HandsOverAgain(FakeSource):
    """A client that, in its first poll, hands over `again` a second time after the messages
    they repeat (librdkafka can, around pause, resume and seek)."""

    def __init__(self, messages: list[RawMessage], again: list[RawMessage]) -> None:
        super().__init__(messages)
        self._again = again

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        chunk = super().poll(max_messages, timeout_s)
        if not self._again:
            return chunk
        cut = max(i for i, m in enumerate(chunk) if m.offset == self._again[-1].offset) + 1
        chunk[cut:cut], self._again = self._again, []
        return chunk


def test_an_offset_the_client_hands_over_again_is_worked_on_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # librdkafka can hand over records it already gave (around pause, resume and seek): a
    # second result for one input offset would break exactly_once for read_committed readers.
    messages = [raw({"id": f"s-{n}", "properties": {"n": n}}, offset=n) for n in range(6)]
    source, sink, clock = _HandsOverAgain(messages, messages[3:5]), FakeSink(), FakeClock()
    pipeline = _pipeline(source, sink, FakeTransport(), clock).pipeline
    _settle(pipeline, source, clock)
    offsets = [r["source"]["offset"] for r in results(sink)]  # type: ignore[index]
    assert sorted(offsets) == [0, 1, 2, 3, 4, 5]
    assert source.committed_offsets == {TP: 6}
    assert "offset 3: already read in this assignment" in caplog.text
