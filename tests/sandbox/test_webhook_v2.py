"""Webhook mode: v2 events POSTed as PHP form bodies to the bot's `webhookUrl` (§4.2)."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import MARKETING
from bot.sandbox.events import DOMAIN, MEMBER_ID
from tests.sandbox.v2 import HOOK, TOKEN, FakeReceiver, command, fetch, ok, register

pytestmark = pytest.mark.anyio


class FakeRefusingTransport(httpx.AsyncBaseTransport):
    """Nobody listens at the webhook URL."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def receiver(portal: FakePortal) -> FakeReceiver:
    found = FakeReceiver()
    portal.outbound = found.transport()
    return found


async def webhook_bot(rest: httpx.AsyncClient) -> int:
    return await register(rest, eventMode="webhook", webhookUrl=HOOK)


async def test_a_message_is_posted_as_a_php_form_body(
    rest: httpx.AsyncClient, portal: FakePortal, receiver: FakeReceiver
) -> None:
    bot_id = await webhook_bot(rest)
    happened = portal.stage.message(bot_id, 4, "join marketing")
    assert happened.event_ids == []  # nothing queued in webhook mode
    [delivery] = await portal.deliver()
    assert (delivery.url, delivery.event, delivery.status, delivery.error) == (
        HOOK,
        "ONIMBOTV2MESSAGEADD",
        200,
        None,
    )
    [(path, content_type, body)] = receiver.posts
    assert (path, content_type) == ("/events", "application/x-www-form-urlencoded")
    assert b"[" not in body  # brackets percent-encoded, as http_build_query does
    assert b"data%5Buser%5D%5Bdepartments%5D%5B0%5D=4" in body
    assert b"data%5Bmessage%5D%5Bforward%5D=&" in body  # null → ""
    assert b"params" not in body  # an empty object vanishes
    assert b"event_handler_id" not in body
    [tree] = receiver.trees()
    assert list(tree) == ["event", "data", "ts", "auth"]
    assert tree["event"] == "ONIMBOTV2MESSAGEADD"
    assert tree["ts"] == "1772432000"
    data = tree["data"]
    assert data["bot"] == {"id": str(bot_id), "code": "autojoin"}
    assert data["message"]["id"] == str(happened.message_id)
    assert (data["message"]["isSystem"], data["message"]["text"]) == ("0", "join marketing")
    assert (data["user"]["active"], data["user"]["bot"], data["user"]["extranet"]) == (
        "1",
        "0",
        "0",
    )
    assert (data["chat"]["dialogId"], data["chat"]["type"], data["language"]) == (
        "4",
        "private",
        "en",
    )
    auth = tree["auth"]
    assert auth["application_token"] == "custom" + TOKEN
    assert (auth["domain"], auth["member_id"]) == (DOMAIN, MEMBER_ID)
    assert portal.stage.queue(bot_id)["pending"] == []


async def test_command_and_join_chat_bodies(
    rest: httpx.AsyncClient, portal: FakePortal, receiver: FakeReceiver
) -> None:
    bot_id = await webhook_bot(rest)
    join = await command(rest, bot_id, "join")
    portal.stage.join(bot_id, 6, chat_id=MARKETING)
    portal.stage.command(bot_id, 6, "join", "sales", chat_id=MARKETING)
    sent = await portal.deliver()
    assert [d.event for d in sent] == ["ONIMBOTV2JOINCHAT", "ONIMBOTV2COMMANDADD"]
    joined, invoked = receiver.trees()
    assert joined["data"]["dialogId"] == "chat103"
    assert (joined["data"]["chat"]["id"], joined["data"]["user"]["id"]) == ("103", "6")
    assert invoked["data"]["command"] == {
        "id": str(join),
        "command": "/join",
        "params": "sales",
        "context": "textarea",
    }
    assert invoked["data"]["message"]["text"] == "/join sales"
    assert invoked["data"]["chat"]["dialogId"] == "chat103"


async def test_a_failed_delivery_is_logged_and_never_retried(
    rest: httpx.AsyncClient, portal: FakePortal, receiver: FakeReceiver
) -> None:
    bot_id = await webhook_bot(rest)
    receiver.status = 500
    portal.stage.message(bot_id, 4, "one")
    [failed] = await portal.deliver()
    assert (failed.status, failed.error) == (500, "HTTP 500")
    portal.outbound = FakeRefusingTransport()
    portal.stage.message(bot_id, 4, "two")
    [refused] = await portal.deliver()
    assert (refused.status, refused.error) == (None, "ConnectError")
    assert await portal.deliver() == []
    assert len(receiver.posts) == 1
    assert [d.status for d in portal.state.v2.deliveries] == [500, None]


async def test_switching_modes_routes_new_events_only(
    rest: httpx.AsyncClient, portal: FakePortal, receiver: FakeReceiver
) -> None:
    bot_id = await register(rest)
    queued = portal.stage.message(bot_id, 4, "before").event_ids
    await ok(
        rest,
        "imbot.v2.Bot.update",
        botId=bot_id,
        botToken=TOKEN,
        fields={"eventMode": "webhook", "webhookUrl": HOOK},
    )
    portal.stage.message(bot_id, 4, "after")
    await portal.deliver()
    assert [t["data"]["message"]["text"] for t in receiver.trees()] == ["after"]
    assert [e["eventId"] for e in (await fetch(rest, bot_id))["events"]] == queued


async def test_unregister_posts_the_delete_event_after_answering(
    rest: httpx.AsyncClient, portal: FakePortal, receiver: FakeReceiver
) -> None:
    bot_id = await webhook_bot(rest)
    await ok(rest, "imbot.v2.Bot.unregister", botId=bot_id, botToken=TOKEN)
    [tree] = receiver.trees()
    assert tree["event"] == "ONIMBOTV2DELETE"
    assert tree["data"] == {"bot": {"id": str(bot_id), "code": "autojoin"}}
    assert tree["auth"]["application_token"] == "custom" + TOKEN


async def test_the_admin_api_delivers_before_it_answers(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient, receiver: FakeReceiver
) -> None:
    bot_id = await webhook_bot(rest)
    answer = await admin.post(
        "/_admin/v2/message", json={"bot_id": bot_id, "user_id": 4, "text": "hi"}
    )
    body = answer.json()
    assert body["event_ids"] == []
    assert body["deliveries"] == [
        {
            "url": HOOK,
            "event": "ONIMBOTV2MESSAGEADD",
            "status": 200,
            "error": None,
            "at": 1772432000.0,
            "bot_id": bot_id,
        }
    ]
    assert len(receiver.posts) == 1
    logged = (await admin.get("/_admin/deliveries")).json()
    assert logged == body["deliveries"]
    assert TOKEN not in (await admin.get("/_admin/state")).text
