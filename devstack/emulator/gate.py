"""The door of the upsert endpoint: authentication, scopes, both rate limits, and the
`X-HubSpot-RateLimit-*` headers every answer carries.

Owns the order of those checks and what each costs: 401/403 count against the presented
token's burst window (they are not 429s), a 429 counts against nothing, and an admitted
request counts once in the burst window and once in the daily budget. It decides; it does
not write HTTP responses.
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


def admit(state: EmulatorState, authorization: str | None, object_type: str) -> Admission:
    """Check credentials, then the daily and burst budgets, counting as HubSpot does."""
    cfg = state.config
    token = bearer_token(authorization)
    key = token or ""
    interval_s = cfg.rate_limit_interval_ms / 1000
    auth_error = _auth_error(cfg, token, object_type, state.oauth.valid(token))
    if auth_error is not None:
        burst = state.window.record(key, cfg.rate_limit_max, interval_s)
        return Admission(auth_error, rate_headers(cfg, burst, state.daily.peek(cfg.daily_limit)))
    daily = state.daily.peek(cfg.daily_limit)
    if not daily.allowed:
        burst = state.window.peek(key, cfg.rate_limit_max, interval_s)
        return _too_many(cfg, "DAILY", burst, daily, daily.retry_after_s)
    burst = state.window.acquire(key, cfg.rate_limit_max, interval_s)
    if not burst.allowed:
        return _too_many(cfg, "TEN_SECONDLY_ROLLING", burst, daily, burst.retry_after_s)
    daily = state.daily.acquire(cfg.daily_limit)
    return Admission(None, rate_headers(cfg, burst, daily))


def rate_headers(cfg: EmulatorConfig, burst: Budget, daily: Budget) -> dict[str, str]:
    """`X-HubSpot-RateLimit-*`; an unlimited budget shows as 2147483647."""
    headers = {
        "X-HubSpot-RateLimit-Max": _show(burst.limit),
        "X-HubSpot-RateLimit-Remaining": _show(burst.remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_limit_interval_ms),
    }
    if cfg.daily_headers:
        headers["X-HubSpot-RateLimit-Daily"] = _show(daily.limit)
        headers["X-HubSpot-RateLimit-Daily-Remaining"] = _show(daily.remaining)
    return headers


def _auth_error(
    cfg: EmulatorConfig, token: str | None, object_type: str, oauth_valid: bool
) -> ErrorReply | None:
    if token is None:
        return unauthenticated()
    if token in cfg.no_scope_tokens:
        return missing_scopes(f"crm.objects.{object_type}.write")
    if token in cfg.tokens or cfg.accept_any_token or oauth_valid:
        return None
    return unauthenticated()


def _too_many(
    cfg: EmulatorConfig, policy: str, burst: Budget, daily: Budget, retry_after_s: float
) -> Admission:
    headers = rate_headers(cfg, burst, daily)
    if cfg.retry_after_on_429:
        headers["Retry-After"] = retry_after_header(retry_after_s)
    body = rate_limited(policy, category_variant=cfg.rate_limit_body == "category")
    return Admission(ErrorReply(429, body), headers)


def _show(value: int | None) -> str:
    return str(UNLIMITED_HEADER_VALUE if value is None else value)
