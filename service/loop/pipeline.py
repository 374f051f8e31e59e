"""The processing loop: consume, validate, batch, upsert, publish outcomes, commit.

Owns the ordering that makes the guarantees hold: an offset is committed only after its
outcome records are acknowledged (through the OffsetTracker), and a stop finishes every event
consumed (buffered, held back or in flight) within the drain deadline before the last
commit. Partitions that come and go are handled by service/loop/rebalance.py, through this
loop's PartitionWork methods. Talks to Kafka and HubSpot only through the ports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from service.core.batching import Batcher, BatchLimits
from service.core.clock import Clock
from service.core.codec import ValidationLimits, decode_event
from service.core.errors import SchemaRegistryUnavailableError, ServiceError
from service.core.health import Health
from service.core.mapping.apply import MappedReader
from service.core.model import Batch, BatchInput, BatchOutcome, RawMessage, Rejection, log_context
from service.core.offsets import (
    NEW,
    REDELIVERED,
    CommitPoint,
    OffsetTracker,
    TopicPartition,
)
from service.core.ports import EventSource, Metrics, RecordSink, Tracing
from service.core.records import Topics
from service.core.tracing import NO_TRACING
from service.loop.checkpoint import Checkpoint
from service.loop.commit import Committer, OffsetCommitter
from service.loop.deferred import DeferredBatches
from service.loop.handover import Handover, hand_over_running
from service.loop.parking import Parking
from service.loop.publisher import OutcomePublisher
from service.loop.rebalance import Rebalance, RebalanceConfig
from service.loop.skipping import SkipUnchanged
from service.loop.workers import Finished, Workers

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.2
_BUSY_POLL_S = 0.01
_GAUGE_INTERVAL_S = 1.0


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
    max_commit_metadata_bytes: int = 4_096
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
        reader: MappedReader | None = None,
        tracing: Tracing = NO_TRACING,
        skip_unchanged: SkipUnchanged | None = None,
    ) -> None:
        self._source, self._sink, self._clock = source, sink, clock
        self._metrics, self._health, self._cfg = metrics, health, config
        self._skip = skip_unchanged  # SKIP_UNCHANGED: screens inputs as batches form
        self._batcher = Batcher(config.batching, skip_unchanged.screen if skip_unchanged else None)
        self._tracker = OffsetTracker()
        self._workers = Workers(config.max_in_flight, execute)
        self._fatal: ServiceError | None = None
        self._hard_stop = hard_stop or threading.Event()
        self._handover = handover or Handover()
        self._intake_complete = True  # False from a poll until its messages are tracked
        self._next_gauges = 0.0
        self._accepted_bytes = 0
        self._assigned: set[TopicPartition] = set()
        self._deferred = DeferredBatches()
        self._paused = False
        self._on_partition_share = on_partition_share
        self._share_changed = False
        # Records read through a decoder and a mapping (INPUT_FORMAT other than json, or an
        # EVENT_MAPPING_FILE); None: the contract's JSON events (service/core/codec.py).
        self._reader = reader
        self._parking = Parking(source, reader.read if reader else _never, clock, health, metrics)
        self._committer = committer or OffsetCommitter(source, config.max_commit_metadata_bytes)
        self._checkpoint = Checkpoint(
            committer=self._committer,
            tracker=self._tracker,
            source=source,
            metrics=metrics,
            clock=clock,
            interval_s=config.commit_interval_s,
        )
        self._rebalance = Rebalance(
            self,
            source,
            clock,
            RebalanceConfig(
                config.rebalance_timeout_s, config.request_timeout_s, self._committer.exactly_once
            ),
            self._hard_stop,
        )
        self._publisher = OutcomePublisher(
            sink=sink,
            tracker=self._tracker,
            metrics=metrics,
            clock=clock,
            topics=config.topics,
            in_offset_order=self._committer.exactly_once,
            tracing=tracing,
        )

    @property
    def hard_stopped(self) -> bool:
        """True once the drain deadline passed; workers abandon their batches."""
        return self._hard_stop.is_set()

    def subscribe(self) -> None:
        """Join the consumer group: partitions come and go through the rebalance listener."""
        self._source.subscribe(self._rebalance)

    def run(self, stop: threading.Event) -> int:
        """Process until `stop` is set or a fatal error; returns the process exit code."""
        self.subscribe()
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
        if self._reader is not None:
            self._retry_parked()
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

    # -- partitions coming and going (PartitionWork, for service/loop/rebalance.py) -----------

    def take_in(
        self, partitions: list[TopicPartition], committed: dict[TopicPartition, CommitPoint]
    ) -> None:
        for tp in partitions:
            self._tracker.assign(tp, committed.get(tp))
        self._assigned.update(partitions)
        if self._skip is not None:
            self._skip.take_in(partitions)
        self._share_changed = True
        if self._paused and partitions:
            self._source.pause(partitions)
        self._health.started()

    def drop_waiting(self, partitions: set[TopicPartition]) -> None:
        self._accepted_bytes -= self._batcher.drop_partitions(partitions)
        for batch in self._deferred.drop(partitions):
            self._batcher.release(batch)
            self._accepted_bytes -= sum(e.raw.size for item in batch.inputs for e in item.events)

    def fail(self, error: ServiceError) -> None:
        self._fatal = error

    # -- intake -------------------------------------------------------------------------

    def _accept(self, messages: list[RawMessage], now: float) -> None:
        """Track, validate and batch what was read (the per-event hot path: kept flat)."""
        if self._reader is not None:
            self._accept_decoded(messages, now, self._reader)
            return
        consumed, publisher, add = self._tracker.consumed, self._publisher, self._batcher.add
        validation = self._cfg.validation
        accepted_bytes = 0
        for raw in messages:
            state = consumed((raw.topic, raw.partition), raw.offset)
            if state != NEW:
                self._skipped(raw, state)
                continue
            publisher.consumed(raw)
            accepted_bytes += raw.size
            decoded = decode_event(raw, validation)
            if isinstance(decoded, Rejection):
                publisher.rejection(decoded)
            else:
                add(decoded, now)
        self._accepted_bytes += accepted_bytes

    def _accept_decoded(self, messages: list[RawMessage], now: float, reader: MappedReader) -> None:
        """The same through a decoder and a mapping. A record the Schema Registry cannot give
        the schema of yet is taken back (not tracked) and its partition parked at it: the
        rest of the partition's messages in hand are dropped, to be fetched again."""
        consumed, publisher, add = self._tracker.consumed, self._publisher, self._batcher.add
        read, parked = reader.read, self._parking.holds
        accepted_bytes = 0
        for raw in messages:
            tp = (raw.topic, raw.partition)
            if parked(tp):
                continue
            state = consumed(tp, raw.offset)
            if state != NEW:
                self._skipped(raw, state)
                continue
            try:
                decoded = read(raw)
            except SchemaRegistryUnavailableError as exc:
                self._park(raw, exc)
                continue
            publisher.consumed(raw)
            accepted_bytes += raw.size
            if isinstance(decoded, Rejection):
                publisher.rejection(decoded)
            else:
                add(decoded, now)
        self._accepted_bytes += accepted_bytes

    def _park(self, raw: RawMessage, error: SchemaRegistryUnavailableError) -> None:
        self._tracker.unconsume((raw.topic, raw.partition), raw.offset)
        try:
            self._parking.park(raw, error)
        except ServiceError as exc:  # the record could not be put back: stop, skip nothing
            log.error("%s", exc)
            self._fatal = exc

    def _retry_parked(self) -> None:
        """Released partitions are read again from their parked record; while backpressure
        holds consumption paused, its resume brings them back."""
        for tp, offset in self._parking.retry().items():
            if not self._paused:
                self._source.resume([tp])
            self._source.seek(tp, offset)  # after resume: its own seek must not move past it

    def _skipped(self, raw: RawMessage, state: int) -> None:
        if state == REDELIVERED:
            self._metrics.events_skipped.labels("redelivered").inc()
            log.warning(
                "skipped %s[%d] offset %d: already read in this assignment (handed over again)",
                raw.topic,
                raw.partition,
                raw.offset,
            )
        else:  # its result is already published (the commit's metadata says so)
            self._metrics.events_skipped.labels("finished_before").inc()

    def _dispatch(self) -> None:
        # With consumption paused because the buffer is full and nothing in flight, no batch
        # can fill up or free held-back ids: waiting for the batch window only stalls.
        force = self._paused and not self._workers.in_flight and not self._health.sending_blocked()
        if self._deferred:
            self._send_deferred(None)
        while self._workers.in_flight < self._cfg.max_in_flight:
            batch = self._batcher.take(self._clock.monotonic(), force=force)
            if batch is None:
                return
            self._submit(batch)

    def _submit(self, batch: Batch) -> None:
        """Send the batch (if it has inputs to send); publish the outcome of those found
        unchanged as it formed (SKIP_UNCHANGED)."""
        if self._skip is not None:
            unchanged = self._skip.taken(batch)
            if unchanged is not None:
                self._publisher.batch(unchanged)
        if batch.inputs:
            self._workers.submit(batch)

    def _send_deferred(self, partitions: set[TopicPartition] | None) -> None:
        """Submit the deferred batches that are due (of `partitions`; None: all)."""
        room = self._cfg.max_in_flight - self._workers.in_flight
        for batch in self._deferred.take_due(self._clock.monotonic(), room, partitions):
            self._workers.submit(batch)

    # -- outcomes -----------------------------------------------------------------------

    def _collect(self, finished: list[Finished]) -> int:
        """Publish the outcomes of finished batches; returns how many finished."""
        for item in finished:
            outcome = item.outcome
            deferred = self._still_ours(outcome.deferred) if outcome is not None else []
            if self._skip is not None:
                self._skip.learn(item.batch, outcome)  # before its ids' next inputs are screened
            self._batcher.release(item.batch, keep=deferred)
            self._handover.finished(item.batch.seq)
            if outcome is None:
                self._on_worker_error(item)
                continue
            self._publisher.batch(outcome)
            if deferred:
                self._defer(deferred, outcome.retry_in_s)
        return len(finished)

    def _still_ours(self, deferred: list[BatchInput]) -> list[BatchInput]:
        """The deferred inputs with events of partitions still assigned; the others (their
        batch outlived a revocation or loss) leave the buffer: their next owner redoes them."""
        kept: list[BatchInput] = []
        for item in deferred:
            if any((e.raw.topic, e.raw.partition) in self._assigned for e in item.events):
                kept.append(item)
            else:
                self._accepted_bytes -= sum(e.raw.size for e in item.events)
        return kept

    def _defer(self, inputs: list[BatchInput], retry_in_s: float) -> None:
        now = self._clock.monotonic()
        self._deferred.add(now + retry_in_s, self._batcher.again(inputs, now))

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
        if self._checkpoint.due():
            self.commit()

    def commit(self, only: set[TopicPartition] | None = None, *, last: bool = False) -> None:
        """Commit finished work (of `only`); `last`: the partitions leave after it."""
        if self._committer.exactly_once and self._failed() is not None:
            return  # the open transaction is to be aborted, not committed (e.g. on close)
        error = self._checkpoint.commit(only, last=last, positions_trusted=self._intake_complete)
        if error is not None:
            self._fatal = error

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
            self._source.resume(sorted(self._assigned - self._parking.partitions))
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
        if self._skip is not None:
            self._skip.report()
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

    def finish(self, partitions: set[TopicPartition] | None, deadline: float) -> bool:
        """Send and deliver every consumed event of `partitions` (None: all) until `deadline`:
        what is buffered goes at once, held-back ids as soon as their batch in flight ends.
        True when all of it is finished (its records acknowledged)."""
        while self._clock.monotonic() < deadline and self._failed() is None:
            self._health.beat()  # finishing is progress: liveness must not fail meanwhile
            wait_s = 0.05 if self._workers.in_flight else 0.0
            self._collect(self._workers.finished(wait_s=wait_s))
            self._dispatch_all(partitions)
            self._sink.poll(0)
            self._maybe_commit()  # a long finish must not outlast a transaction's timeout
            if not self._unsent(partitions):
                remaining = self._sink.flush(max(deadline - self._clock.monotonic(), 0.0))
                return remaining == 0
        return False

    def _dispatch_all(self, partitions: set[TopicPartition] | None) -> None:
        """Send what is waiting (of `partitions`) without waiting for batch windows."""
        if self._deferred:
            self._send_deferred(partitions)
        while self._workers.in_flight < self._cfg.max_in_flight:
            now = self._clock.monotonic()
            batch = self._batcher.take(now, force=True, only=partitions)
            if batch is None:
                return
            self._submit(batch)

    def _unsent(self, partitions: set[TopicPartition] | None) -> bool:
        """Whether events (of `partitions`) are still waiting or in a batch in flight."""
        if partitions is None:
            return bool(self._workers.in_flight or self._batcher.buffered_events or self._deferred)
        in_flight = any(batch.touches(partitions) for batch in self._workers.running())
        return in_flight or self._deferred.touching(partitions) or self._batcher.holds(partitions)

    def _finish(self) -> int:
        deadline = self._clock.monotonic() + self._cfg.drain_timeout_s
        if self._failed() is None:
            log.info(
                "stopping: finishing %d consumed event(s) (up to %.0f s)",
                self._tracker.unfinished(),
                self._cfg.drain_timeout_s,
            )
            self._health.block("shutdown", "draining")
            self._drain(deadline)
        if self._failed() is None or not self._committer.exactly_once:
            self.commit()
        if self._failed() is not None:
            log.error("stopping after a fatal error: %s", self._failed())
            return 1
        return 0

    def _drain(self, deadline: float) -> None:
        """Finish every consumed event; what cannot finish in time is left for the next
        owner (the commit records what did finish past its position)."""
        if self.finish(None, deadline):
            log.info("drained: every consumed event finished")
            return
        self._hard_stop.set()
        log.warning(
            "drain timeout reached; %d unfinished event(s) will be processed again",
            self._tracker.unfinished(),
        )

    def hand_over(self, partitions: set[TopicPartition], wait_s: float) -> None:
        hand_over_running(self._handover, self._workers.running(), partitions, wait_s)

    def let_go(self, partitions: set[TopicPartition]) -> None:
        self._parking.forget(partitions)
        for tp in partitions:
            self._tracker.forget(tp)
            self._publisher.forget(tp)
            self._metrics.forget_partition(tp)  # only its owner reports it from now on
        if self._skip is not None:
            self._skip.let_go(partitions)  # a partition's next owner starts cold
        self._assigned -= partitions
        self._share_changed = True


def _never(raw: RawMessage) -> object:
    """The parking's reader when there is no decoder: nothing is ever parked then."""
    return None
