"""`/_admin/*`: drive and inspect the fake from another process (a demo, a container test).

Every endpoint is a thin wrapper over a `FakePortal` method, so in-process tests and
out-of-process ones exercise the same code. Nothing here ever shows a webhook code.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.state import Bot, Call, Chat, Command, Message, PortalState, User

if TYPE_CHECKING:
    from bot.sandbox import FakePortal

Handler = Callable[[Request], Awaitable[Response]]


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "last_name": user.last_name,
        "active": user.active,
        "departments": list(user.departments),
        "email": user.email,
        "user_type": user.user_type,
        "timestamp_x": user.timestamp_x,
    }


def chat_json(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.id,
        "title": chat.title,
        "type": chat.type,
        "owner": chat.owner,
        "members": sorted(chat.members),
        "managers": sorted(chat.managers),
        "manage_users_add": chat.manage_users_add,
        "manage_users_delete": chat.manage_users_delete,
        "extend_forbidden": chat.extend_forbidden,
        "history_hidden": {str(k): v for k, v in sorted(chat.history_hidden.items())},
    }


def bot_json(bot: Bot) -> dict[str, Any]:
    return {
        "id": bot.id,
        "code": bot.code,
        "client_id": bot.client_id,
        "type": bot.type,
        "properties": bot.properties,
        "handlers": bot.handlers,
        "api": 1 if bot.v2 is None else 2,
        "event_mode": None if bot.v2 is None else bot.v2.event_mode,
        "webhook_url": None if bot.v2 is None else bot.v2.webhook_url,
    }


def command_json(command: Command) -> dict[str, Any]:
    return {
        "id": command.id,
        "bot_id": command.bot_id,
        "command": command.command,
        "lang": command.lang,
        "handler": command.handler,
        "common": command.common,
        "hidden": command.hidden,
        "extranet_support": command.extranet_support,
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "method": message.method,
        "bot_id": message.bot_id,
        "dialog_id": message.dialog_id,
        "message": message.message,
        "client_id": message.client_id,
        "command_id": message.command_id,
        "message_id": message.message_id,
        "keyboard": message.keyboard,
        "attach": message.attach,
        "at": message.at,
        "template_id": message.template_id,
        "system": message.system,
        "url_preview": message.url_preview,
    }


def call_json(call: Call) -> dict[str, Any]:
    return {
        "method": call.method,
        "params": call.params,
        "status": call.status,
        "error": call.error,
        "at": call.at,
        "batch": call.batch,
        "key": call.key,
    }


def calls_summary(calls: list[Call]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for call in calls:
        entry = summary.setdefault(call.method, {"count": 0, "errors": Counter()})
        entry["count"] += 1
        if call.error is not None:
            entry["errors"][call.error] += 1
    return {
        m: {"count": e["count"], "errors": dict(e["errors"])} for m, e in sorted(summary.items())
    }


def snapshot(state: PortalState) -> dict[str, Any]:
    counters = state.counters
    return {
        "users": [user_json(u) for _, u in sorted(state.users.items())],
        "departments": [
            {"id": d.id, "name": d.name, "parent": d.parent, "sort": d.sort}
            for _, d in sorted(state.departments.items())
        ],
        "chats": [chat_json(c) for _, c in sorted(state.chats.items())],
        "bots": [bot_json(b) for _, b in sorted(state.bots.items())],
        "commands": [command_json(c) for _, c in sorted(state.commands.items())],
        "messages": [message_json(m) for m in state.messages],
        "webhooks": [
            {"user_id": w.user_id, "revoked": w.revoked, "scopes": sorted(w.scopes)}
            for w in state.webhooks
        ],
        "counters": {
            "http_requests": counters.http_requests,
            "rejected_rate_limit": counters.rejected_rate_limit,
            "max_bucket_level": counters.max_bucket_level,
            "held_now": counters.held_now,
        },
        "calls": calls_summary(state.calls),
        "held": state.held,
        "down": state.down,
        "pending_faults": len(state.faults),
        "v2": {
            "queues": {
                str(bot_id): {"pending": len(q.pending), "acknowledged": len(q.acknowledged)}
                for bot_id, q in sorted(state.v2.queues.items())
            },
            "subscriptions": [{"event": s.event, "url": s.url} for s in state.v2.subscriptions],
            "outbox": len(state.v2.outbox),
            "deliveries": len(state.v2.deliveries),
        },
    }


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


def admin_routes(portal: FakePortal) -> list[Route]:
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

    def users(body: dict[str, Any]) -> dict[str, Any]:
        return user_json(portal.upsert_user(**body))

    def operating(body: dict[str, Any]) -> None:
        portal.set_operating_cost(str(body["method"]), float(body["cost"]))

    posts: dict[str, Callable[[dict[str, Any]], Any]] = {
        "fault": fault,
        "failure_rate": failure_rate,
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
