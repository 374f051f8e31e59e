"""A merged input HubSpot rejects is split back into its events: only the events HubSpot
rejects on their own fail, the others are upserted in order, and HubSpot's final state is
what applying the accepted events in order gives (issue: outcomes the events deserve)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from service.core.batching import Batcher, BatchLimits
from service.core.clock import FakeClock
from service.core.ids import DROPPED_PREFIX
from service.core.model import Batch, BatchOutcome, Event, InputOutcome, Status
from service.core.outcomes import invalid_property_names
from service.core.ratelimit import RateLimiter
from service.core.responses import HttpReply
from service.loop.caller import TRANSIENT_EXHAUSTED, InvalidPropertyPolicy, UpsertCaller
from service.loop.handover import Handover
from tests.unit.factories import event
from tests.unit.fakes import TEST_POLICY, FakeTransport, counted, make_caller, reply

READ_ONLY = "hs_read_only"
ID_PROPERTY = "external_subscription_id"


class StrictHubSpot:
    """Answers like HubSpot: an input setting a read-only or unknown property is rejected in a
    207 (one error naming its trace id and the property); the others are merged into the store.
    """

    def __init__(self, *, known: set[str] | None = None) -> None:
        self.store: dict[str, dict[str, str]] = {}
        self.known = known

    def __call__(self, request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        ids = [item["id"] for item in inputs]
        assert len(ids) == len(set(ids)), "HubSpot refuses a request naming an id twice"
        results, errors = [], []
        for item in inputs:
            problems = self._problems(item["properties"])
            if problems:
                errors.append(_input_error(item["objectWriteTraceId"], problems))
                continue
            self.store.setdefault(item["id"], {}).update(item["properties"])
            results.append({"id": f"h-{item['id']}", "properties": {ID_PROPERTY: item["id"]}})
        body: dict[str, object] = {"status": "COMPLETE", "results": results}
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        return reply(207 if errors else 200, body)

    def _problems(self, properties: dict[str, str]) -> list[tuple[str, str]]:
        found = [(name, "READ_ONLY_VALUE") for name in properties if name == READ_ONLY]
        if self.known is not None:
            found += [(n, "PROPERTY_DOESNT_EXIST") for n in properties if n not in self.known]
        return found


def _input_error(trace_id: str, problems: list[tuple[str, str]]) -> dict[str, object]:
    listed = [
        {"isValid": False, "message": f"{name} is not writable", "error": code, "name": name}
        for name, code in problems
    ]
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: " + orjson.dumps(listed).decode(),
        "context": {"objectWriteTraceId": [trace_id]},
        "errors": [{"message": f"{name} is not writable", "code": code} for name, code in problems],
    }


def _events(count: int, bad: set[int], event_id: str = "sub-1", first: int = 0) -> list[Event]:
    """`count` events for one id, from offset `first`; those at the positions in `bad` set a
    read-only property."""
    events = []
    for n in range(count):
        properties = {"hs_name": f"v{n}", f"p{n % 3}": str(n)}
        if n in bad:
            properties[READ_ONLY] = "x"
        events.append(event(event_id, first + n, 0, **properties))
    return events


def _batch_of(*groups: list[Event]) -> Batch:
    """The batch the batcher makes of these events (each id's events coalesced)."""
    batcher = Batcher(BatchLimits(max_size=100, max_wait_s=0.0))
    for events in groups:
        for item in events:
            batcher.add(item, 0.0)
    batch = batcher.take(1.0, force=True)
    assert batch is not None
    return batch


def _event_outcomes(outcome: BatchOutcome, trace_id: str) -> list[InputOutcome]:
    found = [result for _, result in outcome.per_event[trace_id]]
    assert all(result is not None for result in found)
    return [result for result in found if result is not None]


def _in_order(events: list[Event], accepted: list[bool]) -> dict[str, str]:
    state: dict[str, str] = {}
    for item, ok in zip(events, accepted, strict=True):
        if ok:
            state.update(item.properties)
    return state


@pytest.mark.parametrize("count", [2, 3, 100])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_only_the_rejected_event_of_a_merged_input_fails(count: int, where: str) -> None:
    bad = {"first": 0, "middle": count // 2, "last": count - 1}[where]
    events = _events(count, {bad})
    hubspot = StrictHubSpot()
    transport = FakeTransport(hubspot)
    caller, metrics, _ = make_caller(transport)
    batch = _batch_of(events)

    outcome = caller.execute(batch)

    results = _event_outcomes(outcome, batch.inputs[0].trace_id)
    statuses = [result.status for result in results]
    assert statuses == [Status.FAILED if n == bad else Status.UPSERTED for n in range(count)]
    failed = results[bad].error
    assert failed is not None and failed.category == "VALIDATION_ERROR"
    assert READ_ONLY in failed.message
    assert hubspot.store["sub-1"] == _in_order(events, [n != bad for n in range(count)])
    # the merged request, then one request per event, in event order
    assert len(transport.requests) == 1 + count
    sent = [_only_input(request)["objectWriteTraceId"] for request in transport.requests[1:]]
    assert sent == [item.trace_id for item in events]
    assert counted(metrics, "merged_inputs_split") == 1
    assert counted(metrics, "hubspot_retries", reason="split_merged_input") == count


def test_two_bad_events_in_one_merged_input_fail_on_their_own() -> None:
    events = _events(6, {1, 4})
    hubspot = StrictHubSpot()
    caller, _, _ = make_caller(FakeTransport(hubspot))
    batch = _batch_of(events)
    results = _event_outcomes(caller.execute(batch), batch.inputs[0].trace_id)
    assert [r.status for r in results] == [
        Status.FAILED if n in {1, 4} else Status.UPSERTED for n in range(6)
    ]
    assert hubspot.store["sub-1"] == _in_order(events, [n not in {1, 4} for n in range(6)])


def test_split_events_of_several_ids_share_requests_one_event_per_id_each() -> None:
    first, second = _events(3, {0}, "sub-a"), _events(2, {1}, "sub-b", first=5)
    clean = [event("sub-c", 10, hs_name="c")]
    transport = FakeTransport(StrictHubSpot())
    caller, _, _ = make_caller(transport)
    batch = _batch_of(first, second, clean)
    outcome = caller.execute(batch)
    # the batch, then rounds of one event per rejected id: (a0, b0), (a1, b1), (a2)
    assert [len(_inputs(request)) for request in transport.requests] == [3, 2, 2, 1]
    assert outcome.by_trace_id[batch.inputs[2].trace_id].status is Status.UPSERTED


def test_a_split_waits_out_a_rate_limit_and_keeps_the_event_order() -> None:
    events = _events(3, {1})
    hubspot = StrictHubSpot()
    limited = reply(429, {"policyName": "TEN_SECONDLY_ROLLING"}, Retry_After="2")
    # the merged input, then a 429 for the first split request, then HubSpot again
    transport = FakeTransport(hubspot, lambda _: limited, hubspot)
    clock = FakeClock()
    caller, _, _ = make_caller(transport, clock)
    batch = _batch_of(events)
    started = clock.monotonic()
    results = _event_outcomes(caller.execute(batch), batch.inputs[0].trace_id)
    assert clock.monotonic() - started >= 2.0
    assert [r.status for r in results] == [Status.UPSERTED, Status.FAILED, Status.UPSERTED]
    sent = [_only_input(request)["objectWriteTraceId"] for request in transport.requests[1:]]
    assert sent == [events[0].trace_id, events[0].trace_id, events[1].trace_id, events[2].trace_id]
    assert hubspot.store["sub-1"] == _in_order(events, [True, False, True])


def test_events_of_a_partition_handed_over_mid_split_are_not_resent_here() -> None:
    events = _events(4, {0})
    handover = Handover()
    batch = _batch_of(events)
    hubspot = StrictHubSpot()

    def hand_over_after_two(request: dict[str, object]) -> HttpReply:
        answer = hubspot(request)
        if len(transport.requests) == 2:  # the merged input, then the first event alone
            handover.hand_over({("subscription-events", 0)}, [batch.seq], 0.0)
        return answer

    transport = FakeTransport(hand_over_after_two)
    caller = _caller_with(transport, handover)
    outcome = caller.execute(batch)
    assert len(transport.requests) == 2
    first, *rest = [result for _, result in outcome.per_event[batch.inputs[0].trace_id]]
    assert first is not None and first.status is Status.FAILED
    assert rest == [None, None, None]  # the partition's next owner redoes them


def test_a_rejection_that_is_not_about_the_content_splits_nothing() -> None:
    events = _events(3, set())
    not_found = reply(404, {"status": "error", "message": "no such object type"})
    transport = FakeTransport(lambda _: not_found)
    caller, _, _ = make_caller(transport)
    batch = _batch_of(events)
    outcome = caller.execute(batch)
    assert len(transport.requests) == 1
    assert outcome.by_trace_id[batch.inputs[0].trace_id].status is Status.FAILED
    assert not outcome.per_event


def test_drop_mode_resends_without_the_refused_property_and_lists_it() -> None:
    events = _events(3, {1})
    hubspot = StrictHubSpot()
    transport = FakeTransport(hubspot)
    caller = _caller_with(transport, policy=InvalidPropertyPolicy.DROP)
    batch = _batch_of(events)
    outcome = caller.execute(batch)
    result = outcome.by_trace_id[batch.inputs[0].trace_id]
    assert result.status is Status.UPSERTED and result.dropped == (READ_ONLY,)
    assert len(transport.requests) == 2  # the merged input once more: no split needed
    resent = _only_input(transport.requests[1])
    assert READ_ONLY not in resent["properties"]
    assert str(resent["objectWriteTraceId"]).startswith(DROPPED_PREFIX)
    expected = _in_order(events, [True, True, True])
    del expected[READ_ONLY]
    assert hubspot.store["sub-1"] == expected


def test_drop_mode_still_fails_an_event_for_a_problem_it_cannot_drop() -> None:
    events = [event("sub-1", 0, hs_name="a"), event("sub-1", 1, hs_status="bogus")]

    def invalid_option(request: dict[str, object]) -> HttpReply:
        item = _inputs(request)[0]
        if "hs_status" not in item["properties"]:
            return StrictHubSpot()(request)
        problem = [{"isValid": False, "error": "INVALID_OPTION", "name": "hs_status"}]
        error = _input_error(item["objectWriteTraceId"], [])
        error["message"] = "Property values were not valid: " + orjson.dumps(problem).decode()
        return reply(207, {"status": "COMPLETE", "results": [], "errors": [error]})

    caller = _caller_with(FakeTransport(invalid_option), policy=InvalidPropertyPolicy.DROP)
    batch = _batch_of(events)
    results = _event_outcomes(caller.execute(batch), batch.inputs[0].trace_id)
    assert [r.status for r in results] == [Status.UPSERTED, Status.FAILED]


def test_invalid_property_names_are_read_from_the_message_and_sub_errors() -> None:
    error = _input_error("t", [("a", "READ_ONLY_VALUE"), ("b", "PROPERTY_DOESNT_EXIST")])
    assert invalid_property_names(error) == ("a", "b")
    mixed = _input_error("t", [("a", "READ_ONLY_VALUE"), ("c", "INVALID_OPTION")])
    assert invalid_property_names(mixed) == ()
    named_in_context: dict[str, object] = {
        "message": "one problem",
        "errors": [{"code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": ["x"]}}],
    }
    assert invalid_property_names(named_in_context) == ("x",)
    assert invalid_property_names({"message": "Property values were not valid: [oops"}) == ()


# -- an input HubSpot fails transiently while it answers the others ------------------------


def _poison_hubspot(poison: str) -> StrictHubSpot:
    class Poisoned(StrictHubSpot):
        def __call__(self, request: dict[str, object]) -> HttpReply:
            if any(item["id"] == poison for item in _inputs(request)):
                return reply(500, {"status": "error", "message": "internal error"})
            return super().__call__(request)

    return Poisoned()


def test_an_input_that_fails_transiently_while_others_succeed_is_isolated_then_failed() -> None:
    groups = [[event(f"sub-{n}", n, hs_name=f"n{n}")] for n in range(8)]
    hubspot = _poison_hubspot("sub-5")
    clock = FakeClock()
    caller = _caller_with(FakeTransport(hubspot), clock=clock)
    batch = _batch_of(*groups)
    outcomes = _as_the_loop_does(caller, clock, batch, other_traffic=True)
    failed = outcomes.pop("sub-5")
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.category == TRANSIENT_EXHAUSTED and failed.error.http_status == 500
    assert all(result.status is Status.UPSERTED for result in outcomes.values())
    assert {f"sub-{n}" for n in range(8)} - {"sub-5"} <= set(hubspot.store)
    assert clock.monotonic() >= 1_000.0 + 30.0  # no sooner than transient_max_s


def test_an_isolated_input_leaves_its_batch_so_the_others_are_not_held_back() -> None:
    groups = [[event(f"sub-{n}", n, hs_name=f"n{n}")] for n in range(8)]
    clock = FakeClock()
    caller = _caller_with(FakeTransport(_poison_hubspot("sub-5")), clock=clock, give_up_s=3_600)
    batch = _batch_of(*groups)
    outcome = caller.execute(batch)
    [poison] = outcome.deferred
    assert poison.id == "sub-5" and outcome.retry_in_s > 0
    others = [outcome.by_trace_id[item.trace_id] for item in batch.inputs if item is not poison]
    assert len(others) == 7 and all(result.status is Status.UPSERTED for result in others)


def _as_the_loop_does(
    caller: UpsertCaller, clock: FakeClock, batch: Batch, *, other_traffic: bool
) -> dict[str, InputOutcome]:
    """Run a batch, then its deferred inputs again once due (as the pipeline does), with other
    requests in between when `other_traffic`; the final outcome of each input, by id."""
    outcomes: dict[str, InputOutcome] = {}
    for seq in range(2, 60):
        outcome = caller.execute(batch)
        for item in batch.inputs:
            if item.trace_id in outcome.by_trace_id:
                outcomes[item.id] = outcome.by_trace_id[item.trace_id]
        if not outcome.deferred:
            return outcomes
        clock.advance(outcome.retry_in_s)
        if other_traffic:
            caller.execute(_batch_of([event(f"other-{seq}", 100 + seq, hs_name="x")]))
        batch = Batch(seq, outcome.deferred, clock.monotonic())
    raise AssertionError("never settled")


def test_a_lone_input_failing_transiently_with_nothing_else_sent_is_never_failed() -> None:
    clock = FakeClock()
    caller = _caller_with(FakeTransport(_poison_hubspot("sub-5")), clock=clock)
    batch = _batch_of([event("sub-5", 0, hs_name="x")])
    for _ in range(20):  # the loop sends it again and again; nothing proves HubSpot is up
        outcome = caller.execute(batch)
        assert not outcome.by_trace_id, "failed without proof that HubSpot answers others"
        [again] = outcome.deferred
        clock.advance(outcome.retry_in_s)
        batch = Batch(batch.seq + 1, [again], clock.monotonic())


def test_a_poison_event_merged_with_valid_ones_fails_alone_across_deferrals() -> None:
    # The merged input fails transiently (it carries the poison); isolated and proven, it is
    # exhausted, split into its events, and the poison event, deferred in turn, fails alone.
    events = [
        event("sub-1", 0, hs_name="a"),
        event("sub-1", 1, hs_amount="poison"),
        event("sub-1", 2, hs_name="c"),
    ]

    class PoisonValue(StrictHubSpot):
        def __call__(self, request: dict[str, object]) -> HttpReply:
            if any(i["properties"].get("hs_amount") == "poison" for i in _inputs(request)):
                return reply(500, {"status": "error", "message": "internal error"})
            return super().__call__(request)

    hubspot, clock = PoisonValue(), FakeClock()
    caller = _caller_with(FakeTransport(hubspot), clock=clock)
    batch = _batch_of(events)
    by_event: dict[int, InputOutcome] = {}
    for seq in range(2, 80):
        outcome = caller.execute(batch)
        for pairs in outcome.per_event.values():
            by_event |= {e.raw.offset: r for e, r in pairs if r is not None}
        if not outcome.deferred:
            break
        clock.advance(outcome.retry_in_s)
        caller.execute(_batch_of([event(f"other-{seq}", 100 + seq, hs_name="x")]))
        batch = Batch(seq, outcome.deferred, clock.monotonic())
    assert [by_event[n].status for n in range(3)] == [
        Status.UPSERTED,
        Status.FAILED,
        Status.UPSERTED,
    ]
    error = by_event[1].error
    assert error is not None and error.category == TRANSIENT_EXHAUSTED
    assert hubspot.store["sub-1"] == {"hs_name": "c"}


def test_while_every_request_fails_nothing_is_failed() -> None:
    outage = reply(503, {"status": "error", "message": "down"})
    clock = FakeClock()
    transport = FakeTransport(*[lambda _: outage] * 40, StrictHubSpot())
    caller = _caller_with(transport, clock=clock)
    batch = _batch_of([event("sub-1", 0, hs_name="a")], [event("sub-2", 1, hs_name="b")])
    outcomes = _as_the_loop_does(caller, clock, batch, other_traffic=False)
    assert {result.status for result in outcomes.values()} == {Status.UPSERTED}
    assert len(transport.requests) > 40  # many attempts, none of them counted against them


def _caller_with(
    transport: FakeTransport,
    handover: Handover | None = None,
    *,
    policy: InvalidPropertyPolicy = InvalidPropertyPolicy.FAIL,
    clock: FakeClock | None = None,
    give_up_s: float = 30.0,
) -> UpsertCaller:
    clock = clock or FakeClock()
    caller, _, _ = make_caller(
        transport,
        clock,
        RateLimiter(1000, 10.0, clock),
        policy=replace(
            TEST_POLICY,
            on_invalid_property=policy,
            transient_max_attempts=4,
            transient_max_s=give_up_s,
        ),
        handover=handover,
    )
    return caller


def _inputs(request: dict[str, object]) -> list[dict[str, Any]]:
    inputs = request["inputs"]
    assert isinstance(inputs, list)
    return inputs


def _only_input(request: dict[str, object]) -> dict[str, Any]:
    inputs = _inputs(request)
    assert len(inputs) == 1
    return inputs[0]
