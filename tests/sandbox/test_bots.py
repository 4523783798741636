"""Classic chat-bot methods through a webhook: CLIENT_ID everywhere (§5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.state import FIRST_BOT_ID

pytestmark = pytest.mark.anyio

CLIENT = "autojoin-sandbox-client"
HOOK = "https://bot.example.com/events"
LANG = [{"LANGUAGE_ID": "en", "TITLE": "Join a chat", "PARAMS": "chat name"}]


async def call(rest: httpx.AsyncClient, method: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = (await rest.post(method, json=params)).json()
    return body


async def register(rest: httpx.AsyncClient, code: str = "rules_bot", **extra: Any) -> int:
    params = {
        "CODE": code,
        "TYPE": "B",
        "CLIENT_ID": CLIENT,
        "EVENT_MESSAGE_ADD": HOOK,
        "EVENT_WELCOME_MESSAGE": HOOK,
        "EVENT_BOT_DELETE": HOOK,
        "PROPERTIES": {"NAME": "Rules Bot", "COLOR": "AQUA"},
    } | extra
    bot_id: int = (await call(rest, "imbot.register", **params))["result"]
    return bot_id


async def test_register_creates_a_bot_with_a_high_id(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    assert bot_id >= FIRST_BOT_ID
    bot = portal.state.bots[bot_id]
    assert (bot.code, bot.client_id, bot.properties["NAME"]) == ("rules_bot", CLIENT, "Rules Bot")
    assert bot.handlers["ONIMBOTMESSAGEADD"] == HOOK


async def test_register_errors(rest: httpx.AsyncClient) -> None:
    await register(rest)
    duplicate = await call(
        rest,
        "imbot.register",
        CODE="rules_bot",
        CLIENT_ID=CLIENT,
        EVENT_HANDLER=HOOK,
        PROPERTIES={"NAME": "Again"},
    )
    no_client = await rest.post(
        "imbot.register", json={"CODE": "other", "EVENT_HANDLER": HOOK, "PROPERTIES": {"NAME": "X"}}
    )
    bad_url = await call(
        rest,
        "imbot.register",
        CODE="b2",
        CLIENT_ID=CLIENT,
        EVENT_MESSAGE_ADD="ftp://x",
        EVENT_WELCOME_MESSAGE=HOOK,
        EVENT_BOT_DELETE=HOOK,
        PROPERTIES={"NAME": "X"},
    )
    no_name = await call(rest, "imbot.register", CODE="b3", CLIENT_ID=CLIENT, EVENT_HANDLER=HOOK)
    assert duplicate["error"] == "CODE_ERROR"
    assert no_client.json() == {
        "error": "ACCESS_DENIED",
        "error_description": "Client ID not specified",
    }
    assert bad_url["error"] == "EVENT_MESSAGE_ADD_ERROR"
    assert no_name["error"] == "NAME_ERROR"


async def test_every_bot_call_checks_the_client_id(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    missing = await call(rest, "imbot.message.add", BOT_ID=bot_id, DIALOG_ID="5", MESSAGE="hi")
    wrong = await call(
        rest,
        "imbot.message.add",
        BOT_ID=bot_id,
        DIALOG_ID="5",
        MESSAGE="hi",
        CLIENT_ID="someone-else",
    )
    unregister = await call(rest, "imbot.unregister", BOT_ID=bot_id, CLIENT_ID="someone-else")
    command = await call(
        rest,
        "imbot.command.register",
        BOT_ID=bot_id,
        COMMAND="join",
        EVENT_COMMAND_ADD=HOOK,
        LANG=LANG,
    )
    assert missing["error"] == "ACCESS_DENIED"
    assert wrong["error"] == "APP_ID_ERROR"
    assert unregister["error"] == "APP_ID_ERROR"
    assert command["error"] == "ACCESS_DENIED"


async def test_message_add_records_the_post(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    bot_id = await register(rest)
    keyboard = {"BUTTONS": [{"TEXT": "Join", "COMMAND": "join", "COMMAND_PARAMS": "devops"}]}
    first = await call(
        rest,
        "imbot.message.add",
        BOT_ID=bot_id,
        DIALOG_ID="chat101",
        MESSAGE=" Welcome! ",
        CLIENT_ID=CLIENT,
        KEYBOARD=keyboard,
    )
    default_bot = await call(
        rest, "imbot.message.add", DIALOG_ID="5", MESSAGE="Hi", CLIENT_ID=CLIENT
    )
    assert default_bot["result"] == first["result"] + 1
    posted = portal.messages
    assert [(m.method, m.bot_id, m.dialog_id, m.message) for m in posted] == [
        ("imbot.message.add", bot_id, "chat101", "Welcome!"),
        ("imbot.message.add", bot_id, "5", "Hi"),
    ]
    assert posted[0].keyboard == keyboard
    assert posted[0].client_id == CLIENT


async def test_message_add_errors(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    empty = await call(
        rest, "imbot.message.add", BOT_ID=bot_id, DIALOG_ID="5", MESSAGE=" ", CLIENT_ID=CLIENT
    )
    no_dialog = await call(rest, "imbot.message.add", BOT_ID=bot_id, MESSAGE="x", CLIENT_ID=CLIENT)
    no_bot = await call(
        rest, "imbot.message.add", BOT_ID=5, DIALOG_ID="5", MESSAGE="x", CLIENT_ID=CLIENT
    )
    assert empty["error"] == "MESSAGE_EMPTY"
    assert no_dialog["error"] == "DIALOG_ID_EMPTY"
    assert no_bot["error"] == "BOT_ID_ERROR"


async def test_bot_list_shows_only_this_clients_bots(rest: httpx.AsyncClient) -> None:
    assert (await call(rest, "imbot.bot.list", CLIENT_ID=CLIENT))["result"] == []
    mine = await register(rest)
    await register(rest, code="theirs", CLIENT_ID="other-client")
    listed = (await call(rest, "imbot.bot.list", CLIENT_ID=CLIENT))["result"]
    assert listed == {
        str(mine): {"ID": mine, "NAME": "Rules Bot", "CODE": "rules_bot", "OPENLINE": "N"}
    }


async def test_update_and_unregister(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    bot_id = await register(rest)
    other = await register(rest, code="taken")
    clash = await call(
        rest, "imbot.update", BOT_ID=bot_id, CLIENT_ID=CLIENT, FIELDS={"CODE": "taken"}
    )
    assert clash["error"] == "CODE_ERROR"
    new_hook = "https://bot.example.com/v2"
    ok = await call(
        rest,
        "imbot.update",
        BOT_ID=bot_id,
        CLIENT_ID=CLIENT,
        FIELDS={"EVENT_MESSAGE_ADD": new_hook, "PROPERTIES": {"NAME": "Joiner"}},
    )
    assert ok["result"] is True
    assert portal.state.bots[bot_id].handlers["ONIMBOTMESSAGEADD"] == new_hook
    assert portal.state.bots[bot_id].properties["NAME"] == "Joiner"
    await rest.post("im.chat.user.add", json={"CHAT_ID": 101, "USERS": [bot_id]})
    assert bot_id in portal.chat_members(101)  # bots are chat members like users
    gone = await call(rest, "imbot.unregister", BOT_ID=bot_id, CLIENT_ID=CLIENT)
    assert gone["result"] is True
    assert set(portal.state.bots) == {other}
    assert bot_id not in portal.chat_members(101)


async def test_message_limits_and_private_mode(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    bot_id = await register(rest)
    huge = {"BLOCKS": [{"MESSAGE": "x" * 31_000}]}
    oversize = await call(
        rest,
        "imbot.message.add",
        BOT_ID=bot_id,
        DIALOG_ID="5",
        MESSAGE="x",
        ATTACH=huge,
        CLIENT_ID=CLIENT,
    )
    private = await call(
        rest,
        "imbot.message.add",
        BOT_ID=bot_id,
        FROM_USER_ID=1,
        TO_USER_ID=5,
        MESSAGE="psst",
        CLIENT_ID=CLIENT,
    )
    assert oversize["error"] == "ATTACH_OVERSIZE"
    assert portal.messages[-1].id == private["result"]
    assert portal.messages[-1].dialog_id == "5"


async def test_registering_a_bots_command_again_returns_its_id(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    """As in the source (im/lib/command.php): one command name per bot, never a duplicate."""
    bot_id = await register(rest)
    other_bot = await register(rest, code="other_bot")
    params = {"COMMAND": "join", "EVENT_COMMAND_ADD": HOOK, "LANG": LANG, "CLIENT_ID": CLIENT}
    first = (await call(rest, "imbot.command.register", BOT_ID=bot_id, **params))["result"]
    again = await call(rest, "imbot.command.register", BOT_ID=bot_id, **(params | {"HIDDEN": "Y"}))
    other = (await call(rest, "imbot.command.register", BOT_ID=other_bot, **params))["result"]
    no_lang = await call(rest, "imbot.command.register", BOT_ID=bot_id, **(params | {"LANG": []}))
    assert again["result"] == first
    assert portal.state.commands[first].hidden is False  # the repeat changed nothing
    assert other != first
    assert sorted(c.bot_id for c in portal.state.commands.values()) == sorted([bot_id, other_bot])
    assert no_lang["error"] == "LANG_ERROR"
