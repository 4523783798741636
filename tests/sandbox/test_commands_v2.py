"""Chatbots 2.0 commands, answers and messages through a webhook (§3, §6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import MARKETING, SALES_ALL_HANDS
from tests.fakes import FakeClock
from tests.sandbox.v2 import TOKEN, command, error, ok, register

pytestmark = pytest.mark.anyio


async def test_register_answers_the_command_object_and_is_idempotent(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    fields = {
        "command": "join",
        "title": {"en": "Join a chat", "ru": "Вступить в чат"},
        "params": {"en": "chat name"},
        "common": True,
    }
    first = await ok(rest, "imbot.v2.Command.register", botId=bot_id, botToken=TOKEN, fields=fields)
    assert first["command"] == {
        "id": first["command"]["id"],
        "botId": bot_id,
        "command": "/join",
        "common": True,
        "hidden": False,
        "extranetSupport": False,
    }
    changed = fields | {"common": False, "title": {"en": "Other"}}
    again = await ok(
        rest, "imbot.v2.Command.register", botId=bot_id, botToken=TOKEN, fields=changed
    )
    assert again == first  # the existing command, unchanged
    assert len(portal.state.commands) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "COMMAND_REQUIRED"),
        ({"command": " "}, "COMMAND_REQUIRED"),
        ({"command": "/join", "title": {"en": "J"}}, "COMMAND_NAME_INVALID"),
        ({"command": ["join"], "title": {"en": "J"}}, "COMMAND_NAME_INVALID"),
        ({"command": "join"}, "COMMAND_TITLE_REQUIRED"),
    ],
)
async def test_register_errors(rest: httpx.AsyncClient, fields: dict[str, Any], code: str) -> None:
    bot_id = await register(rest)
    refused = await error(
        rest, "imbot.v2.Command.register", botId=bot_id, botToken=TOKEN, fields=fields
    )
    assert refused == (400, code)


async def test_hidden_commands_need_no_title(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    hidden = await ok(
        rest,
        "imbot.v2.Command.register",
        botId=bot_id,
        botToken=TOKEN,
        fields={"command": "why", "hidden": "Y"},
    )
    assert hidden["command"]["hidden"] is True


async def test_the_flat_form_lasts_until_the_end_of_september_2026(clock: FakeClock) -> None:
    portal = FakePortal(clock=clock)  # 2026-03-02
    transport = httpx.ASGITransport(app=portal.app)
    async with httpx.AsyncClient(transport=transport, base_url=portal.webhook_url()) as rest:
        bot_id = await register(rest)
        flat = {"botId": bot_id, "botToken": TOKEN, "command": "help", "title": {"en": "Help"}}
        accepted = await ok(rest, "imbot.v2.Command.register", **flat)
        clock.time = 1_790_812_799.0  # 2026-09-30 23:59:59 UTC
        last_day = await ok(rest, "imbot.v2.Command.register", **(flat | {"command": "why"}))
        clock.advance(1.0)  # 2026-10-01: gone
        refused = await error(rest, "imbot.v2.Command.register", **(flat | {"command": "x"}))
    assert accepted["command"]["command"] == "/help"
    assert last_day["command"]["command"] == "/why"
    assert refused == (400, "COMMAND_REQUIRED")


async def test_list_update_and_unregister(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    join = await command(rest, bot_id, "join", title={"en": "Join", "de": "Beitreten"})
    help_id = await command(rest, bot_id, "help")
    listed = (await ok(rest, "imbot.v2.Command.list", botId=bot_id, botToken=TOKEN))["commands"]
    assert [c["command"] for c in listed] == ["/join", "/help"]
    assert listed[0] | {"id": 0} == {
        "id": 0,
        "botId": bot_id,
        "command": "/join",
        "common": False,
        "hidden": False,
        "extranetSupport": False,
        "title": "Join",
        "params": "chat",
        "category": "Autojoin",
        "context": "",
    }

    async def update(**fields: Any) -> Any:
        return await ok(
            rest,
            "imbot.v2.Command.update",
            botId=bot_id,
            botToken=TOKEN,
            commandId=join,
            fields=fields,
        )

    updated = await update(command="enter", common="Y", title={"en": None, "de": "Neu"})
    assert updated["command"]["command"] == "/enter"
    assert updated["command"]["common"] is True
    listed = (await ok(rest, "imbot.v2.Command.list", botId=bot_id, botToken=TOKEN))["commands"]
    assert listed[0]["title"] == "Neu"  # en removed: falls back to the remaining language

    async def update_error(command_id: int, **fields: Any) -> tuple[int, str]:
        return await error(
            rest,
            "imbot.v2.Command.update",
            botId=bot_id,
            botToken=TOKEN,
            commandId=command_id,
            fields=fields,
        )

    assert await update_error(join, command="help") == (400, "COMMAND_ALREADY_EXISTS")
    assert await update_error(join, command="") == (400, "COMMAND_NAME_EMPTY")
    assert await update_error(join, command="a b") == (400, "COMMAND_NAME_INVALID")
    assert await update_error(999) == (400, "COMMAND_NOT_FOUND")
    other_bot = await register(rest, code="other")
    foreign = await error(
        rest,
        "imbot.v2.Command.unregister",
        botId=other_bot,
        botToken=TOKEN,
        commandId=help_id,
    )
    assert foreign == (400, "COMMAND_NOT_FOUND")  # another bot's command
    gone = await ok(
        rest, "imbot.v2.Command.unregister", botId=bot_id, botToken=TOKEN, commandId=help_id
    )
    assert gone is True
    listed = (await ok(rest, "imbot.v2.Command.list", botId=bot_id, botToken=TOKEN))["commands"]
    assert [c["command"] for c in listed] == ["/enter"]


async def test_command_answer_is_tied_to_the_invocation(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    join = await command(rest, bot_id, "join", common=True)
    # Typed in a chat the bot is not in: a common command, answered there anyway.
    typed = portal.stage.command(bot_id, 2, "/join", "marketing", chat_id=SALES_ALL_HANDS)
    assert typed.message_id is not None
    base = {"botId": bot_id, "botToken": TOKEN, "commandId": join, "messageId": typed.message_id}
    here = {"dialogId": f"chat{SALES_ALL_HANDS}"}

    async def refused(**params: Any) -> tuple[int, str]:
        return await error(rest, "imbot.v2.Command.answer", **params)

    assert await refused(**(base | here | {"messageId": 1})) == (400, "COMMAND_ANSWER_FAILED")
    assert await refused(**(base | {"dialogId": "chat103"})) == (400, "COMMAND_ANSWER_FAILED")
    assert await refused(**(base | here)) == (400, "COMMAND_ANSWER_FAILED")  # empty answer
    assert await refused(**(base | here | {"commandId": None})) == (400, "COMMAND_ANSWER_FAILED")
    answered = await ok(
        rest,
        "imbot.v2.Command.answer",
        **base,
        **here,
        fields={"message": "You were added to [chat=103]Marketing[/chat]"},
    )
    assert answered == {"result": True}
    message = portal.messages[-1]
    assert (message.method, message.bot_id, message.dialog_id) == (
        "imbot.v2.Command.answer",
        bot_id,
        f"chat{SALES_ALL_HANDS}",
    )
    assert (message.command_id, message.message_id) == (join, typed.message_id)
    assert message.message.startswith("You were added")


async def test_message_send_records_the_post(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    bot_id = await register(rest)
    portal.stage.join(bot_id, 6, chat_id=MARKETING)
    keyboard = [{"TEXT": "Join sales", "COMMAND": "join", "COMMAND_PARAMS": "sales"}]
    sent = await ok(
        rest,
        "imbot.v2.Chat.Message.send",
        botId=bot_id,
        botToken=TOKEN,
        dialogId=f"chat{MARKETING}",
        fields={
            "message": "[b]Done[/b]",
            "templateId": "6f1c0a9e-tmpl",
            "keyboard": keyboard,
            "urlPreview": False,
        },
    )
    private = await ok(
        rest,
        "imbot.v2.Chat.Message.send",
        botId=bot_id,
        botToken=TOKEN,
        dialogId="4",
        fields={"message": "x" * 20_001},
    )
    assert sent["uuidMap"] == {}
    assert private["id"] == sent["id"] + 1
    first, second = portal.messages[-2:]
    assert (first.id, first.dialog_id, first.message) == (sent["id"], "chat103", "[b]Done[/b]")
    assert (first.template_id, first.keyboard, first.url_preview) == (
        "6f1c0a9e-tmpl",
        keyboard,
        False,
    )
    assert second.dialog_id == "4"  # a 1:1 dialog needs no membership
    assert second.message == "x" * 20_000 + " (...)"
    bot = (await ok(rest, "imbot.v2.Bot.get", botId=bot_id, botToken=TOKEN))["bot"]
    assert (bot["countMessage"], bot["countChat"]) == (2, 1)


@pytest.mark.parametrize(
    ("dialog", "fields", "expected"),
    [
        ("chat101", {"message": "hi"}, (403, "ACCESS_DENIED")),  # the bot is not a member
        ("chat999", {"message": "hi"}, (403, "ACCESS_DENIED")),
        ("999", {"message": "hi"}, (403, "ACCESS_DENIED")),  # no such user
        ("", {"message": "hi"}, (400, "DIALOG_ID_EMPTY")),
        ("4", {"message": "  "}, (400, "EMPTY_MESSAGE")),
        ("4", {}, (400, "EMPTY_MESSAGE")),
    ],
)
async def test_message_send_errors(
    rest: httpx.AsyncClient, dialog: str, fields: dict[str, Any], expected: tuple[int, str]
) -> None:
    bot_id = await register(rest)
    got = await error(
        rest,
        "imbot.v2.Chat.Message.send",
        botId=bot_id,
        botToken=TOKEN,
        dialogId=dialog,
        fields=fields,
    )
    assert got == expected
