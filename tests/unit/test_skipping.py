"""SkipUnchanged (service/loop/skipping.py) on its own: what the batcher gets from `screen`,
and what each kind of outcome leaves in the cache (`learn`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from service.adapters.prometheus import Metrics
from service.core.batch_run import BatchRun
from service.core.batching import Batcher, BatchLimits
from service.core.clock import FakeClock
from service.core.codec import decode_event
from service.core.ids import changed_trace_id, dropped_trace_id
from service.core.last_written import LastWritten
from service.core.model import (
    Batch,
    BatchInput,
    BatchOutcome,
    ErrorInfo,
    Event,
    InputOutcome,
    Status,
    UpsertedRecord,
)
from service.loop.skipping import SkipUnchanged
from tests.unit.factories import LIMITS, event, raw

TP = ("subscription-events", 0)
KEY = ("external_subscription_id", "a")
NOW = 1_000.0


class Setup:
    def __init__(self) -> None:
        self.cache = LastWritten(100, 3_600, FakeClock())
        self.skip = SkipUnchanged(self.cache, Metrics(CollectorRegistry()))
        self.skip.take_in([TP, ("subscription-events", 1)])
        self.batcher = Batcher(BatchLimits(max_wait_s=0), self.skip.screen)

    def take(self, *events: Event) -> Batch:
        for item in events:
            self.batcher.add(item, NOW)
        batch = self.batcher.take(NOW, force=True)
        assert batch is not None
        self.skip.taken(batch)
        return batch

    def write(self, *events: Event, hubspot_id: str = "h-1") -> Batch:
        """Take the events' batch, and learn that HubSpot upserted all of it."""
        batch = self.take(*events)
        self.skip.learn(batch, _upserted(batch, hubspot_id))
        self.batcher.release(batch)
        return batch

    def known(self, **properties: str) -> tuple[str, ...] | None:
        found = self.cache.compare(KEY, TP, properties)
        return None if found is None else found.same


def _upserted(
    batch: Batch, hubspot_id: str = "h-1", but: dict[str, InputOutcome] | None = None
) -> BatchOutcome:
    """Every input of `batch` upserted, `but` those (by trace id)."""
    done = InputOutcome(Status.UPSERTED, UpsertedRecord(hubspot_id, False, None, None))
    but = but or {}
    return BatchOutcome(batch, {i.trace_id: but.get(i.trace_id, done) for i in batch.inputs})


def _setting(offset: int, name: str) -> Event:
    """An event of id `a` at `offset` that sets the property `name` only."""
    decoded = decode_event(raw({"id": "a", "properties": {name: "v"}}, offset), LIMITS)
    assert isinstance(decoded, Event)
    return decoded


FAILED = InputOutcome(Status.FAILED, error=ErrorInfo("VALIDATION_ERROR", "no", 207))


def test_an_unchanged_input_leaves_with_its_batch_unsent_and_its_id_not_in_flight() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1"))
    batch = setup.take(event("a", 1, x="1"), event("b", 2, x="1"))
    assert [i.id for i in batch.inputs] == ["b"]
    [unchanged] = batch.unchanged
    assert unchanged.item.id == "a" and unchanged.hubspot_id == "h-1"
    assert setup.batcher.buffered_events == 0 and setup.batcher.in_flight_ids == 1
    outcome = setup.skip.taken(batch)
    assert outcome is not None and [i.id for i in outcome.batch.inputs] == ["a"]
    assert outcome.by_trace_id[unchanged.item.trace_id].status is Status.UNCHANGED


def _linked(offset: int, **properties: str) -> Event:
    """An event of id `a` that names an association with contact c@x."""
    body = {
        "id": "a",
        "properties": properties,
        "associations": [{"to": "contacts", "idProperty": "email", "id": "c@x"}],
    }
    decoded = decode_event(raw(body, offset), LIMITS)
    assert isinstance(decoded, Event) and decoded.associations
    return decoded


def test_an_unchanged_input_naming_associations_is_sent_whole_so_they_are_made() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1"))
    batch = setup.take(_linked(1, x="1"))
    [item] = batch.inputs
    assert not batch.unchanged and batch.sending.get(item.trace_id, item) is item
    assert item.associations()


def test_a_changed_input_keeps_its_associations_when_unchanged_properties_are_left_out() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1", y="1"))
    batch = setup.take(_linked(1, x="1", y="2"))
    [item] = batch.inputs
    sent = batch.sending[item.trace_id]
    assert sent.properties == {"y": "2"} and sent.associations() == item.associations()


def test_an_input_with_some_changes_is_sent_as_one_without_the_unchanged_ones() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1", y="1"))
    batch = setup.take(event("a", 1, x="1", y="2"))
    [item] = batch.inputs
    sent = batch.sending[item.trace_id]
    assert sent.properties == {"y": "2"} and sent.origin is item and sent.unchanged == ("x",)
    assert sent.trace_id == changed_trace_id(item.trace_id, ("x",))
    run = BatchRun(BatchOutcome(batch))
    assert list(run.work) == [[sent]]


def test_dropping_properties_after_leaving_unchanged_ones_out_gives_own_trace_ids() -> None:
    # The same events resent without y and z: sent whole before, or without x as unchanged,
    # they are different contents, so they must not share a trace id.
    setup = Setup()
    setup.write(event("a", 0, x="1", y="1", z="1"))
    batch = setup.take(event("a", 1, x="1", y="2", z="2"))
    [item] = batch.inputs
    run = BatchRun(BatchOutcome(batch))
    [[sent]] = list(run.work)
    run.drop(sent, ("y",))
    [[once]] = run.schedule_derived()
    run.drop(once, ("z",))
    [[twice]] = run.schedule_derived()
    base = changed_trace_id(item.trace_id, ("x",))
    assert once.trace_id == dropped_trace_id(base, ("y",))
    assert (
        twice.trace_id
        == dropped_trace_id(base, ("y", "z"))
        != dropped_trace_id(item.trace_id, ("y", "z"))
    )
    assert twice.properties == {} and twice.unchanged == ("x",) and twice.root is item


