"""Chatbots 2.0 authentication: `botToken` ownership on every method, wire forms, limits (§1)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.state import FIRST_BOT_ID
from tests.fakes import FakeClock
from tests.sandbox.conftest import client_for
from tests.sandbox.v2 import HOOK, OTHER_TOKEN, TOKEN, call, error, ok, register

pytestmark = pytest.mark.anyio

OWNER_METHODS = [
    ("imbot.v2.Bot.update", {"fields": {"isHidden": True}}),
    ("imbot.v2.Bot.unregister", {}),
    ("imbot.v2.Command.register", {"fields": {"command": "x", "title": {"en": "X"}}}),
    ("imbot.v2.Command.list", {}),
    ("imbot.v2.Command.update", {"commandId": 1, "fields": {}}),
    ("imbot.v2.Command.unregister", {"commandId": 1}),
    ("imbot.v2.Command.answer", {"commandId": 1, "messageId": 1, "dialogId": "1"}),
    ("imbot.v2.Chat.Message.send", {"dialogId": "1", "fields": {"message": "hi"}}),
    ("imbot.v2.Event.get", {}),
]


@pytest.mark.parametrize(("method", "extra"), OWNER_METHODS)
async def test_every_owner_method_checks_token_then_bot_then_ownership(
    rest: httpx.AsyncClient, method: str, extra: dict[str, Any]
) -> None:
    bot_id = await register(rest)
    no_token = await error(rest, method, botId=bot_id, **extra)
    no_bot_id = await error(rest, method, botToken=TOKEN, **extra)
    unknown = await error(rest, method, botId=FIRST_BOT_ID + 99, botToken=TOKEN, **extra)
    foreign = await error(rest, method, botId=bot_id, botToken=OTHER_TOKEN, **extra)
    shouting = await error(rest, method, BOTID=bot_id, BOTTOKEN=TOKEN, **extra)
    assert no_token == (400, "BOT_TOKEN_NOT_SPECIFIED")
    assert no_bot_id == (400, "BOT_ID_REQUIRED")
    assert unknown == (400, "BOT_NOT_FOUND")
    assert foreign == (403, "BOT_OWNERSHIP_ERROR")
    assert shouting == (400, "BOT_TOKEN_NOT_SPECIFIED")  # parameter names are case-sensitive


async def test_a_classic_bot_is_foreign_to_v2_and_a_v2_bot_to_classic_calls(
    rest: httpx.AsyncClient,
) -> None:
    classic = await ok(
        rest,
        "imbot.register",
        CODE="classic",
        CLIENT_ID="classic-client",
        EVENT_HANDLER=HOOK,
        PROPERTIES={"NAME": "Old"},
    )
    modern = await register(rest)
    assert await error(rest, "imbot.v2.Bot.update", botId=classic, botToken=TOKEN, fields={}) == (
        403,
        "BOT_OWNERSHIP_ERROR",
    )
    old_call = await call(
        rest, "imbot.message.add", BOT_ID=modern, DIALOG_ID="1", MESSAGE="x", CLIENT_ID=TOKEN
    )
    assert old_call.json()["error"] == "APP_ID_ERROR"


async def test_revision_needs_no_token(rest: httpx.AsyncClient) -> None:
    revision = await ok(rest, "imbot.v2.Revision.get")
    assert set(revision) == {"rest", "web", "mobile", "desktop"}
    assert all(isinstance(v, int) for v in revision.values())


async def test_php_form_bodies_work_like_json(rest: httpx.AsyncClient) -> None:
    """Form callers send every scalar as a string and booleans as Y/N."""
    body = (
        "fields[code]=formbot&fields[botToken]=" + TOKEN + "&fields[properties][name]=Form"
        "&fields[isHidden]=Y&fields[eventMode]=fetch"
    )
    response = await rest.post(
        "imbot.v2.Bot.register",
        content=body.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    bot = response.json()["result"]["bot"]
    assert (bot["code"], bot["isHidden"]) == ("formbot", True)
    listed = await rest.post(
        "imbot.v2.Command.list", content=f"botId={bot['id']}&botToken={TOKEN}".encode()
    )
    assert listed.json()["result"] == {"commands": []}


async def test_v2_calls_spend_the_rate_limit_like_any_method(clock: FakeClock) -> None:
    portal = FakePortal(clock=clock, burst=3)
    async with client_for(portal) as rest:
        answers = [await call(rest, "imbot.v2.Revision.get") for _ in range(3)]
        refused = await call(rest, "imbot.v2.Event.get", botId=1, botToken=TOKEN)
        clock.advance(1.0)
        again = await call(rest, "imbot.v2.Revision.get")
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert (refused.status_code, refused.json()["error"]) == (503, "QUERY_LIMIT_EXCEEDED")
    assert again.status_code == 200
    assert [c.method for c in portal.calls_to("imbot.v2.event.get")] == ["imbot.v2.event.get"]


async def test_v2_methods_run_inside_batch(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    cmd = {
        "queue": f"imbot.v2.Event.get?botId={bot_id}&botToken={TOKEN}&limit=5",
        "foreign": f"imbot.v2.Event.get?botId={bot_id}&botToken={OTHER_TOKEN}",
        "revision": "imbot.v2.Revision.get",
    }
    result = await ok(rest, "batch", halt=0, cmd=cmd)
    assert result["result"]["queue"] == {"events": [], "nextOffset": 0, "hasMore": False}
    assert result["result_error"]["foreign"]["error"] == "BOT_OWNERSHIP_ERROR"
    assert result["result"]["revision"]["rest"] > 0


async def test_the_call_log_never_holds_a_bot_token(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    bot_id = await register(rest)
    await call(rest, "imbot.v2.Event.get", botId=bot_id, botToken=TOKEN)
    await call(rest, "batch", cmd=[f"imbot.v2.Event.get?botId={bot_id}&botToken={TOKEN}"])
    logged = (await admin.get("/_admin/calls")).text
    assert TOKEN not in logged
    calls = (await admin.get("/_admin/calls")).json()
    assert calls[0]["params"]["fields"]["botToken"] == "<hidden>"
    assert calls[1]["params"]["botToken"] == "<hidden>"
    assert calls[2]["params"]["cmd"] == [f"imbot.v2.Event.get?botId={bot_id}&botToken=<hidden>"]
