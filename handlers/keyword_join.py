"""People ask the bot to join chats: a keyword in a message, or `/join <keyword>`; and ask
it why they are (not) in chats: `/why`, or the message "why" on its own.

A private message, a group message that mentions the bot (Bitrix24 strips the mention) and
the `/join` command all go through the same keyword index. Whether the person may join is
decided later by the worker, which knows their departments; the handler only records what
was asked and where to answer. A message and a command carrying the same MESSAGE_ID are one
request (key `msg:<id>`): the first delivery wins, the second is a duplicate.
"""

from __future__ import annotations

import re
from typing import Any

from bot.chatbot.events import BotRequest
from bot.errors import MalformedEvent
from bot.events import Event
from bot.jobs import BOT_REPLY, BOT_REQUEST, NewJob
from bot.routing import Dispatch, HandlerContext, Router
from bot.rules import RuleSet
from bot.rules.keywords import KeywordIndex
from bot.rules.model import Rule

router = Router()

_INDEXES: dict[tuple[str, int], tuple[KeywordIndex, tuple[Rule, ...]]] = {}
_WHY = re.compile(r"why\s*[?!.]*", re.IGNORECASE)


@router.register(
    "ONIMBOTMESSAGEADD", "ONIMCOMMANDADD", "ONIMBOTV2MESSAGEADD", "ONIMBOTV2COMMANDADD"
)
def ask_to_join(event: Event, ctx: HandlerContext) -> Dispatch:
    request = BotRequest.parse(event).as_command()
    if request.message_id is None:
        raise MalformedEvent("the bot event carries no MESSAGE_ID")
    key = f"msg:{request.message_id}"
    if request.author_is_bot or request.system or request.author_id == request.bot_id:
        return Dispatch(key, note="written by a bot")
    if request.author_id is None or request.bot_id is None or not request.dialog_id:
        return Dispatch(key, note="no author, bot or dialog")
    action, rules = decide(request, ctx)
    payload = {**envelope(request), "action": action, "rules": rules}
    job = NewJob(BOT_REQUEST, payload, dedupe_key="request")
    return Dispatch(key, (job,), note=f"{action} {','.join(rules)}".strip())


@router.register("ONIMBOTJOINCHAT", "ONIMBOTV2JOINCHAT")
def welcome(event: Event, ctx: HandlerContext) -> Dispatch:
    request = BotRequest.parse(event)
    key = f"join:{request.bot_id}:{request.dialog_id}"
    if request.bot_id is None or not request.dialog_id:
        return Dispatch(key, note="no bot or dialog")
    job = NewJob(BOT_REPLY, {**envelope(request), "say": "welcome"}, dedupe_key="welcome")
    return Dispatch(key, (job,))


@router.register("ONIMBOTDELETE", "ONIMBOTV2DELETE")
def forget_bot(event: Event, ctx: HandlerContext) -> Dispatch:
    request = BotRequest.parse(event)
    key = f"botdelete:{request.bot_id}"
    if request.bot_id is None:
        return Dispatch(key, note="no BOT_ID")
    payload = {"action": "forget", "bot_id": request.bot_id, "bot_code": request.bot_code}
    return Dispatch(key, (NewJob(BOT_REQUEST, payload, dedupe_key="forget"),))


def decide(request: BotRequest, ctx: HandlerContext) -> tuple[str, list[str]]:
    """`join` with matched rule names, `nomatch`, `why` (`/why`, or "why" alone), or `help`
    (`/help`, bare `/join`, unknown commands).

    `/why` ignores its parameters: the answer is about the author, whoever they name. A
    keyword rule that matches the bare word "why" still wins over the question.
    """
    if request.command == "why":
        return "why", []
    if request.command:
        if request.command != "join" or not request.command_params.strip():
            return "help", []
        text = request.command_params
    else:
        text = request.text
    if not text.strip():
        return "help", []
    rules = matching_rules(ctx.rules, text, ctx.max_message_length)
    if rules:
        return "join", rules
    return ("why", []) if _WHY.fullmatch(text.strip()) else ("nomatch", [])


def matching_rules(ruleset: RuleSet, text: str, max_chars: int) -> list[str]:
    """Names of every enabled keyword rule whose phrase occurs in `text`, in file order."""
    index, rules = _index(ruleset, max_chars)
    return [rules[i].name for i in index.match(text)]


def _index(ruleset: RuleSet, max_chars: int) -> tuple[KeywordIndex, tuple[Rule, ...]]:
    """Built once per rules file version (the digest), not once per message."""
    cache_key = (ruleset.digest, max_chars)
    found = _INDEXES.get(cache_key)
    if found is None:
        rules = tuple(r for r in ruleset.rules if r.enabled and r.kind == "keywords")
        index = KeywordIndex(max_chars)
        for position, rule in enumerate(rules):
            index.add_all(rule.keywords, position)
        if len(_INDEXES) >= 4:
            _INDEXES.clear()
        _INDEXES[cache_key] = found = (index, rules)
    return found


def envelope(request: BotRequest) -> dict[str, Any]:
    """Who asked, where to answer, in which language: what every bot job carries."""
    author: dict[str, Any] = {
        "id": request.author_id,
        "name": request.author_name,
        "first_name": request.author_first_name or request.author_name,
    }
    if request.author_departments is not None:  # Chatbots 2.0 events carry them
        author["departments"] = list(request.author_departments)
    to: dict[str, Any] = {
        "bot_id": request.bot_id,
        "dialog_id": request.dialog_id,
        "command_id": request.command_id if request.kind == "command" else None,
        "message_id": request.message_id,
    }
    if request.api != "v1":
        to["api"] = request.api
    return {
        "author": author,
        "to": to,
        "language": request.language,
        "via": request.kind,
    }
