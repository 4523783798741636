"""Fetch mode: what users do becomes queued `ONIMBOTV2*` events, read with `Event.get` (§4, §5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import MARKETING, SALES_ALL_HANDS
from bot.sandbox.state import Bot
from tests.sandbox.v2 import TOKEN, command, error, fetch, register

pytestmark = pytest.mark.anyio

CLASSIC = 999_999


def walk(node: Any) -> list[str]:
    """Every key anywhere in a JSON tree."""
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in (key, *walk(value))]
    if isinstance(node, list):
        return [k for value in node for k in walk(value)]
    return []


async def test_a_private_message_is_one_fetch_event_with_real_json_types(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    happened = portal.stage.message(bot_id, 4, "join marketing")
    answer = await fetch(rest, bot_id)
    assert answer["hasMore"] is False
    [event] = answer["events"]
    assert answer["nextOffset"] == event["eventId"] + 1
    assert event["eventId"] == happened.event_ids[0]
    assert event["type"] == "ONIMBOTV2MESSAGEADD"
    assert event["date"] == "2026-03-02T06:13:20+00:00"
    data = event["data"]
    assert set(data) == {"bot", "message", "chat", "user", "language"}
    assert "auth" not in walk(event)
    assert data["bot"]["id"] == bot_id
    assert data["bot"]["eventMode"] == "fetch"  # the extended bot
    assert data["message"] == {
        "id": happened.message_id,
        "chatId": data["chat"]["id"],
        "authorId": 4,
        "date": event["date"],
        "text": "join marketing",
        "isSystem": False,
        "uuid": "",
        "forward": None,
        "params": {},
        "viewedByOthers": False,
    }
    assert (data["chat"]["dialogId"], data["chat"]["type"], data["chat"]["messageType"]) == (
        "4",
        "private",
        "P",
    )
    user = data["user"]
    assert (user["id"], user["name"], user["active"], user["bot"], user["extranet"]) == (
        4,
        "Dieter Dorn",
        True,
        False,
        False,
    )
    assert (user["departments"], user["type"], data["language"]) == ([4], "employee", "en")


async def test_group_chats_need_the_bot_and_for_a_bot_type_bot_a_mention(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    outside = portal.stage.message(bot_id, 2, "join marketing", chat_id=SALES_ALL_HANDS)
    joined = portal.stage.join(bot_id, 2, chat_id=SALES_ALL_HANDS)
    unmentioned = portal.stage.message(bot_id, 3, "lunch?", chat_id=SALES_ALL_HANDS, mention=False)
    mentioned = portal.stage.message(bot_id, 3, "join marketing", chat_id=SALES_ALL_HANDS)
    assert outside.event_ids == []
    assert outside.message_id is not None  # the message exists, the bot just never sees it
    assert unmentioned.event_ids == []
    events = (await fetch(rest, bot_id))["events"]
    assert [e["eventId"] for e in events] == joined.event_ids + mentioned.event_ids
    join, message = events
    assert join["type"] == "ONIMBOTV2JOINCHAT"
    assert join["data"]["dialogId"] == "chat101"
    assert join["data"]["user"]["id"] == 2
    assert (join["data"]["chat"]["type"], join["data"]["chat"]["name"]) == (
        "chat",
        "Sales all-hands",
    )
    assert message["data"]["chat"]["dialogId"] == "chat101"
    assert message["data"]["message"]["chatId"] == SALES_ALL_HANDS
    assert bot_id in portal.chat_members(SALES_ALL_HANDS)


async def test_a_supervisor_sees_every_message_in_its_chats(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest, type="supervisor")
    portal.stage.join(bot_id, 6, chat_id=MARKETING)
    seen = portal.stage.message(bot_id, 6, "lunch?", chat_id=MARKETING, mention=False)
    assert len(seen.event_ids) == 1


async def test_a_command_event_and_its_optional_message_twin(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    join = await command(rest, bot_id, "join")
    plain = portal.stage.command(bot_id, 5, "join", "marketing", language="ru")
    twin = portal.stage.command(bot_id, 5, "/join", "sales", context="keyboard", with_message=True)
    events = (await fetch(rest, bot_id))["events"]
    assert [e["type"] for e in events] == [
        "ONIMBOTV2COMMANDADD",
        "ONIMBOTV2MESSAGEADD",
        "ONIMBOTV2COMMANDADD",
    ]
    first = events[0]["data"]
    assert first["command"] == {
        "id": join,
        "command": "/join",
        "params": "marketing",
        "context": "textarea",
    }
    assert first["message"]["id"] == plain.message_id
    assert first["message"]["text"] == "/join marketing"
    assert first["chat"]["dialogId"] == "5"
    assert first["language"] == "ru"
    assert events[1]["data"]["message"]["id"] == events[2]["data"]["message"]["id"]
    assert events[2]["data"]["message"]["id"] == twin.message_id
    assert events[2]["data"]["command"]["context"] == "keyboard"


async def test_offset_acknowledges_and_no_offset_serves_the_same_events_again(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    ids = [portal.stage.message(bot_id, 4, f"m{n}").event_ids[0] for n in range(3)]
    assert ids == sorted(ids)
    first = await fetch(rest, bot_id, limit=2)
    again = await fetch(rest, bot_id, limit=2)
    assert first == again  # nothing acknowledged yet
    assert ([e["eventId"] for e in first["events"]], first["hasMore"]) == (ids[:2], True)
    assert first["nextOffset"] == ids[1] + 1
    rest_of_it = await fetch(rest, bot_id, offset=first["nextOffset"])
    assert [e["eventId"] for e in rest_of_it["events"]] == [ids[2]]
    assert rest_of_it["hasMore"] is False
    partial = await fetch(rest, bot_id, offset=ids[2])  # acknowledges < ids[2] only
    assert [e["eventId"] for e in partial["events"]] == [ids[2]]
    empty = await fetch(rest, bot_id, offset=rest_of_it["nextOffset"])
    assert empty == {"events": [], "nextOffset": 0, "hasMore": False}
    assert await fetch(rest, bot_id, offset=0) == empty  # an old offset changes nothing


async def test_rewind_serves_acknowledged_events_again_with_their_ids(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    ids = [portal.stage.message(bot_id, 4, f"m{n}").event_ids[0] for n in range(3)]
    served = await fetch(rest, bot_id)
    await fetch(rest, bot_id, offset=served["nextOffset"])
    assert portal.stage.queue(bot_id)["acknowledged"] == ids
    assert portal.stage.rewind(bot_id, offset=ids[1]) == 2
    replay = await fetch(rest, bot_id)
    assert replay["events"] == served["events"][1:]
    assert portal.stage.rewind(bot_id) == 1
    assert [e["eventId"] for e in (await fetch(rest, bot_id))["events"]] == ids


async def test_limit_is_clamped_and_user_events_are_refused(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    bot_id = await register(rest)
    for n in range(2):
        portal.stage.message(bot_id, 4, f"m{n}")
    one = await fetch(rest, bot_id, limit=0)
    assert (len(one["events"]), one["hasMore"]) == (1, True)
    many = await fetch(rest, bot_id, limit=5000)
    assert (len(many["events"]), many["hasMore"]) == (2, False)
    refused = await error(
        rest, "imbot.v2.Event.get", botId=bot_id, botToken=TOKEN, withUserEvents=True
    )
    assert refused == (400, "USER_NOT_SUBSCRIBED")


async def test_queues_are_per_bot_and_event_ids_keep_growing(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    first = await register(rest)
    second = await register(rest, code="second")
    a = portal.stage.message(first, 4, "a").event_ids
    b = portal.stage.message(second, 4, "b").event_ids
    c = portal.stage.message(first, 4, "c").event_ids
    assert a[0] < b[0] < c[0]
    assert [e["eventId"] for e in (await fetch(rest, first))["events"]] == a + c
    assert [e["eventId"] for e in (await fetch(rest, second))["events"]] == b


async def test_a_message_from_a_bot_says_so(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    bot_id = await register(rest)
    other = await register(rest, code="chatty")
    portal.stage.message(bot_id, other, "hello, fellow bot")
    user = (await fetch(rest, bot_id))["events"][0]["data"]["user"]
    assert (user["id"], user["bot"], user["type"]) == (other, True, "bot")


async def test_an_extranet_author_is_flagged(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    bot_id = await register(rest)
    portal.stage.message(bot_id, 12, "join marketing")
    user = (await fetch(rest, bot_id))["events"][0]["data"]["user"]
    assert (user["extranet"], user["type"], user["departments"]) == (True, "extranet", [])
    bot = (await fetch(rest, bot_id))["events"][0]["data"]["bot"]
    assert bot["countUser"] == 1


@pytest.mark.parametrize(
    ("action", "problem"),
    [
        ("classic bot", "no Chatbots 2.0 bot"),
        ("not a member", "is not a member of chat"),
        ("unknown command", "has no command /leave"),
        ("local command, bot absent", "is not common"),
        ("extranet user", "not available to extranet users"),
        ("bad context", "context must be one of"),
        ("unknown user", "no user 404"),
    ],
)
async def test_setup_mistakes_are_refused(
    rest: httpx.AsyncClient, portal: FakePortal, action: str, problem: str
) -> None:
    bot_id = await register(rest)
    await command(rest, bot_id, "join")
    portal.state.bots[CLASSIC] = Bot(CLASSIC, "old", "classic-client")
    attempts = {
        "classic bot": lambda: portal.stage.message(CLASSIC, 4, "hi"),
        "not a member": lambda: portal.stage.message(bot_id, 4, "hi", chat_id=SALES_ALL_HANDS),
        "unknown command": lambda: portal.stage.command(bot_id, 4, "leave"),
        "local command, bot absent": lambda: portal.stage.command(
            bot_id, 2, "join", chat_id=SALES_ALL_HANDS
        ),
        "extranet user": lambda: portal.stage.command(bot_id, 12, "join"),
        "bad context": lambda: portal.stage.command(bot_id, 4, "join", context="voice"),
        "unknown user": lambda: portal.stage.message(bot_id, 404, "hi"),
    }
    with pytest.raises(ValueError, match=problem):
        attempts[action]()
    assert portal.stage.queue(bot_id)["pending"] == []
