"""The order every request to a HubSpot batch endpoint is handled in, whatever the endpoint.

Owns the request flow: read body (at most `max_body_bytes`) -> outage (every request gets
the outage fault, before anything else) -> gate (auth, limits, headers) -> path check (API
version, object types) -> body size check -> pick fault (a content rule, else queued, else
random) -> latency (asyncio.sleep; the loop never blocks) -> fault "before" or process ->
fault "after" -> answer and log. Refusals (401/403/429/400/404, and 413 for an oversized
body) get no latency and consume no queued fault; an oversized body is read no further than
the cap. Also how a fault is carried out (error reply, hold then 504, or closing the
connection). Each endpoint is an `Operation`: its name (in the request log and for queued
faults), the scope it needs, and a synchronous `process` that does HubSpot's semantics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from devstack.emulator.batchio import Outcome, Target
from devstack.emulator.clock import iso_millis
from devstack.emulator.control import STATE
from devstack.emulator.errors import (
    ErrorReply,
    RequestRejected,
    body_too_large,
    error_body,
    fault_reply,
)
from devstack.emulator.faults import Fault, content_fault, make_fault
from devstack.emulator.gate import admit
from devstack.emulator.state import EmulatorState
from devstack.emulator.store import RequestLogEntry

Process = Callable[[EmulatorState, Target, bytes, int, str], Outcome]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One HubSpot endpoint: `process(state, target, raw body, request seq, requestedAt)`
    returns its outcome or raises RequestRejected for a whole-request error."""

    name: str  # "upsert", "read", "associate_default", ...
    process: Process
    access: str = "write"  # the scope needed is crm.objects.<type>.<access>
    content_faults: bool = False  # whether content_faults rules apply to it


@dataclass(slots=True)
class _Exchange:
    """One request in flight: what the request log needs to know about it."""

    request: web.Request
    state: EmulatorState
    op: Operation
    seq: int
    received_at: str
    object_type: str
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""
    fault: Fault | None = None


def handler(op: Operation) -> Handler:
    """The aiohttp handler of one operation."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _handle(request, op)

    return handle


async def _handle(request: web.Request, op: Operation) -> web.StreamResponse:
    state = request.app[STATE]
    names = request.match_info
    ex = _Exchange(
        request,
        state,
        op,
        seq=state.store.next_seq(),
        received_at=iso_millis(state.clock.now()),
        object_type=names.get("objectType") or names.get("fromObjectType", ""),
    )
    cap = state.config.max_body_bytes
    body = await _read_capped(request, cap)
    ex.raw = body if body is not None else b""
    if state.config.outage is not None:
        ex.fault = make_fault(state.config.outage, "before")
        return await _carry_out(ex, ex.fault, applied=0)
    target = _admit(ex, too_large=body is None)
    if isinstance(target, ErrorReply):
        return _reply_error(ex, target)
    ex.fault = _pick_fault(ex, target)
    await _latency(state)
    if ex.fault is not None and ex.fault.when == "before":
        return await _carry_out(ex, ex.fault, applied=0)
    return await _process(ex, target)


def _admit(ex: _Exchange, *, too_large: bool) -> Target | ErrorReply:
    """The request's target, or the refusal to answer instead of processing it."""
    state, request = ex.state, ex.request
    found = _target(state, request)
    if isinstance(found, Target):
        ex.object_type = found.kind.name
    scope = f"crm.objects.{ex.object_type}.{ex.op.access}"
    admission = admit(state, request.headers.get("Authorization"), scope)
    ex.headers = admission.headers
    if admission.reply is not None:
        return admission.reply
    if isinstance(found, ErrorReply):
        return found
    return body_too_large(state.config.max_body_bytes) if too_large else found


def _target(state: EmulatorState, request: web.Request) -> Target | ErrorReply:
    """The object type(s) the path names, or HubSpot's answer to an unknown one."""
    names = request.match_info
    version = names.get("version")
    if version is not None and version not in state.config.api_versions:
        message = f"Unknown API version {version!r} in {request.path}"
        return ErrorReply(404, error_body(message, "OBJECT_NOT_FOUND"))
    wanted = [names[k] for k in ("objectType", "fromObjectType", "toObjectType") if k in names]
    kinds = []
    for name in wanted:
        kind = state.catalog.resolve(name)
        if kind is None:
            message = f"Unable to infer object type from: {name}"
            return ErrorReply(400, error_body(message, "VALIDATION_ERROR"))
        kinds.append(kind)
    return Target(kinds[0], kinds[1] if len(kinds) > 1 else None)


def _pick_fault(ex: _Exchange, target: Target) -> Fault | None:
    cfg = ex.state.config
    if ex.op.content_faults and cfg.content_faults:
        fault = content_fault(cfg.content_faults, target.kind.name, ex.raw)
        if fault is not None:
            return fault
    return ex.state.faults.next(cfg.fault_rates, cfg.fault_when, ex.op.name)


async def _process(ex: _Exchange, target: Target) -> web.StreamResponse:
    try:
        outcome = ex.op.process(ex.state, target, ex.raw, ex.seq, ex.received_at)
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


async def _latency(state: EmulatorState) -> None:
    cfg = state.config
    delay_ms = cfg.latency_ms + (state.rng.uniform(0, cfg.jitter_ms) if cfg.jitter_ms else 0)
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)


async def _carry_out(
    ex: _Exchange, fault: Fault, *, applied: int, outcome: Outcome | None = None
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
    outcome: Outcome | None,
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


def _log(ex: _Exchange, status: int | None, outcome: Outcome | None, applied: int) -> None:
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
            operation=ex.op.name,
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
