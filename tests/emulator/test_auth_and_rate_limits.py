"""Authentication, scopes, the burst and daily limits, and the rate-limit headers, over HTTP.

Time-dependent cases run the server on a `FakeClock`, so nothing here sleeps.
"""

from __future__ import annotations

import pytest

from devstack.emulator import FakeClock, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter, an_input, batch

RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "invalid"])
def test_missing_or_invalid_token_is_401_invalid_authentication(
    emulator: RunningEmulator, upserter: Upserter, token: str | None
) -> None:
    response = upserter.post(batch(an_input("a")), token=token)

    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error"
    assert body["message"].startswith("Authentication credentials not found")
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["correlationId"]
    assert emulator.control.store() == {}


def test_non_bearer_authorization_is_401(upserter: Upserter) -> None:
    response = upserter.http.post(
        "/crm/v3/objects/subscriptions/batch/upsert",
        json=batch(an_input("a")),
        headers={"Authorization": "Basic abc"},
    )

    assert response.status_code == 401


def test_token_without_scope_is_403_missing_scopes(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(no_scope_tokens=frozenset({"read-only-token"}))
    response = upserter.post(batch(an_input("a")), token="read-only-token")

    assert response.status_code == 403
    assert response.json()["category"] == "MISSING_SCOPES"
    assert emulator.control.store() == {}


def test_valid_tokens_can_be_changed_at_run_time(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.configure(tokens=["rotated"])

    assert upserter.post(batch(an_input("a"))).status_code == 401
    assert upserter.post(batch(an_input("a")), token="rotated").status_code == 200


def test_every_answer_carries_the_rate_limit_headers(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    answers = [
        upserter.post(batch(an_input("a"))),
        upserter.post(batch(an_input("a"), an_input("a", trace="t"))),
        upserter.post(batch(an_input("a")), token=None),
    ]
    emulator.control.fault_next("503")
    answers.append(upserter.post(batch(an_input("a"))))

    assert [a.status_code for a in answers] == [200, 400, 401, 503]
    for answer in answers:
        assert all(h in answer.headers for h in RATE_HEADERS), answer.headers
        assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_remaining_counts_down_from_the_configured_burst_limit(
    start_emulator: StartEmulator,
) -> None:
    _, upserter = start_emulator(clock=FakeClock(), rate_limit_max=5)
    remaining = [
        upserter.post(batch(an_input("a"))).headers["X-HubSpot-RateLimit-Remaining"]
        for _ in range(3)
    ]

    assert remaining == ["4", "3", "2"]


def test_over_the_burst_window_is_a_429_with_hubspots_body(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), rate_limit_max=3)
    statuses = [upserter.post(batch(an_input("a"))).status_code for _ in range(3)]
    limited = upserter.post(batch(an_input("b")))

    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    body = limited.json()
    assert body["status"] == "error"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["correlationId"] and body["requestId"]
    assert "Retry-After" not in limited.headers
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "b" not in emulator.control.store()


def test_the_window_rolls_so_requests_pass_again_later(start_emulator: StartEmulator) -> None:
    clock = FakeClock()
    _, upserter = start_emulator(clock=clock, rate_limit_max=2, rate_limit_interval_ms=10_000)
    upserter.post(batch(an_input("a")))
    clock.advance(6)
    upserter.post(batch(an_input("a")))

    assert upserter.post(batch(an_input("a"))).status_code == 429
    clock.advance(4.001)  # the first request has left the window
    assert upserter.post(batch(an_input("a"))).status_code == 200
    assert upserter.post(batch(an_input("a"))).status_code == 429


def test_rejected_429s_do_not_consume_the_burst_budget(start_emulator: StartEmulator) -> None:
    clock = FakeClock()
    _, upserter = start_emulator(clock=clock, rate_limit_max=2)
    for _ in range(2):
        upserter.post(batch(an_input("a")))
    for _ in range(5):
        assert upserter.post(batch(an_input("a"))).status_code == 429
    clock.advance(10.001)

    assert [upserter.post(batch(an_input("a"))).status_code for _ in range(3)] == [200, 200, 429]


def test_errors_other_than_429_count_against_the_window(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), rate_limit_max=3)
    upserter.post(batch(an_input("a"), an_input("a", trace="t")))  # 400
    emulator.control.fault_next("500")
    upserter.post(batch(an_input("a")))  # 500
    upserter.post(batch(an_input("a")))

    assert upserter.post(batch(an_input("a"))).status_code == 429


def test_the_burst_window_is_per_token(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(
        clock=FakeClock(), rate_limit_max=1, tokens=frozenset({"t1", "t2"})
    )

    assert upserter.post(batch(an_input("a")), token="t1").status_code == 200
    assert upserter.post(batch(an_input("a")), token="t1").status_code == 429
    assert upserter.post(batch(an_input("a")), token="t2").status_code == 200


def test_retry_after_on_429_says_when_a_slot_frees(start_emulator: StartEmulator) -> None:
    clock = FakeClock()
    _, upserter = start_emulator(clock=clock, rate_limit_max=1, retry_after_on_429=True)
    upserter.post(batch(an_input("a")))
    clock.advance(2.5)
    limited = upserter.post(batch(an_input("a")))

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "8"


def test_category_variant_of_the_429_body(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(clock=FakeClock(), rate_limit_max=1, rate_limit_body="category")
    upserter.post(batch(an_input("a")))
    body = upserter.post(batch(an_input("a"))).json()

    assert body["category"] == "RATE_LIMITS"
    assert "policyName" not in body


def test_unlimited_burst_never_429s(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(clock=FakeClock(), rate_limit_max=None)
    statuses = {upserter.post(batch(an_input("a"))).status_code for _ in range(250)}

    assert statuses == {200}


def test_daily_limit_gives_429_daily_until_reset_through_the_control_api(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), daily_limit=2)
    first = upserter.post(batch(an_input("a")))
    upserter.post(batch(an_input("a")))
    limited = upserter.post(batch(an_input("a")))

    assert first.headers["X-HubSpot-RateLimit-Daily"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "DAILY"
    assert "daily" in limited.json()["message"]
    emulator.control.reset_daily()
    assert upserter.post(batch(an_input("a"))).status_code == 200


def test_daily_limit_resets_by_itself_at_the_configured_time(
    start_emulator: StartEmulator,
) -> None:
    clock = FakeClock()  # starts 2026-11-07T12:00Z
    _, upserter = start_emulator(
        clock=clock, daily_limit=1, daily_reset_at="2026-11-07T18:00:00Z", retry_after_on_429=True
    )
    upserter.post(batch(an_input("a")))
    limited = upserter.post(batch(an_input("a")))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == str(6 * 3600)

    clock.advance(6 * 3600)
    assert upserter.post(batch(an_input("a"))).status_code == 200


def test_daily_reset_time_is_settable_through_the_control_api(
    start_emulator: StartEmulator,
) -> None:
    emulator, _ = start_emulator(clock=FakeClock(), daily_limit=5)

    assert emulator.control.reset_daily("2026-11-08T05:00:00Z") == "2026-11-08T05:00:00.000Z"
    assert emulator.control.stats()["daily"]["resetAt"] == "2026-11-08T05:00:00.000Z"


def test_daily_429_does_not_consume_the_burst_window(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), daily_limit=1, rate_limit_max=3)
    upserter.post(batch(an_input("a")))
    for _ in range(4):
        upserter.post(batch(an_input("a")))

    assert emulator.control.stats()["window"]["current"] == 1


def test_daily_headers_can_be_omitted_like_for_oauth_apps(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(daily_headers=False)
    response = upserter.post(batch(an_input("a")))

    assert "X-HubSpot-RateLimit-Daily" not in response.headers
    assert "X-HubSpot-RateLimit-Max" in response.headers


def test_accept_any_token_lets_every_bearer_token_in(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(accept_any_token=True)

    assert upserter.post(batch(an_input("a")), token="whatever").status_code == 200
    assert upserter.post(batch(an_input("a")), token=None).status_code == 401


def test_burst_limit_can_be_changed_at_run_time(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), rate_limit_max=1)
    upserter.post(batch(an_input("a")))
    emulator.control.configure(rate_limit_max=3)

    assert upserter.post(batch(an_input("a"))).headers["X-HubSpot-RateLimit-Max"] == "3"
    assert upserter.post(batch(an_input("a"))).status_code == 200
    assert upserter.post(batch(an_input("a"))).status_code == 429