def test_a_success_is_remembered_without_the_properties_hubspot_refused() -> None:
    setup = Setup()
    batch = setup.take(event("a", 0, x="1", ro="2"))
    [item] = batch.inputs
    done = InputOutcome(Status.UPSERTED, UpsertedRecord("h-1", True, None, None), dropped=("ro",))
    setup.skip.learn(batch, _upserted(batch, but={item.trace_id: done}))
    assert setup.known(x="1", ro="2") == ("x",)


def test_a_failed_write_forgets_what_was_known() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1"))
    batch = setup.take(event("a", 1, x="2"))
    setup.skip.learn(batch, _upserted(batch, but={batch.inputs[0].trace_id: FAILED}))
    assert setup.known(x="1") is None


def test_deferred_handed_over_and_abandoned_inputs_forget_their_ids() -> None:
    for unsettled in ("deferred", "handed_over", "abandoned"):
        setup = Setup()
        setup.write(event("a", 0, x="1"))
        batch = setup.take(event("a", 1, x="2"))
        outcome = BatchOutcome(batch)
        if unsettled == "abandoned":
            setup.skip.learn(batch, None)
        else:
            getattr(outcome, unsettled).append(batch.inputs[0])
            setup.skip.learn(batch, outcome)
        assert setup.known(x="1") is None, unsettled


def test_a_split_input_is_learnt_from_the_events_since_the_last_that_failed() -> None:
    setup = Setup()
    events = [_setting(n, f"p{n}") for n in range(4)]
    batch = setup.take(*events)
    [item] = batch.inputs
    done = InputOutcome(Status.UPSERTED, UpsertedRecord("h-9", False, None, None))
    outcome = BatchOutcome(batch)
    outcome.per_event[item.trace_id] = [
        (events[0], done),
        (events[1], FAILED),
        (events[2], done),
        (events[3], done),
    ]
    setup.skip.learn(batch, outcome)
    assert setup.known(p0="v", p1="v", p2="v", p3="v") == ("p2", "p3")


def test_a_split_input_whose_other_events_were_deferred_forgets_its_id() -> None:
    # Its first event settled; HubSpot keeps failing the next one, deferred with the rest:
    # they will be sent again, and what HubSpot holds until then is not known.
    setup = Setup()
    events = [_setting(n, f"p{n}") for n in range(3)]
    batch = setup.take(*events)
    done = InputOutcome(Status.UPSERTED, UpsertedRecord("h-9", False, None, None))
    outcome = BatchOutcome(batch)
    outcome.per_event[batch.inputs[0].trace_id] = [(events[0], done)]
    outcome.deferred.append(BatchInput("a", KEY[0], "rest", {}, events[1:], one_by_one=True))
    setup.skip.learn(batch, outcome)
    assert setup.known(p0="v") is None


def test_a_split_input_whose_last_event_was_handed_over_is_not_remembered() -> None:
    setup = Setup()
    events = [_setting(n, f"p{n}") for n in range(2)]
    batch = setup.take(*events)
    done = InputOutcome(Status.UPSERTED, UpsertedRecord("h-9", False, None, None))
    outcome = BatchOutcome(batch)
    outcome.per_event[batch.inputs[0].trace_id] = [(events[0], done), (events[1], None)]
    setup.skip.learn(batch, outcome)
    assert setup.known(p0="v") is None


def test_a_batch_taken_before_its_partition_came_back_is_not_learnt_from() -> None:
    setup = Setup()
    batch = setup.take(event("a", 0, x="1"))
    setup.skip.let_go({TP})
    setup.skip.take_in([TP])
    setup.skip.learn(batch, _upserted(batch))
    setup.batcher.release(batch)
    assert setup.known(x="1") is None
    setup.write(event("a", 1, x="1"))  # taken since: learnt
    assert setup.known(x="1") == ("x",)


def test_inputs_sent_again_after_a_deferral_are_not_screened_nor_learnt_from() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1"))
    item = BatchInput("a", KEY[0], "t", {"x": "1"}, [event("a", 1, x="1")])
    again = setup.batcher.again([item], NOW)  # not taken: never screened
    setup.skip.learn(again, _upserted(again))
    assert setup.known(x="1") is None


def test_an_input_with_events_of_two_partitions_is_neither_screened_nor_remembered() -> None:
    setup = Setup()
    setup.write(event("a", 0, x="1"))
    batch = setup.take(event("a", 1, x="1"), event("a", 2, partition=1, x="1"))
    assert batch.unchanged == [] and batch.sending == {}
    setup.skip.learn(batch, _upserted(batch))
    assert setup.known(x="1") is None


def test_a_revoke_takes_only_the_partitions_ids_into_oblivion() -> None:
    setup = Setup()
    other = ("subscription-events", 1)
    setup.write(event("a", 0, x="1"), event("b", 1, partition=1, x="1"))
    setup.skip.let_go({other})
    assert setup.known(x="1") == ("x",)
    setup.skip.take_in([other])  # back again: it starts cold
    batch = setup.take(event("b", 2, partition=1, x="1"))
    assert [item.id for item in batch.inputs] == ["b"] and batch.unchanged == []
