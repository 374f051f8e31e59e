from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate

import orjson
import pytest

from service.core.clock import FakeClock
from service.core.errors import TransientHubSpotError
from service.core.health import DAILY_BLOCK, Health
from service.core.model import Batch, BatchInput, Status
from service.core.ratelimit import RateLimiter
from service.core.responses import MAX_RETRY_AFTER_S, HttpReply, retry_after_seconds
from service.loop.caller import CallerPolicy, UpsertCaller
from tests.unit.factories import event
from tests.unit.fakes import (
    FakeTransport,
    acquire_from_another_thread,
    counted,
    make_caller,
    ok_for,
    reply,
)


def _batch(count: int) -> Batch:
    inputs = [
        BatchInput(
            f"id-{n}",
            "external_subscription_id",
            f"trace-{n}",
            {"hs_name": f"n{n}"},
            [event(f"id-{n}", n)],
        )
        for n in range(count)
    ]
    return Batch(1, inputs, 0.0)


def test_transient_failures_are_retried_with_the_same_trace_ids_and_never_fail_events() -> None:
    transport = FakeTransport(
        lambda _: reply(503, {"message": "busy"}),
        TransientHubSpotError("request timed out"),
        lambda _: reply(502, {}),
        ok_for,
    )
    clock = FakeClock()
    caller, _metrics, _ = make_caller(transport, clock)
    outcome = caller.execute(_batch(3))
    assert all(o.status is Status.UPSERTED for o in outcome.by_trace_id.values())
    assert len(transport.requests) == 4
    assert all(r == transport.requests[0] for r in transport.requests)
    assert sum(clock.slept) >= 1 + 2 + 4  # capped exponential backoff (jitter pinned to 1)


def test_locked_waits_at_least_two_seconds() -> None:
    clock = FakeClock()
    transport = FakeTransport(lambda _: reply(423, {"message": "locked"}), ok_for)
    caller, _, _ = make_caller(transport, clock)
    caller.execute(_batch(1))
    assert sum(clock.slept) >= 2.0


def test_ten_secondly_429_waits_out_retry_after_and_resends_the_same_batch() -> None:
    clock = FakeClock()
    limited = reply(
        429,
        {"status": "error", "policyName": "TEN_SECONDLY_ROLLING", "errorType": "RATE_LIMIT"},
        Retry_After="3",
    )
    transport = FakeTransport(lambda _: limited, ok_for)
    caller, metrics, _ = make_caller(transport, clock)
    start = clock.monotonic()
    outcome = caller.execute(_batch(2))
    assert clock.monotonic() - start >= 3.0
    assert transport.requests[0] == transport.requests[1]
    assert all(o.status is Status.UPSERTED for o in outcome.by_trace_id.values())
    assert counted(metrics, "hubspot_rate_limited", policy="TEN_SECONDLY_ROLLING") == 1


@pytest.mark.parametrize(
    ("retry_after", "status"), [("inf", 429), ("1e12", 429), ("nan", 503), ("1e12", 503)]
)
def test_an_absurd_retry_after_neither_parks_nor_spins_the_sender(
    retry_after: str, status: int
) -> None:
    # A proxy's `Retry-After: inf`, `nan` or a huge number: the batch still goes through,
    # after at most MAX_RETRY_AFTER_S (nan used to spin the worker, inf to park it forever).
    clock = FakeClock()
    odd = reply(status, {"message": "busy"}, Retry_After=retry_after)
    transport = FakeTransport(lambda _: odd, ok_for)
    caller, _, _ = make_caller(transport, clock)
    start = clock.monotonic()
    outcome = caller.execute(_batch(1))
    assert all(o.status is Status.UPSERTED for o in outcome.by_trace_id.values())
    assert clock.monotonic() - start <= MAX_RETRY_AFTER_S + 10


