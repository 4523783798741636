"""Chatbots 2.0 bot lifecycle through a webhook: register, update, get, list, unregister (§2)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.state import FIRST_BOT_ID
from tests.sandbox.v2 import (
    HOOK,
    OTHER_TOKEN,
    TOKEN,
    bot_fields,
    command,
    error,
    ok,
    register,
)

pytestmark = pytest.mark.anyio

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


async def test_register_answers_the_extended_bot_and_its_user(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    result = await ok(rest, "imbot.v2.Bot.register", fields=bot_fields())
    bot = result["bot"]
    assert bot["id"] >= FIRST_BOT_ID
    assert bot == {
        "id": bot["id"],
        "code": "autojoin",
        "type": "bot",
        "isHidden": False,
        "isSupportOpenline": False,
        "isReactionsEnabled": True,
        "backgroundId": None,
        "language": "en",
        "moduleId": "rest",
        "eventMode": "fetch",
        "countMessage": 0,
        "countCommand": 0,
        "countChat": 0,
        "countUser": 0,
    }
    user = result["users"][0]
    assert (user["id"], user["name"], user["bot"], user["type"]) == (
        bot["id"],
        "Autojoin",
        True,
        "bot",
    )
    assert user["workPosition"] == "Adds you to chats"
    stored = portal.state.bots[bot["id"]]
    assert stored.v2 is not None
    assert TOKEN not in repr(stored)


async def test_register_is_idempotent_for_the_same_token_only(rest: httpx.AsyncClient) -> None:
    first = await register(rest)
    again = await ok(
        rest,
        "imbot.v2.Bot.register",
        fields=bot_fields(properties={"name": "Renamed"}, eventMode="webhook", webhookUrl=HOOK),
    )
    assert again["bot"]["id"] == first
    assert again["bot"]["eventMode"] == "fetch"  # returned unchanged, not updated
    assert again["users"][0]["name"] == "Autojoin"
    taken = await error(rest, "imbot.v2.Bot.register", fields=bot_fields(token=OTHER_TOKEN))
    assert taken == (400, "BOT_CODE_ALREADY_TAKEN")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"botToken": None}, "BOT_TOKEN_NOT_SPECIFIED"),
        ({"botToken": ""}, "BOT_TOKEN_NOT_SPECIFIED"),
        ({"botToken": "x" * 41}, "BOT_TOKEN_INVALID_LENGTH"),
        ({"code": ""}, "BOT_CODE_REQUIRED"),
        ({"properties": {"lastName": "Bot"}}, "BOT_PROPERTIES_REQUIRED"),
        ({"type": "robot"}, "BOT_INVALID_TYPE"),
        ({"eventMode": "push"}, "BOT_INVALID_EVENT_MODE"),
        ({"eventMode": "webhook"}, "BOT_WEBHOOK_URL_REQUIRED"),
        ({"eventMode": "webhook", "webhookUrl": "ftp://x"}, "BOT_INVALID_CALLBACK"),
        ({"properties": {"name": "A", "avatar": "bm90IGFuIGltYWdl"}}, "BOT_AVATAR_INCORRECT_TYPE"),
    ],
)
async def test_register_errors(rest: httpx.AsyncClient, fields: dict[str, Any], code: str) -> None:
    assert await error(rest, "imbot.v2.Bot.register", fields=bot_fields(**fields)) == (400, code)


async def test_register_takes_the_token_only_inside_fields(rest: httpx.AsyncClient) -> None:
    fields = bot_fields()
    del fields["botToken"]
    refused = await error(rest, "imbot.v2.Bot.register", botToken=TOKEN, fields=fields)
    assert refused == (400, "BOT_TOKEN_NOT_SPECIFIED")
    longest = await ok(rest, "imbot.v2.Bot.register", fields=bot_fields(botToken="t" * 40))
    assert longest["bot"]["code"] == "autojoin"


async def test_register_accepts_webhook_mode_flags_and_an_avatar(rest: httpx.AsyncClient) -> None:
    fields = bot_fields(
        eventMode="webhook",
        webhookUrl=HOOK,
        isHidden="Y",
        backgroundId="nowhere",
        type="supervisor",
        properties={"name": "Autojoin", "avatar": PNG},
    )
    bot = (await ok(rest, "imbot.v2.Bot.register", fields=fields))["bot"]
    assert (bot["eventMode"], bot["isHidden"], bot["backgroundId"], bot["type"]) == (
        "webhook",
        True,
        None,
        "supervisor",
    )


async def test_update_changes_mode_url_flags_and_properties(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    no_url = await error(
        rest, "imbot.v2.Bot.update", botId=bot_id, botToken=TOKEN, fields={"eventMode": "webhook"}
    )
    assert no_url == (400, "BOT_WEBHOOK_URL_REQUIRED")
    changed = await ok(
        rest,
        "imbot.v2.Bot.update",
        botId=bot_id,
        botToken=TOKEN,
        fields={
            "eventMode": "webhook",
            "webhookUrl": HOOK,
            "isReactionsEnabled": False,
            "backgroundId": "mint",
            "properties": {"name": "Joiner"},
        },
    )
    assert changed["bot"]["eventMode"] == "webhook"
    assert changed["bot"]["isReactionsEnabled"] is False
    assert changed["bot"]["backgroundId"] == "mint"
    assert changed["users"] == [
        {"id": bot_id, "active": True, "name": "Joiner", "bot": True, "type": "bot"}
    ]
    v2 = portal.state.bots[bot_id].v2
    assert v2 is not None
    assert v2.webhook_url == HOOK
    back = await ok(
        rest, "imbot.v2.Bot.update", botId=bot_id, botToken=TOKEN, fields={"eventMode": "fetch"}
    )
    assert back["bot"]["eventMode"] == "fetch"


async def test_token_rotation_locks_the_old_token_out_at_once(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    await register(rest, code="other", token=OTHER_TOKEN)
    too_long = await error(
        rest, "imbot.v2.Bot.update", botId=bot_id, botToken=TOKEN, fields={"botToken": "x" * 41}
    )
    clash = await error(
        rest, "imbot.v2.Bot.update", botId=bot_id, botToken=TOKEN, fields={"botToken": OTHER_TOKEN}
    )
    assert too_long == (400, "BOT_TOKEN_INVALID_LENGTH")
    assert clash == (400, "BOT_TOKEN_ROTATION_FAILED")
    blank = await ok(
        rest, "imbot.v2.Bot.update", botId=bot_id, botToken=TOKEN, fields={"botToken": " "}
    )
    assert blank["bot"]["id"] == bot_id  # a blank new token is ignored
    await ok(rest, "imbot.v2.Bot.update", botId=bot_id, botToken=TOKEN, fields={"botToken": "new"})
    old = await error(rest, "imbot.v2.Command.list", botId=bot_id, botToken=TOKEN)
    assert old == (403, "BOT_OWNERSHIP_ERROR")
    assert await ok(rest, "imbot.v2.Command.list", botId=bot_id, botToken="new") == {"commands": []}


async def test_get_by_id_or_code_is_extended_only_for_the_owner(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    mine = await ok(rest, "imbot.v2.Bot.get", botId=bot_id, botToken=TOKEN)
    by_code = await ok(rest, "imbot.v2.Bot.get", code="autojoin", botToken=TOKEN)
    theirs = await ok(rest, "imbot.v2.Bot.get", code="autojoin", botToken=OTHER_TOKEN)
    assert mine == by_code
    assert mine["bot"]["eventMode"] == "fetch"
    assert "eventMode" not in theirs["bot"]
    assert "countMessage" not in theirs["bot"]
    assert theirs["bot"]["code"] == "autojoin"
    assert await error(rest, "imbot.v2.Bot.get", botToken=TOKEN) == (400, "PARAMS_REQUIRED")
    assert await error(rest, "imbot.v2.Bot.get", code="nobody", botToken=TOKEN) == (
        400,
        "BOT_NOT_FOUND",
    )
    assert await error(rest, "imbot.v2.Bot.get", code="autojoin") == (
        400,
        "BOT_TOKEN_NOT_SPECIFIED",
    )


async def test_list_shows_the_tokens_bots_with_filter_and_paging(rest: httpx.AsyncClient) -> None:
    first = await register(rest)
    second = await register(rest, code="second", type="supervisor")
    await register(rest, code="foreign", token=OTHER_TOKEN)
    everything = await ok(rest, "imbot.v2.Bot.list", botToken=TOKEN)
    assert [b["id"] for b in everything["bots"]] == [first, second]
    assert [u["id"] for u in everything["users"]] == [first, second]
    assert everything["hasNextPage"] is False
    page = await ok(rest, "imbot.v2.Bot.list", botToken=TOKEN, limit=1)
    assert ([b["id"] for b in page["bots"]], page["hasNextPage"]) == ([first], True)
    rest_page = await ok(rest, "imbot.v2.Bot.list", botToken=TOKEN, limit=1, offset=1)
    assert ([b["id"] for b in rest_page["bots"]], rest_page["hasNextPage"]) == ([second], False)
    typed = await ok(rest, "imbot.v2.Bot.list", botToken=TOKEN, filter={"type": "supervisor"})
    assert [b["id"] for b in typed["bots"]] == [second]
    unknown = await ok(rest, "imbot.v2.Bot.list", botToken=TOKEN, filter={"type": "nope"})
    assert unknown["bots"] == []
    assert await error(rest, "imbot.v2.Bot.list") == (400, "BOT_TOKEN_NOT_SPECIFIED")


async def test_unregister_removes_the_bot_its_commands_and_memberships(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    await command(rest, bot_id)
    await rest.post("im.chat.user.add", json={"CHAT_ID": 101, "USERS": [bot_id]})
    assert bot_id in portal.chat_members(101)
    gone = await ok(rest, "imbot.v2.Bot.unregister", botId=bot_id, botToken=TOKEN)
    assert gone == {"result": True}
    assert bot_id not in portal.state.bots
    assert not [c for c in portal.state.commands.values() if c.bot_id == bot_id]
    assert bot_id not in portal.chat_members(101)
    last = portal.stage.queue(bot_id)["pending"][-1]
    assert last["type"] == "ONIMBOTV2DELETE"
    assert last["data"]["bot"]["id"] == bot_id
    assert set(last["data"]) == {"bot"}
    after = await error(rest, "imbot.v2.Event.get", botId=bot_id, botToken=TOKEN)
    assert after == (400, "BOT_NOT_FOUND")
