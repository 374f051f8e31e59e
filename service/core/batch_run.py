"""One batch on its way to final outcomes: what is left to send, and what each input came to.

Pure bookkeeping for the caller (service/loop/caller.py), which decides what replies mean:
- `work`: the requests left to send, each a list of inputs (a batch splits into halves to
  isolate a poison input; inputs come back when a reply left them without an outcome);
- a merged input HubSpot rejected is split back into its events (`split`): they go one event
  per input, one request after the other (two inputs for one id cannot share a request, and
  each must land after the one before), so only the events HubSpot rejects on their own fail;
- an input resent without the properties HubSpot refused (`drop`) carries their names;
- an input the batch sends without its unchanged properties (SKIP_UNCHANGED: the batch's
  `sending`) goes in place of the batch's own, which its outcome is recorded under;
- `settle` records an input's final outcome: for a split input, its event's, after which the
  next event of that id goes; once an id's events are all settled, their outcomes (with
  tracing on, each carries `trace_headers`: the context of the span that decided it);
- `defer`: an input isolated as failing transiently again and again leaves the batch without
  an outcome; the loop sends it again later as a batch of its own (its id stays in flight),
  so that it does not hold back the ids of the rest of the batch.

TransientStreaks counts, per input and across batches, how many attempts failed transiently
and how many of those failed while HubSpot answered a request sent after them (proof that
HubSpot was up and the input itself is the problem).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from service.core.ids import changed_trace_id, dropped_trace_id, merged_trace_id
from service.core.model import BatchInput, BatchOutcome, Event, InputOutcome, TraceHeaders


@dataclass(slots=True)
class _Chain:
    """A merged input split back into its events: those not yet sent, the one on its way,
    and the outcomes so far."""

    pending: deque[Event]
    dropped: tuple[str, ...]
    current: Event | None = None
    outcomes: list[tuple[Event, InputOutcome | None]] = field(default_factory=list)

    def settled(self, result: InputOutcome | None) -> None:
        assert self.current is not None
        self.outcomes.append((self.current, result))
        self.current = None


@dataclass(slots=True)
class Streak:
    """An input's run of transient failures."""

    first_failed_at: float
    last_sent_at: float
    attempts: int = 0
    proven: int = 0  # attempts HubSpot answered another request sent after (or with) them


@dataclass(slots=True)
class TransientStreak:
    """A request's inputs' streak: the weakest of them (min attempts and proofs)."""

    first_failed_at: float
    attempts: int
    proven: int


class BatchRun:
    """The state of one batch's request loop (owned by one worker thread)."""

    def __init__(self, outcome: BatchOutcome) -> None:
        self.outcome = outcome
        self.seq = outcome.batch.seq
        inputs, sending = outcome.batch.inputs, outcome.batch.sending
        whole = [sending.get(item.trace_id, item) for item in inputs if not item.one_by_one]
        self.work: deque[list[BatchInput]] = deque([whole] if whole else [])
        self.failures = 0  # consecutive transient failures, for the backoff
        self.unmatched_rounds: dict[str, int] = {}  # by trace id
        self.sent_at = 0.0  # when the last request was sent
        # The trace context of the span deciding the outcomes settled now (tracing on): the
        # request whose reply is being handled, else the batch's own span.
        self.trace_headers: TraceHeaders = ()
        self._next: list[BatchInput] = []  # derived inputs, sent once this reply is handled
        self._chains: dict[str, _Chain] = {}  # by the batch input's trace id
        for item in inputs:
            if item.one_by_one:
                self.split(item)

    # -- final outcomes -----------------------------------------------------------------

    def settle(self, item: BatchInput, result: InputOutcome) -> None:
        """`item`'s final outcome; a split input's is its event's, and its id's next event goes."""
        if item.dropped:
            result = result._replace(dropped=item.dropped)
        if self.trace_headers:
            result = result._replace(trace_headers=self.trace_headers)
        root = item.root
        chain = self._chains.get(root.trace_id)
        if chain is None:
            self.outcome.by_trace_id[root.trace_id] = result
            return
        chain.settled(result)
        self._continue(root, chain)

    def hand_over(self, items: list[BatchInput]) -> None:
        """`items` belong to partitions another member now owns: no outcome here."""
        for item in items:
            root = item.root
            chain = self._chains.get(root.trace_id)
            if chain is None:
                self.outcome.handed_over.append(root)
                continue
            chain.settled(None)
            self._continue(root, chain)

    # -- inputs derived from the batch's --------------------------------------------------

    def in_split(self, item: BatchInput) -> bool:
        """Whether `item` is one event of a merged input split back into its events."""
        return item.root.trace_id in self._chains

    def split(self, item: BatchInput) -> bool:
        """Send a merged input's events one by one, in order; False when it has one event."""
        if len(item.events) < 2:
            return False
        root = item.root
        chain = _Chain(deque(item.events), item.dropped)
        self._chains[root.trace_id] = chain
        self._continue(root, chain)
        return True

    def drop(self, item: BatchInput, names: tuple[str, ...]) -> tuple[str, ...]:
        """Resend `item` without the properties `names` it sets; returns those (none: it
        sets none of them, and nothing is resent)."""
        present = tuple(name for name in names if name in item.properties)
        if not present:
            return ()
        dropped = (*item.dropped, *present)
        properties = {k: v for k, v in item.properties.items() if k not in present}
        base = _own_trace_id(item)
        self._next.append(
            BatchInput(
                item.id,
                item.id_property,
                dropped_trace_id(base, dropped),
                properties,
                item.events,
                origin=item.root,
                dropped=dropped,
                unchanged=item.unchanged,
            )
        )
        return present

    def schedule_derived(self) -> list[list[BatchInput]]:
        """Queue the inputs derived while handling a reply: one request, or more when two of
        them share a trace id (replies are matched by it). Returns the requests queued."""
        rounds: list[list[BatchInput]] = []
        for item in self._next:
            target = next((r for r in rounds if all(o.trace_id != item.trace_id for o in r)), None)
            if target is None:
                rounds.append([item])
            else:
                target.append(item)
        self._next = []
        self.work.extend(rounds)
        return rounds

    def _continue(self, root: BatchInput, chain: _Chain) -> None:
        if not chain.pending:
            self.outcome.per_event[root.trace_id] = chain.outcomes
            del self._chains[root.trace_id]
            return
        event = chain.current = chain.pending.popleft()
        properties = event.properties
        if chain.dropped:
            properties = {k: v for k, v in properties.items() if k not in chain.dropped}
        dropped = tuple(name for name in chain.dropped if name in event.properties)
        trace_id = dropped_trace_id(event.trace_id, dropped) if dropped else event.trace_id
        self._next.append(
            BatchInput(root.id, root.id_property, trace_id, properties, [event], root, dropped)
        )

    def defer(self, item: BatchInput) -> None:
        """Leave `item` for a later batch of its own. For an event of a split input, what is
        left of the split goes (its events one by one again, the settled ones reported now);
        any other input goes as the batch had it."""
        root = item.root
        chain = self._chains.pop(root.trace_id, None)
        if chain is None:
            self.outcome.deferred.append(root)
            return
        rest = [event for event in (chain.current, *chain.pending) if event is not None]
        self.outcome.per_event[root.trace_id] = chain.outcomes  # the settled ones, reported
        self.outcome.deferred.append(_rest_of(root, rest, chain.dropped))