def test_one_poison_input_is_isolated_and_the_other_99_are_upserted() -> None:
    def reject_poison(request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        if any(item["id"] == "id-42" for item in inputs):
            return reply(
                400,
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "bad input somewhere",
                },
            )
        return ok_for(request)

    transport = FakeTransport(reject_poison)
    caller, _, _ = make_caller(transport)
    outcome = caller.execute(_batch(100))
    failed = [t for t, o in outcome.by_trace_id.items() if o.status is Status.FAILED]
    upserted = [t for t, o in outcome.by_trace_id.items() if o.status is Status.UPSERTED]
    assert failed == ["trace-42"]
    assert len(upserted) == 99
    assert len(transport.requests) <= 1 + 2 * 7  # logarithmic in the batch size


def test_non_unique_id_property_fails_the_batch_without_splitting() -> None:
    rejected = reply(
        400,
        {
            "category": "VALIDATION_ERROR",
            "message": "Unable to perform update/upsert by non-unique 0-69 property x",
        },
    )
    transport = FakeTransport(lambda _: rejected)
    caller, _, _ = make_caller(transport)
    outcome = caller.execute(_batch(10))
    assert len(transport.requests) == 1
    assert {o.status for o in outcome.by_trace_id.values()} == {Status.FAILED}


def test_refused_credentials_hold_and_report_not_ready_without_failing_events() -> None:
    readiness: list[bool] = []
    caller_holder: list[object] = []

    def refuse(_: dict[str, object]) -> HttpReply:
        return reply(401, {"category": "INVALID_AUTHENTICATION", "message": "bad token"})

    def accept_and_record(request: dict[str, object]) -> HttpReply:
        readiness.append(health.ready()[0] is False and health.is_blocked("credentials"))
        return ok_for(request)

    transport = FakeTransport(refuse, refuse, accept_and_record)
    caller, metrics, health = make_caller(transport)
    health.started()
    caller_holder.append(caller)
    outcome = caller.execute(_batch(2))
    assert readiness == [True]
    assert all(o.status is Status.UPSERTED for o in outcome.by_trace_id.values())
    assert health.ready()[0] is True
    assert counted(metrics, "hubspot_auth_failures", status="401") == 2


def test_daily_limit_blocks_readiness_until_a_probe_succeeds() -> None:
    daily = reply(429, {"policyName": "DAILY", "message": "daily limit"})
    transport = FakeTransport(lambda _: daily, ok_for)
    caller, _, health = make_caller(transport)
    health.started()
    outcome = caller.execute(_batch(1))
    assert all(o.status is Status.UPSERTED for o in outcome.by_trace_id.values())
    assert health.ready()[0] is True


def test_a_success_that_spends_the_daily_budget_holds_sending() -> None:
    # The reply is accepted, but its headers say no request is left today: sending holds
    # (readiness says why) until a later probe succeeds with budget left.
    def spent(request: dict[str, object]) -> HttpReply:
        accepted = ok_for(request)
        return HttpReply(200, {"x-hubspot-ratelimit-daily-remaining": "0"}, accepted.body)

    caller, _, health = make_caller(FakeTransport(spent, ok_for))
    health.started()
    first = caller.execute(_batch(1))
    assert all(o.status is Status.UPSERTED for o in first.by_trace_id.values())
    assert health.sending_blocked()
    assert health.ready()[0] is False
    second = caller.execute(_batch(1))
    assert all(o.status is Status.UPSERTED for o in second.by_trace_id.values())
    assert not health.sending_blocked()


def test_body_over_the_byte_cap_is_split_before_it_is_sent() -> None:
    transport = FakeTransport(ok_for)
    clock = FakeClock()
    caller, _, _ = make_caller(transport, clock, policy=CallerPolicy(max_body_bytes=2_000))
    outcome = caller.execute(_batch(40))
    assert len(outcome.by_trace_id) == 40
    assert len(transport.requests) > 1
    assert all(len(r["inputs"]) < 40 for r in transport.requests)  # type: ignore[arg-type]


