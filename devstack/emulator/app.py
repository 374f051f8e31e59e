"""The aiohttp application: HubSpot's batch upsert routes, and the order things happen in.

Owns the request flow of `POST .../batch/upsert`: read body (at most `max_body_bytes`) ->
gate (auth, limits, headers) -> path check -> body size check -> pick fault -> latency
(asyncio.sleep; the loop never blocks) -> fault "before" or process -> fault "after" ->
answer and log. Refusals (401/403/429/404, and 413 for an oversized body) get no latency and
consume no queued fault; an oversized body is read no further than the cap. Also how a
fault is carried out (error reply, hold then 504, or closing the connection). The control
API lives in `control`; the HubSpot semantics in `upsert`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from devstack.emulator.clock import iso_millis
from devstack.emulator.control import STATE, add_control_routes
from devstack.emulator.errors import (
    ErrorReply,
    RequestRejected,
    body_too_large,
    error_body,
    fault_reply,
)
from devstack.emulator.faults import Fault
from devstack.emulator.gate import admit
from devstack.emulator.state import EmulatorState
from devstack.emulator.store import RequestLogEntry
from devstack.emulator.upsert import UpsertOutcome, process_upsert

# Bodies of the control API and the token grant; upserts are capped by `max_body_bytes`.
OTHER_MAX_BODY_BYTES = 1024 * 1024


@dataclass(slots=True)
class _Exchange:
    """One upsert request in flight: what the request log needs to know about it."""

    request: web.Request
    state: EmulatorState
    seq: int
    received_at: str
    object_type: str
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""
    fault: Fault | None = None


def build_app(state: EmulatorState) -> web.Application:
    """The emulator's aiohttp application around `state`."""
    app = web.Application(client_max_size=OTHER_MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_post("/crm/v3/objects/{objectType}/batch/upsert", handle_upsert)
    app.router.add_post("/crm/objects/{version}/{objectType}/batch/upsert", handle_upsert)
    app.router.add_post("/oauth/v3/token", handle_token)
    add_control_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle_unknown_path)
    return app


async def handle_upsert(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    ex = _Exchange(
        request,
        state,
        seq=state.store.next_seq(),
        received_at=iso_millis(state.clock.now()),
        object_type=request.match_info["objectType"],
    )
    cap = state.config.max_body_bytes
    body = await _read_capped(request, cap)
    ex.raw = body if body is not None else b""
    admission = admit(state, request.headers.get("Authorization"), ex.object_type)
    ex.headers = admission.headers
    refusal = admission.reply or _path_error(state, request)
    if refusal is None and body is None:
        refusal = body_too_large(cap)
    if refusal is not None:
        return _reply_error(ex, refusal)
    ex.fault = state.faults.next(state.config.fault_rates, state.config.fault_when)
    await _latency(state)
    if ex.fault is not None and ex.fault.when == "before":
        return await _carry_out(ex, ex.fault, applied=0)
    return await _process(ex)


async def handle_token(request: web.Request) -> web.Response:
    """HubSpot's OAuth refresh-token grant: new access and refresh tokens, or a 400."""
    state = request.app[STATE]
    form = {key: str(value) for key, value in (await request.post()).items()}
    issued = state.oauth.refresh(state.config, form)
    if issued is None:
        body = {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}
        return web.json_response(body, status=400)
    return web.json_response(issued)


async def handle_unknown_path(request: web.Request) -> web.Response:
    body = error_body(f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND")
    return web.Response(status=404, body=orjson.dumps(body), content_type="application/json")


async def _process(ex: _Exchange) -> web.StreamResponse:
    try:
        outcome = process_upsert(ex.state, ex.object_type, ex.raw, ex.seq, ex.received_at)
    except RequestRejected as exc:
        if ex.fault is not None:  # the fault strikes whatever the processing said
            return await _carry_out(ex, ex.fault, applied=0)
        return _reply_error(ex, ErrorReply(exc.status, exc.body, exc.headers))
    if ex.fault is not None:
        return await _carry_out(ex, ex.fault, applied=outcome.applied, outcome=outcome)
    return _answer(ex, outcome.status, outcome.body, {}, outcome)


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The body, or None as soon as it is known to be over `cap` bytes (the rest unread)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)


def _path_error(state: EmulatorState, request: web.Request) -> ErrorReply | None:
    cfg = state.config
    version = request.match_info.get("version")
    if version is not None and version not in cfg.api_versions:
        message = f"Unknown API version {version!r} in {request.path}"
        return ErrorReply(404, error_body(message, "OBJECT_NOT_FOUND"))
    object_type = request.match_info["objectType"]
    if object_type not in cfg.object_types:
        message = f"Unable to infer object type from: {object_type}"
        return ErrorReply(400, error_body(message, "VALIDATION_ERROR"))
    return None


async def _latency(state: EmulatorState) -> None:
    cfg = state.config
    delay_ms = cfg.latency_ms + (state.rng.uniform(0, cfg.jitter_ms) if cfg.jitter_ms else 0)
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)


async def _carry_out(
    ex: _Exchange, fault: Fault, *, applied: int, outcome: UpsertOutcome | None = None
) -> web.StreamResponse:
    cfg = ex.state.config
    if fault.kind == "drop":
        if ex.request.transport is not None:
            ex.request.transport.close()
        _log(ex, None, outcome, applied)
        return web.Response(status=500)  # never sent: the connection is already closed
    if fault.kind == "timeout":
        await asyncio.sleep(cfg.timeout_hold_seconds)
        reply = fault_reply(504, cfg.retry_after_seconds)
    else:
        reply = fault_reply(int(fault.kind), cfg.retry_after_seconds)
    return _answer(ex, reply.status, reply.body, reply.headers, outcome, applied=applied)


def _reply_error(ex: _Exchange, reply: ErrorReply) -> web.Response:
    return _answer(ex, reply.status, reply.body, reply.headers, None)


def _answer(
    ex: _Exchange,
    status: int,
    body: dict[str, Any],
    extra_headers: dict[str, str],
    outcome: UpsertOutcome | None,
    *,
    applied: int | None = None,
) -> web.Response:
    done = applied if applied is not None else (outcome.applied if outcome else 0)
    _log(ex, status, outcome, done)
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={**ex.headers, **extra_headers},
    )


def _log(ex: _Exchange, status: int | None, outcome: UpsertOutcome | None, applied: int) -> None:
    trace_ids = outcome.trace_ids if outcome is not None else _peek_trace_ids(ex.raw)
    ex.state.store.log_request(
        RequestLogEntry(
            seq=ex.seq,
            path=ex.request.path,
            object_type=ex.object_type,
            status=status,
            inputs=len(trace_ids),
            received_at=ex.received_at,
            answered_at=iso_millis(ex.state.clock.now()),
            trace_ids=trace_ids,
            fault=ex.fault.kind if ex.fault is not None else None,
            applied=applied,
        )
    )


def _peek_trace_ids(raw: bytes) -> list[str | None]:
    """Best effort, for requests not fully parsed: one entry per input, its trace id."""
    try:
        inputs = orjson.loads(raw).get("inputs") if raw else None
    except (orjson.JSONDecodeError, AttributeError):
        return []
    if not isinstance(inputs, list):
        return []
    return [i.get("objectWriteTraceId") if isinstance(i, dict) else None for i in inputs]
