"""`/_admin/v2/*`: a test in another process drives a v2 bot's users and reads what it did."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox.company import SALES_ALL_HANDS
from tests.sandbox.v2 import TOKEN, command, fetch, ok, register

pytestmark = pytest.mark.anyio


async def test_message_command_and_join_over_http(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    bot_id = await register(rest)
    await command(rest, bot_id, "join")
    private = (
        await admin.post("/_admin/v2/message", json={"bot_id": bot_id, "user_id": 4, "text": "hi"})
    ).json()
    joined = (
        await admin.post(
            "/_admin/v2/join", json={"bot_id": bot_id, "user_id": 2, "chat_id": SALES_ALL_HANDS}
        )
    ).json()
    group = (
        await admin.post(
            "/_admin/v2/message",
            json={
                "bot_id": bot_id,
                "user_id": 3,
                "text": "join marketing",
                "chat_id": SALES_ALL_HANDS,
                "mention": True,
                "language": "ru",
            },
        )
    ).json()
    typed = (
        await admin.post(
            "/_admin/v2/command",
            json={
                "bot_id": bot_id,
                "user_id": 3,
                "command": "/join",
                "params": "marketing",
                "chat_id": SALES_ALL_HANDS,
                "with_message": True,
            },
        )
    ).json()
    assert set(private) == {"message_id", "event_ids", "deliveries"}
    assert joined["message_id"] is None
    assert len(typed["event_ids"]) == 2
    events = (await fetch(rest, bot_id))["events"]
    assert [e["eventId"] for e in events] == (
        private["event_ids"] + joined["event_ids"] + group["event_ids"] + typed["event_ids"]
    )
    assert events[2]["data"]["language"] == "ru"
    assert events[4]["data"]["message"]["id"] == typed["message_id"]


async def test_queue_rewind_and_messages_over_http(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    bot_id = await register(rest)
    join = await command(rest, bot_id, "join")
    typed = (
        await admin.post(
            "/_admin/v2/command",
            json={"bot_id": bot_id, "user_id": 4, "command": "join", "params": "x"},
        )
    ).json()
    served = await fetch(rest, bot_id)
    await fetch(rest, bot_id, offset=served["nextOffset"])
    queue = (await admin.get("/_admin/v2/queue", params={"bot_id": bot_id})).json()
    assert queue["pending"] == []
    assert queue["acknowledged"] == typed["event_ids"]
    assert queue["bot_id"] == bot_id
    assert queue["next_event_id"] == typed["event_ids"][-1] + 1
    rewound = await admin.post("/_admin/v2/rewind", json={"bot_id": bot_id})
    assert rewound.json()["requeued"] == 1
    again = (await admin.get("/_admin/v2/queue", params={"bot_id": bot_id})).json()
    assert again["pending"] == served["events"]
    await ok(
        rest,
        "imbot.v2.Command.answer",
        botId=bot_id,
        botToken=TOKEN,
        commandId=join,
        messageId=typed["message_id"],
        dialogId="4",
        fields={"message": "Done"},
    )
    await ok(
        rest,
        "imbot.v2.Chat.Message.send",
        botId=bot_id,
        botToken=TOKEN,
        dialogId="4",
        fields={"message": "Also done", "templateId": "tmpl-1"},
    )
    await rest.post(
        "imbot.message.add",
        json={"BOT_ID": bot_id, "DIALOG_ID": "4", "MESSAGE": "classic", "CLIENT_ID": "c"},
    )
    sent = (await admin.get("/_admin/v2/messages", params={"bot_id": bot_id})).json()
    assert [(m["method"], m["message"], m["dialog_id"]) for m in sent] == [
        ("imbot.v2.Command.answer", "Done", "4"),
        ("imbot.v2.Chat.Message.send", "Also done", "4"),
    ]
    assert (sent[0]["command_id"], sent[0]["message_id"]) == (join, typed["message_id"])
    assert sent[1]["template_id"] == "tmpl-1"
    by_dialog = await admin.get("/_admin/v2/messages", params={"dialog_id": "chat5"})
    assert by_dialog.json() == []
    state = (await admin.get("/_admin/state")).json()
    bot = next(b for b in state["bots"] if b["id"] == bot_id)
    assert (bot["api"], bot["event_mode"]) == (2, "fetch")
    assert state["v2"]["queues"] == {str(bot_id): {"pending": 1, "acknowledged": 0}}
    assert TOKEN not in str(state)


async def test_bad_admin_v2_requests_are_400(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    bot_id = await register(rest)
    answers = [
        await admin.post("/_admin/v2/message", json={"user_id": 4, "text": "hi"}),
        await admin.post("/_admin/v2/message", json={"bot_id": 1, "user_id": 4, "text": "hi"}),
        await admin.post("/_admin/v2/command", json={"bot_id": bot_id, "user_id": 4}),
        await admin.post("/_admin/v2/join", json={"bot_id": bot_id, "user_id": 4, "chat_id": 9}),
        await admin.post("/_admin/v2/rewind", content=b"[1]"),
        await admin.get("/_admin/v2/queue"),
        await admin.get("/_admin/v2/queue", params={"bot_id": "x"}),
        await admin.get("/_admin/v2/messages", params={"bot_id": "x"}),
    ]
    assert [a.status_code for a in answers] == [400] * len(answers)
    assert answers[3].json()["detail"] == "no chat 9"
