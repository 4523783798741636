"""`/_admin/v2/*`, `/_admin/hire`…: run-time happenings over HTTP, for tests in another process.

Each POST is a thin wrapper over `portal.stage`; it sends whatever the happening owes by POST
(webhook-mode bots, outgoing webhooks) before it answers, and lists those `deliveries`. Keys
are snake_case like the rest of the admin API; platform objects inside keep platform shapes.
Nothing here shows a botToken or an application token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.admin import BadAdminRequest, Handler, json_body, message_json, user_json
from bot.sandbox.state_v2 import Delivery

if TYPE_CHECKING:
    from bot.sandbox import FakePortal

Action = Callable[[dict[str, Any]], dict[str, Any]]
_BAD = (BadAdminRequest, KeyError, TypeError, ValueError)


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "url": delivery.url,
        "event": delivery.event,
        "status": delivery.status,
        "error": delivery.error,
        "at": delivery.at,
        "bot_id": delivery.bot_id,
    }


def _bad(exc: Exception) -> Response:
    return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=400)


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    return None if body.get(key) is None else int(body[key])


def _happening(portal: FakePortal, action: Action) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            result = action(await json_body(request))
        except _BAD as exc:
            return _bad(exc)
        sent = await portal.deliver()
        return JSONResponse({**result, "deliveries": [delivery_json(d) for d in sent]})

    return handle


def _query_int(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    return None if raw is None else int(raw)


def admin_v2_routes(portal: FakePortal) -> list[Route]:
    stage = portal.stage

    def message(body: dict[str, Any]) -> dict[str, Any]:
        return stage.message(
            int(body["bot_id"]),
            int(body["user_id"]),
            str(body["text"]),
            chat_id=_optional_int(body, "chat_id"),
            mention=bool(body.get("mention", True)),
            language=body.get("language"),
        ).json()

    def command(body: dict[str, Any]) -> dict[str, Any]:
        return stage.command(
            int(body["bot_id"]),
            int(body["user_id"]),
            str(body["command"]),
            str(body.get("params", "")),
            chat_id=_optional_int(body, "chat_id"),
            context=str(body.get("context", "textarea")),
            with_message=bool(body.get("with_message", False)),
            language=body.get("language"),
        ).json()

    def join(body: dict[str, Any]) -> dict[str, Any]:
        return stage.join(
            int(body["bot_id"]),
            int(body["user_id"]),
            chat_id=_optional_int(body, "chat_id"),
            language=body.get("language"),
        ).json()

    def rewind(body: dict[str, Any]) -> dict[str, Any]:
        return {"requeued": stage.rewind(int(body["bot_id"]), _optional_int(body, "offset"))}

    def hire(body: dict[str, Any]) -> dict[str, Any]:
        logged_in = bool(body.pop("logged_in", True))
        return {"user": user_json(stage.hire(logged_in=logged_in, **body))}

    def login(body: dict[str, Any]) -> dict[str, Any]:
        return {"user": user_json(stage.login(int(body["user_id"])))}

    def outbound(body: dict[str, Any]) -> dict[str, Any]:
        stage.subscribe(str(body["event"]), str(body["url"]), str(body["token"]))
        return {"ok": True}

    async def queue(request: Request) -> Response:
        try:
            bot_id = _query_int(request, "bot_id")
            if bot_id is None:
                raise BadAdminRequest("bot_id is required")
        except _BAD as exc:
            return _bad(exc)
        return JSONResponse(stage.queue(bot_id))

    async def messages(request: Request) -> Response:
        """What v2 bots posted (`Chat.Message.send`, `Command.answer`), oldest first."""
        try:
            bot_id = _query_int(request, "bot_id")
        except ValueError as exc:
            return _bad(exc)
        dialog = request.query_params.get("dialog_id")
        with portal.lock:
            chosen = [
                message_json(m)
                for m in portal.state.messages
                if m.method.startswith("imbot.v2.")
                and (bot_id is None or m.bot_id == bot_id)
                and (dialog is None or m.dialog_id == dialog)
            ]
        return JSONResponse(chosen)

    async def deliveries(_: Request) -> Response:
        with portal.lock:
            return JSONResponse([delivery_json(d) for d in portal.state.v2.deliveries])

    posts: dict[str, Action] = {
        "v2/message": message,
        "v2/command": command,
        "v2/join": join,
        "v2/rewind": rewind,
        "hire": hire,
        "login": login,
        "outbound": outbound,
        "deliver": lambda _: {},
    }
    routes = [
        Route("/_admin/v2/queue", queue, methods=["GET"]),
        Route("/_admin/v2/messages", messages, methods=["GET"]),
        Route("/_admin/deliveries", deliveries, methods=["GET"]),
    ]
    routes.extend(
        Route(f"/_admin/{name}", _happening(portal, fn), methods=["POST"])
        for name, fn in posts.items()
    )
    return routes
