"""The door of every HubSpot endpoint: authentication, scopes, both rate limits (one budget
per app, whatever the endpoint), and the `X-HubSpot-RateLimit-*` headers every answer carries.

Owns the order of those checks and what each costs: 401/403 count against the presented
token's burst window (they are not 429s), a 429 counts against nothing, and an admitted
request counts once in the burst window and once in the daily budget. The burst window is
per app: a private-app token's own, or one per OAuth client shared by all the access tokens
issued to it. OAuth apps get no daily headers and, unless `oauth_daily_limit`, no daily
limit. It decides; it does not write HTTP responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.emulator.config import EmulatorConfig
from devstack.emulator.errors import ErrorReply, missing_scopes, rate_limited, unauthenticated
from devstack.emulator.ratelimit import UNLIMITED_HEADER_VALUE, Budget, retry_after_header
from devstack.emulator.state import EmulatorState


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's verdict: `reply` is None when admitted; `headers` go on every answer."""

    reply: ErrorReply | None
    headers: dict[str, str] = field(default_factory=dict)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def admit(state: EmulatorState, authorization: str | None, scope: str) -> Admission:
    """Check credentials (`scope` names the scope a no-scope token lacks), then the daily and
    burst budgets, counting as HubSpot does."""
    cfg = state.config
    caller = _caller_of(state, authorization)
    key = caller.window_key
    interval_s = cfg.rate_limit_interval_ms / 1000
    daily = _daily_peek(state, caller)
    auth_error = _auth_error(cfg, caller.token, scope, state.oauth.valid(caller.token))
    if auth_error is not None:
        burst = state.window.record(key, cfg.rate_limit_max, interval_s)
        return Admission(auth_error, _headers(cfg, caller, burst, daily))
    if daily is not None and not daily.allowed:
        burst = state.window.peek(key, cfg.rate_limit_max, interval_s)
        headers = _headers(cfg, caller, burst, daily)
        return _too_many(cfg, "DAILY", headers, daily.retry_after_s)
    burst = state.window.acquire(key, cfg.rate_limit_max, interval_s)
    if not burst.allowed:
        headers = _headers(cfg, caller, burst, daily)
        return _too_many(cfg, "TEN_SECONDLY_ROLLING", headers, burst.retry_after_s)
    if daily is not None:
        daily = state.daily.acquire(cfg.daily_limit)
    return Admission(None, _headers(cfg, caller, burst, daily))


def rate_headers(cfg: EmulatorConfig, burst: Budget, daily: Budget | None) -> dict[str, str]:
    """`X-HubSpot-RateLimit-*`; an unlimited budget shows as 2147483647; no daily budget
    (or `daily_headers` off) leaves out the two daily headers."""
    headers = {
        "X-HubSpot-RateLimit-Max": _show(burst.limit),
        "X-HubSpot-RateLimit-Remaining": _show(burst.remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_limit_interval_ms),
    }
    if cfg.daily_headers and daily is not None:
        headers["X-HubSpot-RateLimit-Daily"] = _show(daily.limit)
        headers["X-HubSpot-RateLimit-Daily-Remaining"] = _show(daily.remaining)
    return headers


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who presents a request, as the limits see it.

    `window_key` names the burst window: the token itself, or `oauth:<client id>` for an
    OAuth-issued access token (HubSpot's burst limit is per app, so refreshed access tokens
    share one window). `oauth` is True for any token the OAuth issuer gave out.
    """

    token: str | None
    window_key: str
    oauth: bool


def _caller_of(state: EmulatorState, authorization: str | None) -> _Caller:
    token = bearer_token(authorization)
    client_id = state.oauth.client_of(token)
    if client_id is None:
        return _Caller(token, token or "", oauth=False)
    return _Caller(token, f"oauth:{client_id}", oauth=True)


def _daily_peek(state: EmulatorState, caller: _Caller) -> Budget | None:
    """The daily budget `caller` is held to, or None: HubSpot states no daily limit for OAuth
    apps, so one applies to them only with `oauth_daily_limit`."""
    if caller.oauth and not state.config.oauth_daily_limit:
        return None
    return state.daily.peek(state.config.daily_limit)


def _headers(
    cfg: EmulatorConfig, caller: _Caller, burst: Budget, daily: Budget | None
) -> dict[str, str]:
    """OAuth apps never get the daily headers, even when a daily limit is applied to them."""
    return rate_headers(cfg, burst, None if caller.oauth else daily)


def _auth_error(
    cfg: EmulatorConfig, token: str | None, scope: str, oauth_valid: bool
) -> ErrorReply | None:
    if token is None:
        return unauthenticated()
    if token in cfg.no_scope_tokens:
        return missing_scopes(scope)
    if token in cfg.tokens or cfg.accept_any_token or oauth_valid:
        return None
    return unauthenticated()


def _too_many(
    cfg: EmulatorConfig, policy: str, headers: dict[str, str], retry_after_s: float
) -> Admission:
    if cfg.retry_after_on_429:
        headers["Retry-After"] = retry_after_header(retry_after_s)
    body = rate_limited(policy, category_variant=cfg.rate_limit_body == "category")
    return Admission(ErrorReply(429, body), headers)


def _show(value: int | None) -> str:
    return str(UNLIMITED_HEADER_VALUE if value is None else value)
