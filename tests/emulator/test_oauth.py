"""HubSpot's OAuth refresh-token grant at /oauth/v3/token, and how issued tokens are treated.

An OAuth app's burst window is per app (refreshed access tokens share it), its answers carry
no daily-limit headers, and no daily limit applies to it unless `oauth_daily_limit` says so.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devstack.emulator import FakeClock, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter, an_input, batch

CLIENT, SECRET, REFRESH = "client-1", "client-secret-1", "refresh-token-1"
OAUTH_APP = {"oauth_clients": {CLIENT: SECRET}, "oauth_refresh_tokens": frozenset({REFRESH})}
DAILY_HEADERS = ("X-HubSpot-RateLimit-Daily", "X-HubSpot-RateLimit-Daily-Remaining")


def _grant(upserter: Upserter, refresh_token: str, secret: str = SECRET) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": CLIENT,
        "client_secret": secret,
        "refresh_token": refresh_token,
    }
    return upserter.http.post("/oauth/v3/token", data=form)


def _tokens(upserter: Upserter, refresh_token: str = REFRESH) -> dict[str, Any]:
    response = _grant(upserter, refresh_token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _start_oauth_app(
    start_emulator: StartEmulator, **fields: Any
) -> tuple[RunningEmulator, Upserter, FakeClock]:
    clock = FakeClock()
    emulator, upserter = start_emulator(clock=clock, **OAUTH_APP, **fields)
    return emulator, upserter, clock


def test_a_refresh_grant_issues_an_access_token_that_can_upsert(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter, _ = _start_oauth_app(start_emulator)
    issued = _tokens(upserter)

    assert issued["token_type"] == "bearer"
    assert issued["expires_in"] == 1_800
    assert issued["refresh_token"] != REFRESH
    response = upserter.post(batch(an_input("a")), token=issued["access_token"])
    assert response.status_code == 200
    assert set(emulator.control.store()) == {"a"}
    assert emulator.control.stats()["oauthRefreshes"] == 1


def test_the_refresh_token_rotates_and_a_used_one_is_refused(
    start_emulator: StartEmulator,
) -> None:
    _, upserter, _ = _start_oauth_app(start_emulator)
    first = _tokens(upserter)
    second = _tokens(upserter, first["refresh_token"])

    assert second["access_token"] != first["access_token"]
    assert _grant(upserter, first["refresh_token"]).status_code == 400


@pytest.mark.parametrize(
    ("refresh_token", "secret"),
    [("unknown-refresh-token", SECRET), (REFRESH, "wrong-secret")],
    ids=["unknown-refresh-token", "wrong-secret"],
)
def test_a_bad_grant_is_a_400(
    start_emulator: StartEmulator, refresh_token: str, secret: str
) -> None:
    _, upserter, _ = _start_oauth_app(start_emulator)

    assert _grant(upserter, refresh_token, secret).status_code == 400


def test_a_grant_without_client_credentials_is_a_400(start_emulator: StartEmulator) -> None:
    _, upserter, _ = _start_oauth_app(start_emulator)
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH}

    assert upserter.http.post("/oauth/v3/token", data=form).status_code == 400


def test_an_expired_access_token_is_a_401(start_emulator: StartEmulator) -> None:
    _, upserter, clock = _start_oauth_app(start_emulator, oauth_access_ttl_s=60)
    token = _tokens(upserter)["access_token"]
    clock.advance(60)

    assert upserter.post(batch(an_input("a")), token=token).status_code == 401


def test_refreshed_access_tokens_share_the_apps_burst_window(
    start_emulator: StartEmulator,
) -> None:
    _, upserter, _ = _start_oauth_app(start_emulator, rate_limit_max=2)
    first = _tokens(upserter)
    statuses = [
        upserter.post(batch(an_input("a")), token=first["access_token"]).status_code
        for _ in range(2)
    ]
    second = _tokens(upserter, first["refresh_token"])
    limited = upserter.post(batch(an_input("a")), token=second["access_token"])

    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_oauth_answers_carry_no_daily_headers_unlike_private_app_answers(
    start_emulator: StartEmulator,
) -> None:
    _, upserter, _ = _start_oauth_app(start_emulator, daily_limit=10)
    oauth = upserter.post(batch(an_input("a")), token=_tokens(upserter)["access_token"])
    private = upserter.post(batch(an_input("a")))

    assert oauth.status_code == private.status_code == 200
    assert not any(h in oauth.headers for h in DAILY_HEADERS), oauth.headers
    assert "X-HubSpot-RateLimit-Max" in oauth.headers
    assert private.headers["X-HubSpot-RateLimit-Daily"] == "10"
    assert private.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "9"


def test_a_401_for_an_expired_oauth_token_carries_no_daily_headers(
    start_emulator: StartEmulator,
) -> None:
    _, upserter, clock = _start_oauth_app(start_emulator, oauth_access_ttl_s=60)
    token = _tokens(upserter)["access_token"]
    clock.advance(60)
    response = upserter.post(batch(an_input("a")), token=token)

    assert response.status_code == 401
    assert not any(h in response.headers for h in DAILY_HEADERS), response.headers


def test_no_daily_limit_applies_to_an_oauth_app_by_default(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter, _ = _start_oauth_app(start_emulator, daily_limit=1)
    token = _tokens(upserter)["access_token"]
    statuses = [upserter.post(batch(an_input("a")), token=token).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert emulator.control.stats()["daily"]["used"] == 0
    assert upserter.post(batch(an_input("a"))).status_code == 200  # the account's budget


def test_the_daily_limit_can_be_applied_to_oauth_apps_too(
    start_emulator: StartEmulator,
) -> None:
    _, upserter, _ = _start_oauth_app(
        start_emulator, daily_limit=1, oauth_daily_limit=True, rate_limit_body="category"
    )
    token = _tokens(upserter)["access_token"]
    first = upserter.post(batch(an_input("a")), token=token)
    limited = upserter.post(batch(an_input("a")), token=token)

    assert first.status_code == 200
    assert limited.status_code == 429
    assert "daily" in limited.json()["message"]
    assert not any(h in limited.headers for h in DAILY_HEADERS), limited.headers
