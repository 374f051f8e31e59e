"""The control API under `/_emulator/`: look inside the emulator and steer it at run time.

Owns these routes (no token, never rate limited, never logged as upserts):

    GET  /_emulator/health                     {"status": "ok"}
    GET  /_emulator/store?objectType=T         {"<id value>": {hubspotId, idProperty, ...}}
                                               (records created, not upserted, are keyed
                                               by HubSpot id: idProperty hs_object_id)
    GET  /_emulator/history?objectType=T       {"<id value>": [{traceId, properties, at, ...}]}
    POST /_emulator/objects/{objectType}       {"records": [{"email": "a@x.io"}, ...]}
                                               -> {"ids": [HubSpot id per record]}: created
                                               as batch/create would, without the gate
    GET  /_emulator/associations?fromObjectType=F&toObjectType=T
                                               [{fromObjectType, fromObjectId, toObjectType,
                                               toObjectId, category, typeId}] (both optional)
    GET  /_emulator/requests                   [{seq, path, operation, status, inputs, ...}]
    GET  /_emulator/stats                      counts by status, inputs, window and daily use
    GET  /_emulator/config                     the current config
    POST /_emulator/config                     JSON patch of config fields -> the new config
    GET  /_emulator/faults                     queued faults
    POST /_emulator/faults/next                {"fault": "503", "count": 2, "when": "before",
                                               "operation": "upsert"} (operation optional)
    DELETE /_emulator/faults                   drop queued faults
    POST /_emulator/reset                      forget data, counts, queued faults;
                                               {"config": true} also restores the start config
    POST /_emulator/daily/reset                start a new day; {"resetAt": ISO} sets the next

Bad control input answers 400 `{"error": "..."}`. It does not implement HubSpot behaviour.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from devstack.emulator.clock import iso_millis
from devstack.emulator.config import ConfigError
from devstack.emulator.errors import RequestRejected
from devstack.emulator.objects import create_records
from devstack.emulator.state import EmulatorState

STATE = web.AppKey("emulator_state", EmulatorState)
PREFIX = "/_emulator"


def add_control_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(f"{PREFIX}/health", _health)
    router.add_get(f"{PREFIX}/store", _store)
    router.add_get(f"{PREFIX}/history", _history)
    router.add_post(PREFIX + "/objects/{objectType}", _seed_objects)
    router.add_get(f"{PREFIX}/associations", _associations)
    router.add_get(f"{PREFIX}/requests", _requests)
    router.add_get(f"{PREFIX}/stats", _stats)
    router.add_get(f"{PREFIX}/config", _get_config)
    router.add_post(f"{PREFIX}/config", _patch_config)
    router.add_get(f"{PREFIX}/faults", _get_faults)
    router.add_post(f"{PREFIX}/faults/next", _queue_fault)
    router.add_delete(f"{PREFIX}/faults", _clear_faults)
    router.add_post(f"{PREFIX}/reset", _reset)
    router.add_post(f"{PREFIX}/daily/reset", _reset_daily)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _bad(message: str) -> web.Response:
    return _json({"error": message}, status=400)


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE]


def _object_type(request: web.Request) -> str:
    state = _state(request)
    default = "subscriptions"
    if default not in state.config.object_types:
        default = min(state.config.object_types)
    name = request.query.get("objectType", default)
    kind = state.catalog.resolve(name)
    return kind.name if kind is not None else name


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _store(request: web.Request) -> web.Response:
    return _json(_state(request).store.records(_object_type(request)))


async def _history(request: web.Request) -> web.Response:
    return _json(_state(request).store.history(_object_type(request)))


async def _seed_objects(request: web.Request) -> web.Response:
    state = _state(request)
    name = request.match_info["objectType"]
    kind = state.catalog.resolve(name)
    if kind is None:
        return _bad(f"unknown object type {name!r}")
    try:
        rows = (await _body(request)).get("records")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError('"records" must be a list of objects of properties')
        created = create_records(state, kind, rows, iso_millis(state.clock.now()))
    except ValueError as exc:
        return _bad(str(exc))
    except RequestRejected as exc:
        return _bad(str(exc.body.get("message", exc)))
    return _json({"ids": [hubspot_id for hubspot_id, *_ in created]})


async def _associations(request: web.Request) -> web.Response:
    state, query = _state(request), request.query
    names = [query.get("fromObjectType"), query.get("toObjectType")]
    kinds = [state.catalog.resolve(name) if name else None for name in names]
    for name, kind in zip(names, kinds, strict=True):
        if name and kind is None:
            return _bad(f"unknown object type {name!r}")
    from_type, to_type = (kind.name if kind else None for kind in kinds)
    return _json(state.store.associations(from_type, to_type))


async def _requests(request: web.Request) -> web.Response:
    return _json(_state(request).store.requests())


async def _stats(request: web.Request) -> web.Response:
    return _json(_state(request).stats())


async def _get_config(request: web.Request) -> web.Response:
    return _json(_state(request).config.to_dict())


async def _patch_config(request: web.Request) -> web.Response:
    try:
        config = _state(request).configure(await _body(request))
    except (ConfigError, ValueError) as exc:
        return _bad(str(exc))
    return _json(config.to_dict())


async def _get_faults(request: web.Request) -> web.Response:
    return _json(_state(request).faults.pending())


async def _queue_fault(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
        fault, count, when = str(body["fault"]), int(body.get("count", 1)), body.get("when")
        operation = body.get("operation")
        if operation is not None and not isinstance(operation, str):
            raise ValueError('"operation" must be a string, e.g. "upsert"')
        _state(request).faults.queue(fault, count, str(when or "before"), operation)
    except KeyError:
        return _bad('"fault" is required, e.g. {"fault": "503", "count": 2, "when": "before"}')
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return _json({"pending": _state(request).faults.pending()})


async def _clear_faults(request: web.Request) -> web.Response:
    _state(request).faults.clear()
    return _json({"pending": []})


async def _reset(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
    except ValueError as exc:
        return _bad(str(exc))
    _state(request).reset(restore_config=bool(body.get("config", False)))
    return _json({"status": "reset"})


async def _reset_daily(request: web.Request) -> web.Response:
    try:
        body = await _body(request)
        next_reset = _state(request).reset_daily(body.get("resetAt"))
    except ValueError as exc:
        return _bad(str(exc))
    return _json({"status": "reset", "nextResetAt": iso_millis(next_reset)})