def test_hubspot_header_gauges_are_absent_until_a_reply_reports_them() -> None:
    # An idle replica, or an OAuth app (no daily headers), must not read as a spent budget.
    gauges = ("ratelimit_max", "ratelimit_remaining", "daily_limit", "daily_remaining")
    names = [f"subscription_upserter_hubspot_{gauge}" for gauge in gauges]

    def oauth_app(request: dict[str, object]) -> HttpReply:
        accepted = ok_for(request)
        limits = {"x-hubspot-ratelimit-max": "190", "x-hubspot-ratelimit-remaining": "42"}
        return HttpReply(accepted.status, limits, accepted.body)

    transport = FakeTransport(oauth_app)
    caller, metrics, _ = make_caller(transport)
    sample = metrics.registry.get_sample_value
    assert [sample(name) for name in names] == [None, None, None, None]

    caller.execute(_batch(1))
    assert [sample(name) for name in names] == [190.0, 42.0, None, None]


def test_hubspot_header_gauges_go_when_their_reading_is_out_of_date() -> None:
    # An idle pod's last reading must not keep an alert firing: the burst window's reading
    # holds for a minute, the daily budget's until HubSpot's daily reset (midnight, UTC here).
    names = [
        f"subscription_upserter_hubspot_{gauge}"
        for gauge in ("ratelimit_remaining", "daily_remaining")
    ]

    def spent_today(request: dict[str, object]) -> HttpReply:
        accepted = ok_for(request)
        limits = {
            "x-hubspot-ratelimit-max": "190",
            "x-hubspot-ratelimit-remaining": "42",
            "x-hubspot-ratelimit-daily": "500000",
            "x-hubspot-ratelimit-daily-remaining": "3",
        }
        return HttpReply(accepted.status, limits, accepted.body)

    clock = FakeClock(wall_start=1_800_000_000.0)  # 08:00 UTC
    caller, metrics, _ = make_caller(FakeTransport(spent_today), clock)
    sample = metrics.registry.get_sample_value
    caller.execute(_batch(1))
    assert [sample(name) for name in names] == [42.0, 3.0]
    clock.advance(59)
    assert [sample(name) for name in names] == [42.0, 3.0]
    clock.advance(2)
    assert [sample(name) for name in names] == [None, 3.0]
    clock.advance(16 * 3600 - 62)  # a second before midnight
    assert sample(names[1]) == 3.0
    clock.advance(2)
    assert sample(names[1]) is None


def test_per_input_rate_limits_in_a_207_are_resent_until_written_never_failed() -> None:
    def partly_limited(request: dict[str, object]) -> HttpReply:
        accepted = orjson.loads(ok_for(request).body)
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        limited = [item["objectWriteTraceId"] for item in inputs if item["id"] == "id-1"]
        accepted["results"] = [r for r in accepted["results"] if r["id"] != "h-id-1"]
        accepted["errors"] = [
            {"category": "RATE_LIMITS", "context": {"objectWriteTraceId": limited}}
        ]
        return reply(207, accepted)

    clock = FakeClock()
    transport = FakeTransport(*[partly_limited] * 12, ok_for)  # more rounds than unmatched get
    caller, metrics, _ = make_caller(transport, clock)
    outcome = caller.execute(_batch(2))
    assert {t: o.status for t, o in outcome.by_trace_id.items()} == {
        "trace-0": Status.UPSERTED,
        "trace-1": Status.UPSERTED,
    }
    assert len(transport.requests) == 13
    assert counted(metrics, "hubspot_rate_limited", policy="UNSPECIFIED") == 12
    assert sum(clock.slept) >= 12  # each round waited for the window to free a slot


