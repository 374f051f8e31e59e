"""The processing loop: consume, validate, batch, upsert, publish outcomes, commit.

Owns the ordering that makes the guarantees hold: an offset is committed only after its
outcome records are acknowledged (through the OffsetTracker), revoked partitions finish
their in-flight work and commit before they are handed over, lost partitions are never
committed, and shutdown drains in-flight batches within a deadline. Talks to Kafka and
HubSpot only through the ports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from service.batching import Batcher, BatchLimits
from service.clock import Clock
from service.codec import ValidationLimits, decode_event
from service.commit import Committer, OffsetCommitter
from service.errors import CommitError, ServiceError, TransactionError
from service.handover import Handover
from service.health import Health
from service.metrics import Metrics
from service.model import Batch, BatchOutcome, RawMessage, Rejection, log_context
from service.offsets import OffsetTracker, TopicPartition
from service.ports import EventSource, RecordSink
from service.publisher import OutcomePublisher
from service.records import Topics
from service.workers import Finished, Workers

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.2
_BUSY_POLL_S = 0.01
_GAUGE_INTERVAL_S = 1.0
_WIRE_GRACE_S = 5.0  # beyond HubSpot's request timeout, for a reply being read


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    topics: Topics
    validation: ValidationLimits
    batching: BatchLimits
    max_in_flight: int = 1
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 30.0
    rebalance_timeout_s: float = 60.0
    request_timeout_s: float = 30.0  # HubSpot's: how long a request may stay on the wire
    poll_max_messages: int = 500
    max_buffered_events: int = 20_000
    max_buffered_bytes: int = 64 * 1024 * 1024


class Pipeline:
    """One consumer-group member's processing loop (runs on the calling thread)."""

    def __init__(
        self,
        *,
        source: EventSource,
        sink: RecordSink,
        execute: Callable[[Batch], BatchOutcome],
        clock: Clock,
        metrics: Metrics,
        health: Health,
        config: PipelineConfig,
        hard_stop: threading.Event | None = None,
        committer: Committer | None = None,
        on_partition_share: Callable[[float], None] | None = None,
        handover: Handover | None = None,
    ) -> None:
        self._source, self._sink, self._clock = source, sink, clock
        self._metrics, self._health, self._cfg = metrics, health, config
        self._batcher = Batcher(config.batching)
        self._tracker = OffsetTracker()
        self._workers = Workers(config.max_in_flight, execute)
        self._fatal: ServiceError | None = None
        self._hard_stop = hard_stop or threading.Event()
        self._handover = handover or Handover()
        self._intake_complete = True  # False from a poll until its messages are tracked
        self._next_commit = 0.0
        self._next_gauges = 0.0
        self._accepted_bytes = 0
        self._assigned: set[TopicPartition] = set()
        self._paused = False
        self._on_partition_share = on_partition_share
        self._share_changed = False
        self._committer = committer or OffsetCommitter(source)
        self._publisher = OutcomePublisher(
            sink=sink,
            tracker=self._tracker,
            metrics=metrics,
            clock=clock,
            topics=config.topics,
            in_offset_order=self._committer.exactly_once,
        )

    @property
    def hard_stopped(self) -> bool:
        """True once the drain deadline passed; workers abandon their batches."""
        return self._hard_stop.is_set()

    def run(self, stop: threading.Event) -> int:
        """Process until `stop` is set or a fatal error; returns the process exit code."""
        self._source.subscribe(self)
        try:
            while not stop.is_set() and self._failed() is None:
                self.step()
            return self._finish()
        finally:
            self._workers.stop()
            self._source.close()
            self._sink.close()

    def step(self) -> None:
        """One turn of the loop: read, batch, dispatch, collect, deliver, commit."""
        self._health.beat()
        messages = self._read()
        if self._failed() is not None:  # e.g. a commit failed in a rebalance callback of the
            return  # read: in exactly_once mode no transaction is open to produce into
        self._dispatch()
        if self._collect(self._workers.finished(wait_s=self._worker_wait(messages))):
            self._dispatch()  # refill the freed workers now, not a poll later
        self._sink.poll(self._ack_wait())
        self._apply_backpressure()
        self._maybe_commit()
        self._maybe_update_gauges()

    # -- where a turn waits: each wait is 10 ms at most (an idle poll up to 200 ms) and
    # ends on its event: a message, a finished batch, an acknowledgement -------------------

    def _read(self) -> list[RawMessage]:
        """Poll the consumer. It may block only with nothing in flight and no pause: paused,
        Kafka has nothing to give, and with batches in flight the loop waits on those."""
        busy = self._paused or self._workers.in_flight > 0
        timeout = 0.0 if busy else self._poll_timeout()
        # The consumer's position counts everything it handed over: it may stand in for a
        # commit position only once all of that is tracked (not inside a rebalance callback
        # of the poll, nor after a poll whose messages were never accepted).
        self._intake_complete = False
        messages = self._source.poll(self._cfg.poll_max_messages, timeout)
        if messages:
            self._metrics.events_consumed.inc(len(messages))
            self._accept(messages, self._clock.monotonic())
        self._intake_complete = True
        return messages

    def _worker_wait(self, messages: list[RawMessage]) -> float:
        """Nothing read and batches in flight: wait up to 10 ms for the first to finish (one
        finishing while the loop slept in an empty poll would idle its worker until then)."""
        return _BUSY_POLL_S if not messages and self._workers.in_flight else 0.0

    def _ack_wait(self) -> float:
        """Paused with nothing in flight, the loop only waits (for acknowledgements, or for
        a batch window while sending is blocked): in the producer, which wakes on each ack."""
        return _BUSY_POLL_S if self._paused and not self._workers.in_flight else 0.0

    # -- rebalance listener -------------------------------------------------------------

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", partitions)
        for tp in partitions:
            self._tracker.assign(tp)
        self._assigned.update(partitions)
        self._share_changed = True
        if self._paused and partitions:
            self._source.pause(partitions)
        self._health.started()

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked: %s; finishing their work", partitions)
        revoked = set(partitions)
        self._accepted_bytes -= self._batcher.drop_partitions(revoked)
        # Past the drain deadline (closing) nothing more is waited for; otherwise their
        # batches get up to the rebalance timeout to finish.
        deadline = self._clock.monotonic() + self._cfg.rebalance_timeout_s
        if self._hard_stop.is_set() or not self._settle(deadline):
            self._hand_over(revoked, self._cfg.request_timeout_s + _WIRE_GRACE_S)
        self._commit(only=revoked, last=True)
        self._forget(revoked)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        log.warning("partitions lost: %s; their work will not be committed", partitions)
        if self._committer.exactly_once:
            self._fatal = TransactionError("partitions lost in exactly_once mode; restarting")
        lost = set(partitions)
        self._accepted_bytes -= self._batcher.drop_partitions(lost)
        self._hand_over(lost, 0.0)  # another member may already have them: no waiting
        self._forget(lost)

    # -- intake -------------------------------------------------------------------------

    def _accept(self, messages: list[RawMessage], now: float) -> None:
        """Track, validate and batch what was read (the per-event hot path: kept flat)."""
        consumed, publisher, add = self._tracker.consumed, self._publisher, self._batcher.add
        validation = self._cfg.validation
        accepted_bytes = 0
        for raw in messages:
            if not consumed((raw.topic, raw.partition), raw.offset):
                self._redelivered(raw)
                continue
            publisher.consumed(raw)
            accepted_bytes += raw.size
            decoded = decode_event(raw, validation)
            if isinstance(decoded, Rejection):
                publisher.rejection(decoded)
            else:
                add(decoded, now)
        self._accepted_bytes += accepted_bytes

    def _redelivered(self, raw: RawMessage) -> None:
        log.warning(
            "skipped %s[%d] offset %d: already read in this assignment (handed over again)",
            raw.topic,
            raw.partition,
            raw.offset,
        )

    def _dispatch(self) -> None:
        # With consumption paused because the buffer is full and nothing in flight, no batch
        # can fill up or free held-back ids: waiting for the batch window only stalls.
        force = self._paused and not self._workers.in_flight and not self._health.sending_blocked()
        while self._workers.in_flight < self._cfg.max_in_flight:
            batch = self._batcher.take(self._clock.monotonic(), force=force)
            if batch is None:
                return
            self._workers.submit(batch)

    # -- outcomes -----------------------------------------------------------------------

    def _collect(self, finished: list[Finished]) -> int:
        """Publish the outcomes of finished batches; returns how many finished."""
        for item in finished:
            self._batcher.release(item.batch)
            self._handover.finished(item.batch.seq)
            if item.outcome is None:
                self._on_worker_error(item)
                continue
            self._publisher.batch(item.outcome)
        return len(finished)

    def _on_worker_error(self, item: Finished) -> None:
        if self._hard_stop.is_set():
            return
        log.error(
            "batch failed unexpectedly",
            exc_info=item.error,
            extra=log_context(item.batch.seq, item.batch.inputs),
        )
        self._fatal = ServiceError(f"batch {item.batch.seq} failed unexpectedly: {item.error!r}")

    # -- commits, backpressure, gauges ---------------------------------------------------

    def _maybe_commit(self) -> None:
        now = self._clock.monotonic()
        if now >= self._next_commit:
            self._next_commit = now + self._cfg.commit_interval_s
            self._commit()

    def _commit(self, only: set[TopicPartition] | None = None, *, last: bool = False) -> None:
        """Commit finished work. `last`: the partitions leave after this commit, so a failure
        is retried once at once (nobody would retry it later)."""
        if self._committer.exactly_once and self._failed() is not None:
            return  # the open transaction is to be aborted, not committed (e.g. on close)
        self._advance_caught_up()
        for attempt in range(2 if last else 1):
            try:
                positions = self._committer.commit(self._tracker, only)
            except CommitError as exc:
                self._metrics.commits.labels("failed").inc()
                log.warning("commit failed (%s); %s", exc, _after_failed_commit(last, attempt))
                continue
            except ServiceError as exc:
                self._metrics.commits.labels("failed").inc()
                log.error("commit failed: %s", exc)
                self._fatal = exc
                return
            if positions:
                self._report_commit(positions)
            return
        if last and self._committer.exactly_once:  # the open transaction holds their records
            self._fatal = TransactionError(
                "could not commit before partitions left; restarting aborts the transaction "
                "(their next owner redoes the events)"
            )

    def _advance_caught_up(self) -> None:
        """Partitions with nothing unfinished commit at the consumer's position (past
        transaction markers), once everything it handed over is tracked."""
        caught_up = self._tracker.caught_up() if self._intake_complete else []
        if caught_up:
            self._tracker.advance(self._source.positions(caught_up))

    def _report_commit(self, positions: dict[TopicPartition, int]) -> None:
        self._metrics.commits.labels("ok").inc()
        wall = self._clock.wall()
        for (topic, partition), position in positions.items():
            self._metrics.committed_offset.labels(topic, str(partition)).set(position)
            self._metrics.last_commit_timestamp.labels(topic, str(partition)).set(wall)

    def _apply_backpressure(self) -> None:
        unfinished = self._tracker.unfinished()
        # Sending blocked (auth, daily limit) pauses consumption while a batch waits to probe
        # HubSpot; with none in flight or waiting, new events must come in to make one.
        has_work = self._workers.in_flight > 0 or self._batcher.buffered_events > 0
        blocked = self._health.sending_blocked() and has_work
        over = blocked or (
            unfinished >= self._cfg.max_buffered_events
            or self._buffered_bytes() >= self._cfg.max_buffered_bytes
        )
        under = not blocked and (
            unfinished <= self._cfg.max_buffered_events // 2
            and self._buffered_bytes() <= self._cfg.max_buffered_bytes // 2
        )
        if over and not self._paused:
            self._source.pause(sorted(self._assigned))
            self._paused = True
            why = "sending is blocked" if blocked else f"buffer full ({unfinished} events)"
            log.info("%s; pausing consumption (staying in the group)", why)
        elif under and self._paused:
            self._source.resume(sorted(self._assigned))
            self._paused = False
            log.info("buffer has room again; resuming consumption")

    def _maybe_update_gauges(self) -> None:
        now = self._clock.monotonic()
        if now < self._next_gauges:
            return
        self._next_gauges = now + _GAUGE_INTERVAL_S
        self._report_partition_share()
        self._metrics.ready.set(self._health.readiness())
        self._metrics.in_flight_batches.set(self._workers.in_flight)
        self._metrics.buffered_events.set(self._tracker.unfinished())
        self._metrics.buffered_bytes.set(max(self._buffered_bytes(), 0))
        self._metrics.paused_partitions.set(len(self._assigned) if self._paused else 0)
        self._report_lag()

    def _report_lag(self) -> None:
        committed = self._tracker.committed_positions()
        for tp, lag in self._source.lag(committed).items():
            if tp in self._assigned:
                self._metrics.consumer_lag.labels(tp[0], str(tp[1])).set(lag)

    # -- settling and shutdown -------------------------------------------------------------

    def _report_partition_share(self) -> None:
        """Tell the rate limiter which part of the group's partitions this member owns."""
        if not self._share_changed or self._on_partition_share is None:
            return
        total = self._source.partition_count()
        if total > 0:
            self._share_changed = False
            self._on_partition_share(len(self._assigned) / total)

    def _buffered_bytes(self) -> int:
        return self._accepted_bytes - self._publisher.emitted_bytes

    def _failed(self) -> ServiceError | None:
        return self._fatal or self._publisher.fatal

    def _poll_timeout(self) -> float:
        if self._workers.in_flight or self._tracker.unfinished():
            return _BUSY_POLL_S
        deadline = self._batcher.next_deadline()
        if deadline is None:
            return _IDLE_POLL_S
        return min(max(deadline - self._clock.monotonic(), 0.0), _IDLE_POLL_S)

    def _settle(self, deadline: float) -> bool:
        """Finish in-flight batches and deliver their records, until `deadline`."""
        while self._clock.monotonic() < deadline and self._failed() is None:
            self._health.beat()  # settling is progress: liveness must not fail meanwhile
            self._collect(self._workers.finished(wait_s=0.05))
            self._sink.poll(0)
            self._maybe_commit()  # a long settle must not outlast a transaction's timeout
            if not self._workers.in_flight:
                remaining = self._sink.flush(max(deadline - self._clock.monotonic(), 0.0))
                return remaining == 0
        return False

    def _finish(self) -> int:
        deadline = self._clock.monotonic() + self._cfg.drain_timeout_s
        if self._failed() is None:
            log.info(
                "stopping: draining %d batch(es) in flight (up to %.0f s)",
                self._workers.in_flight,
                self._cfg.drain_timeout_s,
            )
            self._health.block("shutdown", "draining")
            self._drain(deadline)
        if self._failed() is None or not self._committer.exactly_once:
            self._commit()
        if self._failed() is not None:
            log.error("stopping after a fatal error: %s", self._failed())
            return 1
        return 0

    def _drain(self, deadline: float) -> None:
        """Finish the batches in flight; events not yet sent are left for the next owner."""
        if self._settle(deadline):
            log.info("drained: every in-flight batch finished")
            return
        self._hard_stop.set()
        log.warning("drain timeout reached; unfinished events will be processed again")

    def _hand_over(self, partitions: set[TopicPartition], wait_s: float) -> None:
        """Batches still running with events of `partitions` send none of them any more,
        and a request of theirs on the wire gets up to `wait_s` to end: the partitions' next
        owner redoes those events, and an older write must not land after its newer ones."""
        seqs = [batch.seq for batch in self._workers.running() if _touches(batch, partitions)]
        if not seqs:
            return
        log.warning(
            "partitions %s handed over with batches %s unfinished: those send none of their "
            "events any more; the partitions' next owner redoes them",
            sorted(partitions),
            seqs,
        )
        if not self._handover.hand_over(partitions, seqs, wait_s) and wait_s > 0:
            log.error(
                "a request of batches %s was still on the wire after %.0f s; it may land after "
                "the next owner's writes for the same ids",
                seqs,
                wait_s,
            )

    def _forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._tracker.forget(tp)
            self._publisher.forget(tp)
            self._metrics.forget_partition(tp)  # only its owner reports it from now on
        self._assigned -= partitions
        self._share_changed = True


def _after_failed_commit(last: bool, attempt: int) -> str:
    if not last:
        return "will retry"
    if attempt == 0:
        return "retrying once before the partitions leave"
    return "the partitions' next owner redoes their events since the last commit (duplicates)"


def _touches(batch: Batch, partitions: set[TopicPartition]) -> bool:
    return any(
        (event.raw.topic, event.raw.partition) in partitions
        for item in batch.inputs
        for event in item.events
    )
