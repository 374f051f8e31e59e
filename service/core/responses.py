"""Reads HubSpot's answers: what kind of reply it is, and what it says about each input. Pure.

Classification follows HubSpot's retry guidance (docs/hubspot-api.md): any 2xx is a success
(200 or 207 multi-status); 429 is rate limiting (burst or daily, from `policyName` or else
the message, or `category: RATE_LIMITS` in the body, which some 5xx carry too); 5xx, 423 and 477 are
transient; 401/403 are credential problems; other 4xx reject the whole request.
Every body field is treated as optional.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum

import orjson

TRANSIENT_STATUSES = frozenset({500, 502, 503, 504, 521, 523, 524, 423, 477})
RATE_LIMIT_POLICIES = frozenset({"TEN_SECONDLY_ROLLING", "SECONDLY", "DAILY"})
UNSPECIFIED_POLICY = "UNSPECIFIED"
LOCKED_MIN_WAIT_S = 2.0
MAX_RETRY_AFTER_S = 300.0


class ReplyKind(StrEnum):
    SUCCESS = "success"
    RATE_LIMITED = "rate_limited"
    DAILY_LIMITED = "daily_limited"
    TRANSIENT = "transient"
    AUTH = "auth"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An HTTP response as the transport saw it; header names lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Classified:
    """What a reply means for the caller."""

    kind: ReplyKind
    status: int
    category: str | None
    message: str
    retry_after_s: float | None
    document: dict[str, object] | None
    policy: str | None = None  # a rate limit's policyName, upper-case (see rate_limit_policy)


def parse_body(body: bytes) -> dict[str, object] | None:
    """The JSON object in a body, or None when it is empty or not an object."""
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def classify(reply: HttpReply, now_wall: float | None = None) -> Classified:
    """Decide what a reply means: success, rate limited, transient, auth or rejected.
    `now_wall` (Unix seconds) reads a `Retry-After` given as an HTTP date."""
    document = parse_body(reply.body)
    category = _text(document, "category")
    message = _text(document, "message") or f"HTTP {reply.status}"
    policy = _policy(document, message)
    kind = _kind(reply.status, policy, category)
    retry_after = retry_after_seconds(reply.headers, now_wall)
    if reply.status == 423:
        retry_after = max(retry_after or 0.0, LOCKED_MIN_WAIT_S)
    return Classified(kind, reply.status, category, message, retry_after, document, policy)


def _policy(document: dict[str, object] | None, message: str) -> str | None:
    """`policyName`; without one, DAILY when the message speaks of the daily limit (as in
    "You have reached your daily limit.")."""
    named = _text(document, "policyName")
    if named:
        return named.upper()
    return "DAILY" if "daily" in message.lower() else None


def _kind(status: int, policy: str | None, category: str | None) -> ReplyKind:
    if 200 <= status < 300:
        return ReplyKind.SUCCESS
    if status == 429 or category == "RATE_LIMITS":
        return ReplyKind.DAILY_LIMITED if policy == "DAILY" else ReplyKind.RATE_LIMITED
    if status in TRANSIENT_STATUSES or status >= 500:
        return ReplyKind.TRANSIENT
    if status in (401, 403):
        return ReplyKind.AUTH
    return ReplyKind.REJECTED


def policy_label(policy: str | None) -> str:
    """A rate limit's policy as a bounded metric label: one of RATE_LIMIT_POLICIES, or
    UNSPECIFIED (none given, as in a `category: RATE_LIMITS` body or a per-input rate-limit
    error, or a name this service does not know)."""
    return policy if policy in RATE_LIMIT_POLICIES else UNSPECIFIED_POLICY


def retry_after_seconds(headers: Mapping[str, str], now_wall: float | None = None) -> float | None:
    """`Retry-After` in seconds when present: a finite number, or an HTTP date (from
    `now_wall`); `inf`, `nan` and anything unreadable are ignored. At most MAX_RETRY_AFTER_S:
    a proxy's huge value must not park the sender."""
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, now_wall)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _seconds_until(http_date: str, now_wall: float | None) -> float | None:
    if now_wall is None:
        return None
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC by RFC 5322
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now_wall


def _text(document: Mapping[str, object] | None, name: str) -> str | None:
    if document is None:
        return None
    value = document.get(name)
    return value if isinstance(value, str) else None