def test_a_429_is_counted_under_the_policy_it_names() -> None:
    limited = [
        reply(429, {"policyName": "SECONDLY"}),
        reply(500, {"category": "RATE_LIMITS", "message": "slow down"}),
        reply(429, {"policyName": "TEN_SECONDLY_ROLLING"}),
    ]
    transport = FakeTransport(*[lambda _, r=r: r for r in limited], ok_for)
    caller, metrics, _ = make_caller(transport)
    caller.execute(_batch(1))
    by_policy = {
        policy: counted(metrics, "hubspot_rate_limited", policy=policy)
        for policy in ("SECONDLY", "UNSPECIFIED", "TEN_SECONDLY_ROLLING")
    }
    assert by_policy == {"SECONDLY": 1, "UNSPECIFIED": 1, "TEN_SECONDLY_ROLLING": 1}


@pytest.mark.parametrize(
    "refusal",
    [
        reply(429, {"policyName": "DAILY", "errorType": "RATE_LIMIT"}),
        reply(401, {"category": "INVALID_AUTHENTICATION"}),
    ],
)
def test_after_a_daily_limit_or_refused_credentials_one_probe_goes_and_the_rest_wait(
    refusal: HttpReply,
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    another_worker_could_send: list[bool] = []

    def probe(request: dict[str, object]) -> HttpReply:
        clock.advance(1.0)  # HubSpot takes its time to answer
        another_worker_could_send.append(acquire_from_another_thread(limiter) == 0)
        return ok_for(request)

    transport = FakeTransport(lambda _: refusal, probe)
    caller, _, health = make_caller(transport, clock, limiter)
    outcome = caller.execute(_batch(1))
    assert [o.status for o in outcome.by_trace_id.values()] == [Status.UPSERTED]
    assert another_worker_could_send == [False]
    clock.advance(0.1)
    assert acquire_from_another_thread(limiter) == 0  # accepted: the whole budget again
    assert not health.sending_blocked()


def test_a_success_sent_before_a_daily_block_does_not_lift_it() -> None:
    # Two workers: one request is answered 429 DAILY while another, sent earlier, is still
    # out; its late 200 says nothing about the budget now.
    clock = FakeClock()
    late: list[bool] = []

    def earlier_request(request: dict[str, object]) -> HttpReply:
        clock.advance(0.5)
        health_of_both.block(DAILY_BLOCK, "HubSpot answered 429 DAILY")  # the other worker's reply
        clock.advance(0.5)
        late.append(True)
        return ok_for(request)

    transport = FakeTransport(earlier_request)
    caller, _, health_of_both = make_caller(transport, clock)
    caller.execute(_batch(1))
    assert late == [True]
    assert health_of_both.sending_blocked()


def test_a_429_without_a_policy_name_that_speaks_of_the_daily_limit_holds_for_the_day() -> None:
    # OAuth apps get no daily headers; the body may only say which limit it is in words.
    clock = FakeClock()
    daily = reply(
        429,
        {
            "status": "error",
            "category": "RATE_LIMITS",
            "message": "You have reached your daily limit.",
        },
    )
    transport = FakeTransport(lambda _: daily, ok_for)
    caller, metrics, health = make_caller(transport, clock)
    caller.execute(_batch(1))
    assert counted(metrics, "hubspot_rate_limited", policy="DAILY") == 1
    assert sum(clock.slept) >= 60  # held for the probe interval, not a ten-second window
    assert not health.sending_blocked()  # the probe passed


DAILY_429 = reply(429, {"policyName": "DAILY", "errorType": "RATE_LIMIT"})


def _held_caller(
    *responders: Callable[[dict[str, object]], HttpReply],
) -> tuple[UpsertCaller, Health, RateLimiter, FakeClock]:
    """A caller whose first request meets a spent daily budget; `responders` answer the rest."""
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    transport = FakeTransport(lambda _: DAILY_429, *responders)
    caller, _, health = make_caller(transport, clock, limiter)
    return caller, health, limiter, clock


def test_a_probe_hubspot_rejects_for_its_content_still_ends_the_hold() -> None:
    caller, health, limiter, clock = _held_caller(lambda _: reply(400, {"message": "bad"}))
    outcome = caller.execute(_batch(1))
    assert [o.status for o in outcome.by_trace_id.values()] == [Status.FAILED]
    assert not health.sending_blocked()  # readiness and the limiter agree
    clock.advance(0.1)
    assert acquire_from_another_thread(limiter) == 0


def test_a_probe_that_meets_a_transient_failure_is_resent_by_its_worker_alone() -> None:
    others_blocked: list[bool] = []

    def busy(_: dict[str, object]) -> HttpReply:
        others_blocked.append(acquire_from_another_thread(limiter) > 0)
        return reply(503, {"message": "busy"})

    def accepted(request: dict[str, object]) -> HttpReply:
        others_blocked.append(acquire_from_another_thread(limiter) > 0)
        return ok_for(request)

    caller, health, limiter, clock = _held_caller(busy, accepted)
    outcome = caller.execute(_batch(1))
    assert [o.status for o in outcome.by_trace_id.values()] == [Status.UPSERTED]
    assert others_blocked == [True, True]
    assert not health.sending_blocked()
    clock.advance(0.1)
    assert acquire_from_another_thread(limiter) == 0


def test_a_probe_accepted_with_no_daily_requests_left_keeps_the_hold() -> None:
    def last_one(request: dict[str, object]) -> HttpReply:
        accepted = ok_for(request)
        spent = {"x-hubspot-ratelimit-daily-remaining": "0"}
        return HttpReply(accepted.status, spent, accepted.body)

    caller, health, limiter, clock = _held_caller(last_one)
    caller.execute(_batch(1))
    assert health.sending_blocked()
    clock.advance(1.0)
    assert acquire_from_another_thread(limiter) > 0


@pytest.mark.parametrize(
    "late", [reply(401, {"category": "INVALID_AUTHENTICATION"}), DAILY_429], ids=["401", "daily"]
)
def test_a_late_refusal_of_a_request_sent_before_the_hold_renews_nothing(late: HttpReply) -> None:
    # Two workers: this one's request is out when the other's meets the daily limit; its 401
    # comes back afterwards and must not start a second hold or a credentials block.
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, clock)
    blocks: list[str] = []

    def refused_late(_: dict[str, object]) -> HttpReply:
        clock.advance(0.5)
        assert limiter.hold_then_probe(300, sent_at=clock.monotonic())  # the other worker
        health.block(DAILY_BLOCK, "the other worker met the daily limit")
        clock.advance(0.5)
        return late

    transport = FakeTransport(refused_late, ok_for)
    caller, _, health = make_caller(transport, clock, limiter)
    record = health.block

    def noting(name: str, reason: str) -> None:
        blocks.append(name)
        record(name, reason)

    health.block = noting  # type: ignore[method-assign]
    outcome = caller.execute(_batch(1))
    assert [o.status for o in outcome.by_trace_id.values()] == [Status.UPSERTED]
    assert blocks == [DAILY_BLOCK]  # the other worker's only: the stale refusal adds none
    assert not health.sending_blocked()


