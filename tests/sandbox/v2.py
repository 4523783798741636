"""Helpers for the Chatbots 2.0 sandbox tests: calls, a registered bot, a webhook receiver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.formparse import parse_form

TOKEN = "autojoin-sandbox-bot-token-0001"
OTHER_TOKEN = "someone-elses-bot-token"
HOOK = "https://autojoin.example.com/events"


async def call(rest: httpx.AsyncClient, method: str, **params: Any) -> httpx.Response:
    return await rest.post(method, json=params)


async def ok(rest: httpx.AsyncClient, method: str, **params: Any) -> Any:
    response = await call(rest, method, **params)
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def error(rest: httpx.AsyncClient, method: str, **params: Any) -> tuple[int, str]:
    response = await call(rest, method, **params)
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    return response.status_code, str(body["error"])


def bot_fields(code: str = "autojoin", token: str = TOKEN, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "botToken": token,
        "type": "bot",
        "eventMode": "fetch",
        "properties": {"name": "Autojoin", "workPosition": "Adds you to chats"},
    } | extra


async def register(rest: httpx.AsyncClient, code: str = "autojoin", **extra: Any) -> int:
    result = await ok(rest, "imbot.v2.Bot.register", fields=bot_fields(code, **extra))
    bot_id: int = result["bot"]["id"]
    return bot_id


async def command(
    rest: httpx.AsyncClient, bot_id: int, name: str = "join", token: str = TOKEN, **extra: Any
) -> int:
    fields = {"command": name, "title": {"en": f"{name} title"}, "params": {"en": "chat"}} | extra
    result = await ok(
        rest, "imbot.v2.Command.register", botId=bot_id, botToken=token, fields=fields
    )
    command_id: int = result["command"]["id"]
    return command_id


async def fetch(rest: httpx.AsyncClient, bot_id: int, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = await ok(
        rest, "imbot.v2.Event.get", botId=bot_id, botToken=TOKEN, **params
    )
    return result


@dataclass
class FakeReceiver:
    """An events endpoint that records every POST the portal makes to it."""

    status: int = 200
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, content type, body

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            self.posts.append((request.url.path, content_type, await request.body()))
            return JSONResponse({"status": "accepted"}, status_code=self.status)

        return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app())

    def trees(self) -> list[dict[str, Any]]:
        return [parse_form(body) for _, _, body in self.posts]
