"""The fake portal's HTTP face: the REST endpoint plus the admin API, one Starlette app.

The app has no lifespan (httpx's ASGITransport would not run one), and all state lives on
the `FakePortal` that built it, so a test owns it like any other object.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.errors import MalformedEvent
from bot.formparse import parse_form
from bot.sandbox.admin import admin_routes
from bot.sandbox.admin_v2 import admin_v2_routes
from bot.sandbox.batch import GENEROUS_LIMITS
from bot.sandbox.dispatch import Answer
from bot.sandbox.methods import Params

if TYPE_CHECKING:
    from bot.sandbox import FakePortal

HOLD_POLL_SECONDS = 0.02


async def read_params(request: Request) -> Params | str:
    """Query string and body merged like PHP's $_REQUEST; a string says why parsing failed."""
    try:
        query = request.url.query.encode()
        params: Params = parse_form(query, GENEROUS_LIMITS) if query else {}
        body = await request.body()
        if not body.strip():
            return params
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        data: Any = (
            json.loads(body) if media == "application/json" else parse_form(body, GENEROUS_LIMITS)
        )
    except MalformedEvent as exc:
        return exc.message
    except ValueError:
        return "Request body is not valid JSON"
    if not isinstance(data, dict):
        return "Request body must be a JSON object"
    params.update(data)
    return params


def render(answer: Answer, background: BackgroundTask | None = None) -> Response:
    if answer.html is not None:
        return HTMLResponse(answer.html, status_code=answer.status, background=background)
    return JSONResponse(answer.body, status_code=answer.status, background=background)


async def wait_while_held(portal: FakePortal) -> None:
    """Park the request while the portal is held.

    A flag polled with a short sleep (not an asyncio.Event) because `hold()` is usually called
    from another thread than the one running the app's event loop.
    """
    if not portal.state.held:
        return
    with portal.lock:
        portal.state.counters.held_now += 1
    try:
        while portal.state.held:  # noqa: ASYNC110 - a cross-thread flag, see the docstring
            await asyncio.sleep(HOLD_POLL_SECONDS)
    finally:
        with portal.lock:
            portal.state.counters.held_now -= 1


def create_app(portal: FakePortal) -> Starlette:
    async def rest(request: Request) -> Response:
        user_id = str(request.path_params["user_id"])
        code = str(request.path_params["code"])
        method = str(request.path_params["method"]).lower().removesuffix(".json")
        params = await read_params(request)
        await wait_while_held(portal)
        with portal.lock:
            answer = portal.dispatcher.request(user_id, code, method, params)
            owed = bool(portal.state.v2.outbox)
        # A call that made the portal owe a POST (Bot.unregister's ONIMBOTV2DELETE to a
        # webhook-mode bot) sends it after the answer, as the platform's queue would.
        return render(answer, BackgroundTask(portal.deliver) if owed else None)

    routes = [
        Route("/rest/{user_id}/{code}/{method}", rest, methods=["GET", "POST"]),
        *admin_routes(portal),
        *admin_v2_routes(portal),
    ]
    return Starlette(routes=routes)