class TransientStreaks:
    """Transient failure streaks per input trace id, shared by the worker threads."""

    def __init__(self) -> None:
        self._streaks: dict[str, Streak] = {}
        self._lock = threading.Lock()

    def failed(
        self, inputs: list[BatchInput], sent_at: float, answered_sent_at: float
    ) -> TransientStreak:
        """Count a transient failure of the request of `inputs` sent at `sent_at`;
        `answered_sent_at`: when the latest request HubSpot answered (not transiently) was sent.
        An attempt is proven when HubSpot answered a request sent at or after it: the earlier
        attempt's proof is settled now; this one's counts if such an answer is already in."""
        with self._lock:
            streaks = [self._count(item.trace_id, sent_at, answered_sent_at) for item in inputs]
        now_proven = 1 if answered_sent_at >= sent_at else 0
        return TransientStreak(
            min(s.first_failed_at for s in streaks),
            min(s.attempts for s in streaks),
            min(s.proven for s in streaks) + now_proven,
        )

    def forget(self, trace_id: str) -> None:
        """The input has its final outcome."""
        with self._lock:
            self._streaks.pop(trace_id, None)

    def __len__(self) -> int:
        return len(self._streaks)

    def _count(self, trace_id: str, sent_at: float, answered_sent_at: float) -> Streak:
        streak = self._streaks.get(trace_id)
        if streak is None:
            streak = self._streaks[trace_id] = Streak(sent_at, sent_at)
        elif answered_sent_at >= streak.last_sent_at:
            streak.proven += 1
        streak.attempts += 1
        streak.last_sent_at = sent_at
        return streak


def _rest_of(root: BatchInput, events: list[Event], dropped: tuple[str, ...]) -> BatchInput:
    """The events of a split input not yet settled, as an input of their own: one event goes
    as it is (without the properties dropped so far); several go one event at a time again
    (never whole: the trace id only names the input in its batch)."""
    if len(events) == 1:
        [event] = events
        own = tuple(name for name in dropped if name in event.properties)
        kept = {k: v for k, v in event.properties.items() if k not in own}
        trace_id = dropped_trace_id(event.trace_id, own) if own else event.trace_id
        return BatchInput(root.id, root.id_property, trace_id, kept, events, dropped=own)
    merged: dict[str, str] = {}
    for event in events:
        merged.update(event.properties)
    trace_id = merged_trace_id([event.trace_id for event in events])
    return BatchInput(
        root.id, root.id_property, trace_id, merged, events, dropped=dropped, one_by_one=True
    )


def _own_trace_id(item: BatchInput) -> str:
    """The trace id `item` would have without anything dropped: its event's, or its events'
    merged one, or for an input sent without its unchanged properties, the one that says so
    (a derived input's own trace id already says what was dropped)."""
    if not item.dropped:
        return item.trace_id
    events = item.events
    if len(events) == 1:
        base = events[0].trace_id
    else:
        base = merged_trace_id([event.trace_id for event in events])
    return changed_trace_id(base, item.unchanged) if item.unchanged else base
