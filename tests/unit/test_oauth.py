from __future__ import annotations

import httpx
import pytest
import respx

from service.adapters.hubspot import HttpxUpsertTransport, OAuthToken
from service.core.clock import FakeClock
from service.core.errors import AuthError, TransientHubSpotError

URL = "https://hubspot.test/oauth/v3/token"
SECRET = "client-secret-3c9a"
REFRESH = "refresh-token-77d1"


def _token(clock: FakeClock, seen: list[str] | None = None) -> OAuthToken:
    return OAuthToken(
        URL,
        client_id="cid",
        client_secret=SECRET,
        refresh_token=REFRESH,
        clock=clock,
        refresh_margin_s=300,
        on_secret=(seen.append if seen is not None else lambda _: None),
    )


@respx.mock
def test_access_token_is_refreshed_ahead_of_expiry_and_the_refresh_token_rotates() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                200, json={"access_token": "a1", "refresh_token": "r2", "expires_in": 1800}
            ),
            httpx.Response(200, json={"access_token": "a2", "expires_in": 1800}),
        ]
    )
    clock, seen = FakeClock(), list[str]()
    token = _token(clock, seen)
    assert token() == "a1"
    clock.advance(1_400)
    assert token() == "a1"  # still more than the margin left
    clock.advance(150)
    assert token() == "a2"  # within 300 s of expiry: refreshed early
    first, second = (dict(httpx.QueryParams(c.request.content.decode())) for c in route.calls)
    assert first["refresh_token"] == REFRESH and first["grant_type"] == "refresh_token"
    assert second["refresh_token"] == "r2"
    assert {"a1", "r2", "a2"} <= set(seen)


@respx.mock
def test_a_refused_refresh_is_an_auth_error_without_secrets() -> None:
    respx.post(URL).mock(return_value=httpx.Response(400, json={"message": "BAD_REFRESH_TOKEN"}))
    with pytest.raises(AuthError) as caught:
        _token(FakeClock())()
    assert SECRET not in str(caught.value) and REFRESH not in str(caught.value)
    assert SECRET not in repr(_token(FakeClock()))


@respx.mock
def test_a_refresh_that_cannot_reach_hubspot_is_transient() -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("boom"))
    with pytest.raises(TransientHubSpotError):
        _token(FakeClock())()


@respx.mock
def test_a_token_hubspot_refused_is_refreshed_at_once_not_at_its_expiry() -> None:
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "a1", "expires_in": 1800}),
            httpx.Response(200, json={"access_token": "a2", "expires_in": 1800}),
        ]
    )
    clock = FakeClock()
    token = _token(clock)
    assert token() == "a1"
    token.refused("an-older-token")  # a late 401 for a token already replaced: no refresh
    assert token() == "a1"
    token.refused("a1")  # revoked in HubSpot, 25 minutes before it would expire
    assert token() == "a2"


@respx.mock
def test_a_refresh_answered_with_something_other_than_json_is_transient() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(TransientHubSpotError, match="not JSON"):
        _token(FakeClock())()


@respx.mock
def test_the_transport_tells_the_token_source_which_token_hubspot_refused() -> None:
    upsert = "https://hubspot.test/crm/v3/objects/subscriptions/batch/upsert"
    respx.post(upsert).mock(
        side_effect=[
            httpx.Response(401, json={"category": "INVALID_AUTHENTICATION"}),
            httpx.Response(200, json={"results": []}),
        ]
    )

    class Tokens:
        def __init__(self) -> None:
            self.refused_tokens: list[str] = []

        def __call__(self) -> str:
            return f"token-{len(self.refused_tokens)}"

        def refused(self, token: str) -> None:
            self.refused_tokens.append(token)

    tokens = Tokens()
    transport = HttpxUpsertTransport(
        "https://hubspot.test", "/crm/v3/objects/subscriptions/batch/upsert", tokens, timeout_s=5
    )
    assert transport.post(b"{}").status == 401
    assert transport.post(b"{}").status == 200
    assert tokens.refused_tokens == ["token-0"]
    transport.close()