def test_a_retry_after_given_as_an_http_date_is_waited_out() -> None:
    clock = FakeClock()
    in_20_s = formatdate(clock.wall() + 20, usegmt=True)
    limited = reply(429, {"policyName": "TEN_SECONDLY_ROLLING"}, Retry_After=in_20_s)
    transport = FakeTransport(lambda _: limited, ok_for)
    caller, _, _ = make_caller(transport, clock)
    start = clock.monotonic()
    caller.execute(_batch(1))
    assert 19 <= clock.monotonic() - start <= 25


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Sun, 29 Nov 2026 22:00:30 GMT", 30.0),
        ("Sun, 29 Nov 2026 21:59:00 GMT", 0.0),  # already past
        ("Mon, 30 Nov 2026 22:00:00 GMT", MAX_RETRY_AFTER_S),
        ("7", 7.0),
        ("soon", None),
    ],
)
def test_retry_after_is_read_in_seconds_or_as_an_http_date(
    value: str, seconds: float | None
) -> None:
    now = datetime(2026, 11, 29, 22, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds({"retry-after": value}, now) == seconds


def _id_1_left_out_and_an_error_naming_no_input(
    request: dict[str, object], category: str
) -> HttpReply:
    """A 207 without id-1's result, and with an error that has no objectWriteTraceId."""
    accepted = orjson.loads(ok_for(request).body)
    accepted["results"] = [r for r in accepted["results"] if r["id"] != "h-id-1"]
    accepted["errors"] = [{"status": "error", "category": category, "message": "no context"}]
    return reply(207, accepted)


def test_an_error_naming_no_input_is_isolated_and_fails_with_hubspots_category() -> None:
    def unattributed_error_for_id_1(request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        if all(item["id"] != "id-1" for item in inputs):
            return ok_for(request)
        return _id_1_left_out_and_an_error_naming_no_input(request, "VALIDATION_ERROR")

    clock = FakeClock()
    transport = FakeTransport(*[unattributed_error_for_id_1] * 20)
    caller, _, _ = make_caller(transport, clock)
    outcome = caller.execute(_batch(3))
    statuses = {t: o.status for t, o in outcome.by_trace_id.items()}
    assert statuses == {
        "trace-0": Status.UPSERTED,
        "trace-1": Status.FAILED,
        "trace-2": Status.UPSERTED,
    }
    error = outcome.by_trace_id["trace-1"].error
    assert error is not None and error.category == "VALIDATION_ERROR"
    assert len(transport.requests) <= 3  # the batch, then id-1 and id-2 each on their own


def test_an_unattributed_rate_limit_is_held_and_resent_never_failed() -> None:
    rounds = []

    def limited_without_context(request: dict[str, object]) -> HttpReply:
        rounds.append(1)
        if len(rounds) > 12:  # more rounds than an unmatched input gets
            return ok_for(request)
        return _id_1_left_out_and_an_error_naming_no_input(request, "RATE_LIMITS")

    clock = FakeClock()
    transport = FakeTransport(*[limited_without_context] * 14)
    caller, metrics, _ = make_caller(transport, clock)
    outcome = caller.execute(_batch(2))
    assert {o.status for o in outcome.by_trace_id.values()} == {Status.UPSERTED}
    assert counted(metrics, "hubspot_rate_limited", policy="UNSPECIFIED") == 12


def test_unmatched_rounds_are_counted_per_input_not_per_batch() -> None:
    # id-0 is never named; id-1 is named only from its 7th round on. Sharing one count,
    # id-1 was failed once id-0 had used up the rounds.
    sent: dict[str, int] = {}

    def ids_left_out(request: dict[str, object]) -> HttpReply:
        accepted = orjson.loads(ok_for(request).body)
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        for item in inputs:
            sent[item["id"]] = sent.get(item["id"], 0) + 1
        keep = {"h-id-2"} | ({"h-id-1"} if sent.get("id-1", 0) >= 7 else set())
        accepted["results"] = [r for r in accepted["results"] if r["id"] in keep]
        return reply(200, accepted)

    def split_first(request: dict[str, object]) -> HttpReply:
        inputs = request["inputs"]
        assert isinstance(inputs, list)
        if len(inputs) == 3:  # id-0 and id-1 then travel as separate lists of work
            return reply(413, {"status": "error", "category": "VALIDATION_ERROR", "message": "big"})
        return ids_left_out(request)

    clock = FakeClock()
    transport = FakeTransport(split_first, *[split_first] * 40)
    caller, _, _ = make_caller(transport, clock)
    outcome = caller.execute(_batch(3))
    statuses = {t: o.status for t, o in outcome.by_trace_id.items()}
    assert statuses["trace-1"] is Status.UPSERTED
    assert statuses["trace-0"] is Status.FAILED  # its own 10 rounds spent
    error = outcome.by_trace_id["trace-0"].error
    assert error is not None and error.category == "UNMATCHED_RESULT"
