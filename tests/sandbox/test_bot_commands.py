"""Bot commands through a webhook: register, update, answer, unregister (§5.3, §5.4)."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox import FakePortal
from tests.sandbox.test_bots import CLIENT, HOOK, LANG, call, register

pytestmark = pytest.mark.anyio


async def test_commands_register_update_answer_unregister(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    command_id = (
        await call(
            rest,
            "imbot.command.register",
            BOT_ID=bot_id,
            COMMAND="join",
            COMMON="Y",
            HIDDEN="N",
            EXTRANET_SUPPORT="N",
            CLIENT_ID=CLIENT,
            LANG=LANG,
            EVENT_COMMAND_ADD=HOOK,
        )
    )["result"]
    command = portal.state.commands[command_id]
    assert (command.bot_id, command.command, command.common, command.hidden) == (
        bot_id,
        "join",
        True,
        False,
    )
    updated = await call(
        rest,
        "imbot.command.update",
        COMMAND_ID=command_id,
        CLIENT_ID=CLIENT,
        FIELDS={"HIDDEN": "Y", "COMMAND": "enter"},
    )
    assert updated["result"] is True
    assert (command.command, command.hidden) == ("enter", True)
    answer = await call(
        rest,
        "imbot.command.answer",
        COMMAND_ID=command_id,
        MESSAGE_ID=33871,
        MESSAGE="Added you to devops",
        CLIENT_ID=CLIENT,
    )
    reply = portal.messages[-1]
    assert reply.id == answer["result"]
    assert (reply.method, reply.command_id, reply.message_id) == (
        "imbot.command.answer",
        command_id,
        33871,
    )
    gone = await call(rest, "imbot.command.unregister", COMMAND_ID=command_id, CLIENT_ID=CLIENT)
    assert gone["result"] is True
    assert command_id not in portal.state.commands


async def test_command_errors(rest: httpx.AsyncClient) -> None:
    bot_id = await register(rest)
    bad_name = await call(
        rest,
        "imbot.command.register",
        BOT_ID=bot_id,
        COMMAND="two words",
        CLIENT_ID=CLIENT,
        LANG=LANG,
        EVENT_COMMAND_ADD=HOOK,
    )
    no_lang = await call(
        rest,
        "imbot.command.register",
        BOT_ID=bot_id,
        COMMAND="join",
        CLIENT_ID=CLIENT,
        EVENT_COMMAND_ADD=HOOK,
    )
    unknown = await call(
        rest, "imbot.command.answer", COMMAND_ID=999, MESSAGE_ID=1, MESSAGE="x", CLIENT_ID=CLIENT
    )
    assert bad_name["error"] == "COMMAND_ERROR"
    assert no_lang["error"] == "LANG_ERROR"
    assert unknown["error"] == "COMMAND_ID_ERROR"


async def test_answer_by_command_name_and_bot_count_limit(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    await call(
        rest,
        "imbot.command.register",
        BOT_ID=bot_id,
        COMMAND="join",
        CLIENT_ID=CLIENT,
        LANG=LANG,
        EVENT_COMMAND_ADD=HOOK,
    )
    answer = await call(
        rest, "imbot.command.answer", COMMAND="join", MESSAGE_ID=7, MESSAGE="ok", CLIENT_ID=CLIENT
    )
    no_message_id = await call(
        rest, "imbot.command.answer", COMMAND="join", MESSAGE="ok", CLIENT_ID=CLIENT
    )
    assert portal.messages[-1].id == answer["result"]
    assert no_message_id["error"] == "MESSAGE_ID_EMPTY"
    for n in range(4):
        await register(rest, code=f"extra{n}")
    sixth = await call(
        rest,
        "imbot.register",
        CODE="sixth",
        CLIENT_ID=CLIENT,
        EVENT_HANDLER=HOOK,
        PROPERTIES={"NAME": "Six"},
    )
    assert sixth["error"] == "MAX_COUNT_ERROR"
    assert len(portal.state.bots) == 5
