"""`BotRequest`: the reference's own bot bodies (§2.5–2.8), the builders, and 2.0 (§2.9)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.chatbot.events import BotRequest
from bot.errors import MalformedEvent
from bot.events import Event, Verifier, parse_event, pulled_event
from bot.sandbox.events import (
    APP_TOKEN,
    REFERENCE_BODIES,
    auth_block,
    bot_command,
    bot_join_chat,
    bot_message,
    event_body,
)

VERIFIER = Verifier(tokens=(APP_TOKEN,))
AUTHOR = {"ID": 27, "NAME": "Svetlana Ivanova", "FIRST_NAME": "Svetlana", "LAST_NAME": "Ivanova"}


def parsed(body: bytes) -> Event:
    return parse_event(body, VERIFIER)


def test_reference_group_message_maps_every_field() -> None:
    request = BotRequest.from_v1(parsed(REFERENCE_BODIES["ONIMBOTMESSAGEADD"]))
    assert request == BotRequest(
        "message",
        dialog_id="chat1157",
        chat_type="C",
        chat_id=1157,
        message_id=84351,
        author_id=27,
        author_name="Svetlana Ivanova",
        author_first_name="Svetlana",
        author_last_name="Ivanova",
        text=", please add me to devops",
        bot_id=567,
        bot_code="rules_bot",
        language="en",
    )
    assert not request.private


def test_reference_command_carries_its_ids_and_the_full_text() -> None:
    request = BotRequest.from_v1(parsed(REFERENCE_BODIES["ONIMCOMMANDADD"]))
    assert (request.kind, request.command, request.command_params) == ("command", "join", "devops")
    assert (request.command_id, request.message_id, request.bot_id) == (99, 33871, 567)
    assert (request.dialog_id, request.chat_type, request.chat_id) == ("1269", "P", None)
    assert (request.author_id, request.author_first_name, request.text) == (
        1269,
        "John",
        "/join devops",
    )
    assert request.private


def test_reference_join_chat_and_delete() -> None:
    joined = BotRequest.from_v1(parsed(REFERENCE_BODIES["ONIMBOTJOINCHAT"]))
    assert (joined.kind, joined.dialog_id, joined.chat_id) == ("join_chat", "chat1157", 1157)
    assert (joined.author_id, joined.bot_id, joined.bot_code) == (27, 567, "rules_bot")
    deleted = BotRequest.from_v1(parsed(REFERENCE_BODIES["ONIMBOTDELETE"]))
    assert deleted == BotRequest("delete", bot_id=567, bot_code="rules_bot")


def test_private_message_from_the_builder_and_the_bot_flag() -> None:
    body = bot_message(
        bot_id=567, bot_code="b", text="join marketing", author=AUTHOR, token=APP_TOKEN,
        message_id=5, language="ru",
    )  # fmt: skip
    request = BotRequest.from_v1(parsed(body))
    assert (request.dialog_id, request.chat_type, request.chat_id) == ("27", "P", None)
    assert (request.text, request.language, request.author_is_bot) == (
        "join marketing",
        "ru",
        False,
    )
    robot = bot_message(
        bot_id=567, bot_code="b", text="hi", author={**AUTHOR, "IS_BOT": "Y"}, token=APP_TOKEN,
        message_id=6,
    )  # fmt: skip
    assert BotRequest.from_v1(parsed(robot)).author_is_bot


def test_other_mentions_and_bbcode_keep_their_words_but_lose_the_tags() -> None:
    body = bot_message(
        bot_id=567, bot_code="b", author=AUTHOR, token=APP_TOKEN, message_id=7,
        text="[B]join[/B] marketing with [USER=12]Lena Lind[/USER] and [USER=567]Bot[/USER]",
    )  # fmt: skip
    text = BotRequest.from_v1(parsed(body)).text
    assert "[" not in text
    assert text.split() == ["join", "marketing", "with", "Lena", "Lind", "and"]


@pytest.mark.parametrize(
    ("text", "command", "params"),
    [
        ("/join marketing", "join", "marketing"),
        ("/JOIN  Маркетинг  ", "join", "Маркетинг"),
        ("/join", "join", ""),
        ("/help", "help", ""),
        ("/join\nbackend", "join", "backend"),
        ("join marketing", "", ""),
        ("a /join in the middle", "", ""),
    ],
)
def test_a_message_that_starts_with_a_slash_is_read_as_that_command(
    text: str, command: str, params: str
) -> None:
    body = bot_message(
        bot_id=567, bot_code="b", text=text, author=AUTHOR, token=APP_TOKEN, message_id=8
    )
    request = BotRequest.from_v1(parsed(body)).as_command()
    assert (request.kind, request.command, request.command_params) == ("message", command, params)


def test_command_event_from_the_builder_in_a_group_chat() -> None:
    body = bot_command(
        bot_id=567, bot_code="b", command="help", command_id=3, author=AUTHOR, token=APP_TOKEN,
        message_id=9, chat_id=104,
    )  # fmt: skip
    request = BotRequest.from_v1(parsed(body))
    assert (request.dialog_id, request.chat_id, request.command, request.command_id) == (
        "chat104",
        104,
        "help",
        3,
    )
    assert request.as_command() is request


def test_private_join_chat_answers_the_user() -> None:
    body = bot_join_chat(bot_id=567, bot_code="b", user=AUTHOR, token=APP_TOKEN)
    request = BotRequest.from_v1(parsed(body))
    assert (request.kind, request.dialog_id, request.author_id) == ("join_chat", "27", 27)


@pytest.mark.parametrize("dialog", ["chat1;DROP", "chat", "-5", "27 ", "chat0"])
def test_a_dialog_id_that_could_not_come_from_the_portal_is_refused(dialog: str) -> None:
    body = bot_message(
        bot_id=567, bot_code="b", text="x", author=AUTHOR, token=APP_TOKEN, message_id=1
    )
    body = body.replace(b"DIALOG_ID%5D=27", b"DIALOG_ID%5D=" + dialog.encode().replace(b" ", b"+"))
    with pytest.raises(MalformedEvent, match="DIALOG_ID"):
        BotRequest.from_v1(parsed(body))


def test_only_bot_events_are_read() -> None:
    with pytest.raises(MalformedEvent):
        BotRequest.from_v1(parsed(REFERENCE_BODIES["ONUSERADD/webhook"]))
    with pytest.raises(MalformedEvent):
        BotRequest.from_v2(parsed(REFERENCE_BODIES["ONIMBOTMESSAGEADD"]))


def v2(name: str, data: dict[str, Any]) -> Event:
    return parsed(event_body(name, data, auth_block(APP_TOKEN), ts=1772093963, handler_id=1))


V2_USER = {"id": 1, "name": "John Smith", "firstName": "John", "lastName": "Smith", "bot": False}
V2_CHAT = {"id": 5, "dialogId": "chat5", "type": "chat", "messageType": "C"}


def test_v2_message_maps_onto_the_same_shape() -> None:
    data = {
        "bot": {"id": 456, "code": "support_bot", "auth": {"application_token": "x"}},
        "message": {"id": 789, "chatId": 5, "authorId": 1, "text": "Hello bot!", "isSystem": False},
        "chat": V2_CHAT,
        "user": V2_USER,
        "language": "de",
    }
    request = BotRequest.from_v2(v2("ONIMBOTV2MESSAGEADD", data))
    assert request == BotRequest(
        "message",
        dialog_id="chat5",
        chat_type="C",
        chat_id=5,
        message_id=789,
        author_id=1,
        author_name="John Smith",
        author_first_name="John",
        author_last_name="Smith",
        text="Hello bot!",
        bot_id=456,
        bot_code="support_bot",
        language="de",
        api="v2",
    )


def test_v2_command_in_a_private_dialog() -> None:
    data = {
        "bot": {"id": 456, "code": "support_bot"},
        "command": {"id": 78, "command": "/Join", "params": "marketing", "context": "textarea"},
        "message": {"id": 790, "chatId": 9, "authorId": 1, "text": "/Join marketing"},
        "chat": {"id": 9, "dialogId": "1", "type": "chat"},
        "user": {**V2_USER, "bot": True},
        "language": "en",
    }
    request = BotRequest.from_v2(v2("ONIMBOTV2COMMANDADD", data))
    assert (request.kind, request.command, request.command_id, request.command_params) == (
        "command",
        "join",
        78,
        "marketing",
    )
    assert (request.dialog_id, request.chat_type, request.chat_id) == ("1", "P", None)
    assert request.author_is_bot
    deleted = BotRequest.from_v2(v2("ONIMBOTV2DELETE", {"bot": {"id": 456, "code": "s"}}))
    assert deleted == BotRequest("delete", bot_id=456, bot_code="s", api="v2")


def test_a_fetched_item_and_its_webhook_post_are_the_same_request() -> None:
    """One shape for both delivery modes: JSON types cast as a form carries them."""
    data: dict[str, Any] = {
        "bot": {"id": 456, "code": "autojoin", "eventMode": "fetch", "isHidden": False},
        "message": {"id": 789, "chatId": 5, "authorId": 1, "text": "join marketing",
                    "isSystem": False, "forward": None, "params": {}},
        "chat": V2_CHAT,
        "user": {**V2_USER, "active": True, "departments": [1, 5], "type": "employee"},
        "language": "en",
    }  # fmt: skip
    fetched = BotRequest.parse(pulled_event("ONIMBOTV2MESSAGEADD", data, member_id="m", domain="d"))
    pushed = BotRequest.parse(v2("ONIMBOTV2MESSAGEADD", data))
    assert fetched == pushed
    assert fetched.author_departments == (1, 5)
    assert not fetched.author_is_bot
    assert fetched.text == "join marketing"


def test_departments_absent_from_the_event_are_unknown_not_empty() -> None:
    user = dict(V2_USER)
    data = {"bot": {"id": 4}, "message": {"id": 7, "authorId": 1, "text": "hi"},
            "chat": V2_CHAT, "user": user}  # fmt: skip
    assert BotRequest.parse(v2("ONIMBOTV2MESSAGEADD", data)).author_departments is None
    empty = {**data, "user": {**user, "departments": [], "type": "bot"}}
    fetched = BotRequest.parse(pulled_event("ONIMBOTV2MESSAGEADD", empty, member_id="m", domain=""))
    assert fetched.author_departments == ()
    assert fetched.author_is_bot  # a user of type "bot" is a bot even without the flag


def test_a_pulled_event_drops_tokens_and_refuses_non_events() -> None:
    event = pulled_event("ONUSERADD", {"ID": 5, "auth": {"access_token": "t"}}, member_id="m",
                         domain="d")  # fmt: skip
    assert event.data == {"ID": "5"}
    assert event.portal == "m"
    with pytest.raises(MalformedEvent):
        pulled_event("bad name!", {}, member_id="m", domain="d")
    with pytest.raises(MalformedEvent):
        pulled_event("ONUSERADD", [1], member_id="m", domain="d")
