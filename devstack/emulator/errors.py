"""HubSpot-shaped error bodies, and the exception that carries one to the HTTP layer.

Owns the exact wording and fields of every error the emulator returns: whole-request errors
(`{status, message, correlationId, category, ...}`), the two 429 bodies, the per-input
`StandardError` of a 207, and the bodies of injected faults. It builds dicts only; it knows
nothing about aiohttp, the store or the config.

Property errors follow HubSpot's recorded answers: the message `Property values were not
valid: [{"isValid":false,"message":...,"error":"PROPERTY_DOESNT_EXIST","name":"x"}]` and one
`errors[]` detail per property, `{message, code, context: {propertyName: ["x"]}}`; a
read-only property's message is "x is a read only property; its value cannot be set."
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson


def correlation_id() -> str:
    """A fresh correlation id (a UUID, as HubSpot's `Error` schema expects)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid property of one input, in HubSpot's property-validation vocabulary."""

    name: str
    error: str
    message: str

    def as_validation_result(self) -> dict[str, Any]:
        return {"isValid": False, "message": self.message, "error": self.error, "name": self.name}

    def as_detail(self) -> dict[str, Any]:
        """An `ErrorDetail`, naming the property as HubSpot does: context.propertyName."""
        return {
            "message": self.message,
            "code": self.error,
            "context": {"propertyName": [self.name]},
        }


class RequestRejected(Exception):  # noqa: N818 - a rejection, not a bug in the emulator
    """A whole-request error: HTTP `status` with a HubSpot-shaped `body`."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error answer ready to send (status, body, extra headers)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """The general error shape: `{status:"error", message, correlationId, category, ...}`."""
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
        **extra,
    }


def validation_error(message: str, **extra: Any) -> RequestRejected:
    return RequestRejected(400, error_body(message, "VALIDATION_ERROR", **extra))


def body_too_large(limit_bytes: int) -> ErrorReply:
    """The 413 for a body over the configured byte cap (HubSpot documents no limit)."""
    message = f"The request body is larger than the {limit_bytes} bytes allowed"
    return ErrorReply(413, error_body(message, "VALIDATION_ERROR"))


def problems_message(problems: list[Problem]) -> str:
    """`Property values were not valid: [{"isValid":false,...}]` (compact JSON, HubSpot's)."""
    listed = orjson.dumps([p.as_validation_result() for p in problems]).decode()
    return f"Property values were not valid: {listed}"


def input_error(problems: list[Problem], trace_id: str) -> dict[str, Any]:
    """One entry of a 207's `errors[]` (HubSpot's `StandardError`): one per bad input, all its
    problems in the message and one `errors[]` detail per offending property."""
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": problems_message(problems),
        "context": {"objectWriteTraceId": [trace_id]},
        "errors": [p.as_detail() for p in problems],
        "links": {},
    }


def invalid_properties(problems: list[Problem]) -> RequestRejected:
    """The 400 for bad inputs when multi-status is off: no per-input context."""
    details = [p.as_detail() for p in problems]
    return validation_error(problems_message(problems), errors=details)


def unauthenticated() -> ErrorReply:
    message = (
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
    )
    return ErrorReply(401, error_body(message, "INVALID_AUTHENTICATION"))


def missing_scopes(scope: str) -> ErrorReply:
    message = "This app hasn't been granted all required scopes to make this call."
    body = error_body(
        message,
        "MISSING_SCOPES",
        errors=[{"message": f"One or more of the following scopes are required: [{scope}]"}],
        context={"requiredGranularScopes": [scope]},
    )
    return ErrorReply(403, body)


def rate_limited(policy: str, *, category_variant: bool) -> dict[str, Any]:
    """A 429 body. `policy` is TEN_SECONDLY_ROLLING or DAILY."""
    if policy == "DAILY":
        message = "You have reached your daily limit."
    else:
        message = f"You have reached your {policy.lower()} limit."
    cid = correlation_id()
    if category_variant:
        return {
            "status": "error",
            "message": message,
            "correlationId": cid,
            "category": "RATE_LIMITS",
        }
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": cid,
        "policyName": policy,
        "requestId": correlation_id(),
    }


_FAULTS: dict[int, tuple[str, str]] = {
    500: ("internal error", "INTERNAL_ERROR"),
    502: ("Bad gateway: the upstream service did not answer properly.", "BAD_GATEWAY"),
    503: ("Service temporarily unavailable. Please retry.", "SERVICE_UNAVAILABLE"),
    504: ("Gateway timeout: the request took too long to process.", "GATEWAY_TIMEOUT"),
    521: ("Web server is down.", "WEB_SERVER_DOWN"),
    523: ("Origin is unreachable.", "ORIGIN_UNREACHABLE"),
    524: ("A timeout occurred.", "TIMEOUT"),
    423: ("The object is locked by another write. Wait at least 2 seconds and retry.", "LOCKED"),
    477: (
        "Migration in progress. Retry after the time in the Retry-After header.",
        "MIGRATION_IN_PROGRESS",
    ),
}


def fault_reply(status: int, retry_after_seconds: int) -> ErrorReply:
    """The answer of an injected fault with this HTTP status."""
    message, category = _FAULTS[status]
    headers = {"Retry-After": str(retry_after_seconds)} if status == 477 else {}
    return ErrorReply(status, error_body(message, category), headers)
