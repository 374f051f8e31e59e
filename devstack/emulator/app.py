"""The aiohttp application: which HubSpot routes exist and which operation serves each.

Owns the route table (every batch endpoint under `/crm/v3/...` and its date-versioned
`/crm/{objects|associations}/{version}/...` twin), the OAuth token route, the control API
(from `control`) and HubSpot's answer to an unknown path. How a request is handled lives in
`flow`; what each endpoint does, in `upsert`, `objects` and `associations`.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from devstack.emulator import associations
from devstack.emulator.batchio import Outcome, Target
from devstack.emulator.control import STATE, add_control_routes
from devstack.emulator.errors import error_body
from devstack.emulator.flow import Operation, handler
from devstack.emulator.objects import process_create, process_read
from devstack.emulator.state import EmulatorState
from devstack.emulator.upsert import process_upsert

# Bodies of the control API and the token grant; batch bodies are capped by `max_body_bytes`.
OTHER_MAX_BODY_BYTES = 1024 * 1024


def _upsert(state: EmulatorState, target: Target, raw: bytes, seq: int, at: str) -> Outcome:
    return process_upsert(state, target.kind, raw, seq, at)


UPSERT = Operation("upsert", _upsert, content_faults=True)
READ = Operation("read", process_read, access="read")
CREATE = Operation("create", process_create)

ASSOCIATE_DEFAULT = Operation("associate_default", associations.process_default)
ASSOCIATE = Operation("associate", associations.process_create)
READ_ASSOCIATIONS = Operation("read_associations", associations.process_read, access="read")

# (path below /crm/v3/objects/{objectType} or /crm/objects/{version}/{objectType}, operation)
OBJECT_ROUTES = (("/batch/upsert", UPSERT), ("/batch/read", READ), ("/batch/create", CREATE))
# (path below /crm/v4/associations/{from}/{to} or /crm/associations/{version}/{from}/{to}, ...)
ASSOCIATION_ROUTES = (
    ("/batch/associate/default", ASSOCIATE_DEFAULT),
    ("/batch/create", ASSOCIATE),
    ("/batch/read", READ_ASSOCIATIONS),
)


def build_app(state: EmulatorState) -> web.Application:
    """The emulator's aiohttp application around `state`."""
    app = web.Application(client_max_size=OTHER_MAX_BODY_BYTES)
    app[STATE] = state
    for tail, op in OBJECT_ROUTES:
        app.router.add_post(f"/crm/v3/objects/{{objectType}}{tail}", handler(op))
        app.router.add_post(f"/crm/objects/{{version}}/{{objectType}}{tail}", handler(op))
    pair = "{fromObjectType}/{toObjectType}"
    for tail, op in ASSOCIATION_ROUTES:
        app.router.add_post(f"/crm/v4/associations/{pair}{tail}", handler(op))
        app.router.add_post(f"/crm/associations/{{version}}/{pair}{tail}", handler(op))
    app.router.add_post("/oauth/v3/token", handle_token)
    add_control_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle_unknown_path)
    return app


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
