"""keyword_join handlers: Event + rules → one job, pure (no store, no portal, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

import handlers
from bot.events import Event, Verifier, parse_event, pulled_event
from bot.jobs import BOT_REPLY, BOT_REQUEST
from bot.routing import Dispatch, HandlerContext
from bot.rules import parse_rules
from bot.sandbox.events import APP_TOKEN, bot_command, bot_delete, bot_join_chat, bot_message
from handlers import keyword_join

RULES = parse_rules(
    """
version: 1
defaults: {hide_history: false}
rules:
  - name: marketing
    keywords: ["join marketing", "маркетинг"]
    chats: [103]
  - name: backend
    keywords: ["join backend"]
    only_departments: [6]
    chats: [105]
  - name: all-hands
    keywords: ["marketing"]
    chats: [101]
  - name: trees
    keywords: ["ёлка"]
    chats: [110]
  - name: off
    enabled: false
    keywords: ["marketing"]
    chats: [111]
"""
)
CTX = HandlerContext(rules=RULES)
AUTHOR = {"ID": 27, "NAME": "Svetlana Ivanova", "FIRST_NAME": "Svetlana", "LAST_NAME": "Ivanova"}


def event(body: bytes) -> Event:
    return parse_event(body, Verifier(tokens=(APP_TOKEN,)))


def message(text: str, message_id: int = 84351, **extra: Any) -> Event:
    args: dict[str, Any] = {"author": AUTHOR, "token": APP_TOKEN, "message_id": message_id}
    return event(bot_message(bot_id=567, bot_code="autojoin", text=text, **(args | extra)))


def command(name: str, params: str = "", message_id: int = 84351, **extra: Any) -> Event:
    args: dict[str, Any] = {"author": AUTHOR, "token": APP_TOKEN, "message_id": message_id}
    body = bot_command(
        bot_id=567, bot_code="autojoin", command=name, command_id=7, command_params=params,
        **(args | extra),
    )  # fmt: skip
    return event(body)


def dispatch(ev: Event, ctx: HandlerContext = CTX) -> Dispatch:
    handler = handlers.router.handler_for(ev.name)
    assert handler is not None
    result = handler(ev, ctx)
    assert result is not None
    return result


def request(ev: Event, ctx: HandlerContext = CTX) -> dict[str, Any]:
    result = dispatch(ev, ctx)
    [job] = result.jobs
    assert (job.kind, job.dedupe_key) == (BOT_REQUEST, "request")
    return dict(job.payload)


def test_the_composed_router_handles_exactly_these_events() -> None:
    assert handlers.router.events == {
        "ONUSERADD",
        "ONIMBOTMESSAGEADD",
        "ONIMCOMMANDADD",
        "ONIMBOTV2MESSAGEADD",
        "ONIMBOTV2COMMANDADD",
        "ONIMBOTV2JOINCHAT",
        "ONIMBOTV2DELETE",
        "ONIMBOTJOINCHAT",
        "ONIMBOTDELETE",
    }


def test_private_keyword_matches_every_rule_in_file_order() -> None:
    payload = request(message("Please, JOIN Marketing!"))
    assert payload["action"] == "join"
    assert payload["rules"] == ["marketing", "all-hands"]  # the disabled rule is not there
    assert payload["author"] == {"id": 27, "name": "Svetlana Ivanova", "first_name": "Svetlana"}
    assert payload["to"] == {
        "bot_id": 567,
        "dialog_id": "27",
        "command_id": None,
        "message_id": 84351,
    }
    assert (payload["language"], payload["via"]) == ("en", "message")


def test_message_and_command_of_one_message_share_the_key() -> None:
    as_message = dispatch(message("/join marketing"))
    as_command = dispatch(command("join", "marketing"))
    assert as_message.key == as_command.key == "msg:84351"
    assert as_message.jobs[0].payload["rules"] == as_command.jobs[0].payload["rules"]
    assert as_command.jobs[0].payload["to"]["command_id"] == 7
    assert as_message.jobs[0].payload["to"]["command_id"] is None


def test_group_mention_answers_in_the_chat() -> None:
    payload = request(message(", please add me to marketing", chat_id=104))
    assert payload["to"]["dialog_id"] == "chat104"
    assert payload["rules"] == ["all-hands"]


@pytest.mark.parametrize(
    ("ev", "action"),
    [
        (command("join"), "help"),
        (command("join", "   "), "help"),
        (command("help"), "help"),
        (command("whois"), "help"),
        (message("/join"), "help"),
        (message("/help"), "help"),
        (message("   "), "help"),
        (message("hello there"), "nomatch"),
        (command("join", "nothing here"), "nomatch"),
    ],
)
def test_help_and_no_match(ev: Event, action: str) -> None:
    payload = request(ev)
    assert (payload["action"], payload["rules"]) == (action, [])


@pytest.mark.parametrize(
    ("ev", "action"),
    [
        (command("why"), "why"),
        (command("why", "12"), "why"),
        (message("/why 12"), "why"),
        (message("/WHY [USER=12]Lena[/USER]"), "why"),
        (message("why"), "why"),
        (message("  Why?! "), "why"),
        (message("why me"), "nomatch"),
        (message("why marketing"), "join"),  # a keyword in the message is a request to join
    ],
)
def test_why_is_the_command_or_the_word_alone(ev: Event, action: str) -> None:
    payload = request(ev)
    assert payload["action"] == action
    assert payload["author"]["id"] == 27  # whoever is named, the answer is about the author
    assert set(payload) == {"action", "rules", "author", "to", "language", "via"}


def test_a_keyword_rule_for_why_wins_over_the_question() -> None:
    rules = parse_rules(
        "version: 1\ndefaults: {hide_history: false}\n"
        "rules:\n  - {name: philosophy, keywords: [why], chats: [120]}\n"
    )
    ctx = HandlerContext(rules=rules)
    assert request(message("why"), ctx)["rules"] == ["philosophy"]
    assert request(command("why"), ctx)["action"] == "why"


def test_cyrillic_keywords_fold_case_and_yo() -> None:
    assert request(message("Хочу в МАРКЕТИНГ"))["rules"] == ["marketing"]
    assert request(message("где ЕЛКА?"))["rules"] == ["trees"]
    assert request(command("join", "ёлка"))["rules"] == ["trees"]
    assert request(message("маркетингу"))["action"] == "nomatch"  # whole words only


def test_only_the_beginning_of_a_long_message_is_matched() -> None:
    padding = "word " * 500
    assert request(message("marketing " + padding))["rules"] == ["all-hands"]
    assert request(message(padding + "marketing"))["action"] == "nomatch"
    short = HandlerContext(rules=RULES, max_message_length=20)
    assert request(message("x" * 15 + " marketing"), short)["action"] == "nomatch"


def test_nobody_else_can_be_named_as_the_person_to_add() -> None:
    payload = request(message("join marketing for [USER=12]Lena[/USER], user 12, ID=12"))
    assert payload["author"]["id"] == 27
    assert "12" not in repr(payload["to"])
    assert set(payload) == {"action", "rules", "author", "to", "language", "via"}


def test_messages_written_by_bots_do_nothing() -> None:
    robot = {**AUTHOR, "IS_BOT": "Y"}
    result = dispatch(message("join marketing", author=robot))
    assert (result.key, result.jobs) == ("msg:84351", ())
    own = dispatch(message("join marketing", author={**AUTHOR, "ID": 567}))
    assert own.jobs == ()


def test_welcome_in_a_chat_and_the_bot_deletion() -> None:
    joined = dispatch(
        event(bot_join_chat(bot_id=567, bot_code="a", user=AUTHOR, token=APP_TOKEN, chat_id=104))
    )
    [welcome] = joined.jobs
    assert (joined.key, welcome.kind, welcome.dedupe_key) == (
        "join:567:chat104",
        BOT_REPLY,
        "welcome",
    )
    assert welcome.payload["say"] == "welcome"
    assert welcome.payload["to"]["dialog_id"] == "chat104"
    deleted = dispatch(event(bot_delete(bot_id=567, bot_code="a", token=APP_TOKEN)))
    [forget] = deleted.jobs
    assert deleted.key == "botdelete:567"
    assert forget.payload == {"action": "forget", "bot_id": 567, "bot_code": "a"}


def test_the_keyword_index_is_built_once_per_rules_version() -> None:
    keyword_join.matching_rules(RULES, "marketing", 2000)
    first = keyword_join._INDEXES[(RULES.digest, 2000)]
    keyword_join.matching_rules(RULES, "маркетинг", 2000)
    assert keyword_join._INDEXES[(RULES.digest, 2000)] is first


def _v2(name: str, user: dict[str, Any], **data: Any) -> Event:
    tree = {"bot": {"id": 456, "code": "autojoin"}, "user": user, **data}
    return pulled_event(name, tree, member_id="m", domain="d")


V2_AUTHOR = {"id": 27, "name": "Svetlana", "bot": False, "departments": [6], "type": "employee"}


def test_v2_message_same_key_as_classic_and_departments_travel_with_it() -> None:
    message = {"id": 84351, "authorId": 27, "text": "join backend"}
    chat = {"id": 27, "dialogId": "27", "type": "private", "messageType": "P"}
    ev = _v2("ONIMBOTV2MESSAGEADD", V2_AUTHOR, message=message, chat=chat)
    assert dispatch(ev).key == "msg:84351"
    payload = request(ev)
    assert payload["rules"] == ["backend"]
    assert payload["author"]["departments"] == [6]
    assert payload["to"]["api"] == "v2"


def test_v2_messages_from_bots_are_ignored() -> None:
    message = {"id": 9, "authorId": 27, "text": "join marketing"}
    chat = {"id": 5, "dialogId": "chat5", "type": "chat"}
    ev = _v2("ONIMBOTV2MESSAGEADD", {**V2_AUTHOR, "bot": True}, message=message, chat=chat)
    result = dispatch(ev)
    assert (result.jobs, result.note) == ((), "written by a bot")
