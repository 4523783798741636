"""`/_admin/*`: drive and inspect the fake from another process (a demo, a container test).

Every endpoint is a thin wrapper over a `Portal` method, so in-process tests and
out-of-process ones exercise the same code. Nothing here ever shows a webhook code.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.portal import Portal
from bot.sandbox.views import call_json, user_json

Handler = Callable[[Request], Awaitable[Response]]


class BadAdminRequest(ValueError):
    pass


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadAdminRequest("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadAdminRequest("body must be a JSON object")
    return data


def _endpoint(action: Callable[[dict[str, Any]], Any]) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            result = action(await json_body(request))
        except (BadAdminRequest, KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=400)
        return JSONResponse({"ok": True} if result is None else result)

    return handle


def admin_routes(portal: Portal) -> list[Route]:
    async def state(_: Request) -> Response:
        return JSONResponse(portal.snapshot())

    async def calls(request: Request) -> Response:
        method = request.query_params.get("method")
        with portal.lock:
            chosen = [c for c in portal.state.calls if method is None or c.method == method]
            return JSONResponse([call_json(c) for c in chosen])

    def fault(body: dict[str, Any]) -> None:
        portal.fail_next(
            str(body["method"]),
            str(body["code"]),
            status=None if body.get("status") is None else int(body["status"]),
            times=int(body.get("times", 1)),
            description=str(body.get("description", "")),
            html=bool(body.get("html", False)),
        )

    def failure_rate(body: dict[str, Any]) -> None:
        portal.set_failure_rate(
            str(body["method"]),
            float(body["rate"]),
            code=str(body.get("code", "INTERNAL_SERVER_ERROR")),
            status=int(body.get("status", 500)),
            seed=int(body.get("seed", 0)),
        )

    def request_failure_rate(body: dict[str, Any]) -> None:
        portal.set_request_failure_rate(
            float(body["rate"]),
            code=str(body.get("code", "INTERNAL_SERVER_ERROR")),
            status=int(body.get("status", 500)),
            seed=int(body.get("seed", 0)),
        )

    def users(body: dict[str, Any]) -> dict[str, Any]:
        return user_json(portal.upsert_user(**body))

    def operating(body: dict[str, Any]) -> None:
        portal.set_operating_cost(str(body["method"]), float(body["cost"]))

    posts: dict[str, Callable[[dict[str, Any]], Any]] = {
        "fault": fault,
        "failure_rate": failure_rate,
        "request_failure_rate": request_failure_rate,
        "hold": lambda _: portal.hold(),
        "release": lambda _: portal.release(),
        "down": lambda body: portal.set_down(bool(body.get("down", True))),
        "revoke": lambda _: portal.revoke_webhook(),
        "restore": lambda _: portal.restore_webhook(),
        "scopes": lambda body: portal.set_scopes(*[str(s) for s in body["scopes"]]),
        "operating": operating,
        "users": users,
        "reset_counters": lambda _: portal.reset_counters(),
    }
    routes = [
        Route("/_admin/state", state, methods=["GET"]),
        Route("/_admin/calls", calls, methods=["GET"]),
    ]
    routes.extend(
        Route(f"/_admin/{name}", _endpoint(fn), methods=["POST"]) for name, fn in posts.items()
    )
    return routes
