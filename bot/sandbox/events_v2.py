"""Chatbots 2.0 events (`ONIMBOTV2*`, reference §4): built once, delivered by the bot's mode.

Fetch mode: the event joins the bot's queue with the next `eventId`, `data.bot` the extended
Bot and no `auth`, JSON types kept. Webhook mode: the same tree goes into the outbox as a PHP
`http_build_query` body (`event`, `data`, `ts`, `auth`; every scalar a string, `null` as `""`,
empty arrays gone) for `outbound.deliver` to POST, with `auth[application_token]` =
"custom" + botToken. Choices where the reference is silent:

- `data.bot` in webhook mode is `{id, code}`: what `auth` a botToken bot gets there is
  UNCONFIRMED, and classic webhook bots get only their id and code too.
- Webhook-mode bots queue nothing (whether the platform queues them is UNCONFIRMED), and
  unacknowledged events are kept for good (retention is UNCONFIRMED).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.formparse import build_query
from bot.sandbox.entities_v2 import (
    author_object,
    bot_extended,
    group_chat_object,
    message_object,
    private_chat_object,
)
from bot.sandbox.events_wire import auth_block
from bot.sandbox.state import Bot, Chat, PortalState
from bot.sandbox.state_v2 import Outgoing, QueuedEvent

WEBHOOK_TOKEN_PREFIX = "custom"  # auth[application_token] of a webhook-registered bot


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


def _blank_nulls(node: Any) -> Any:
    """`null` → `""` before encoding: build_query (rightly, for requests) drops None."""
    if isinstance(node, dict):
        return {k: _blank_nulls(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_blank_nulls(v) for v in node]
    return "" if node is None else node


def webhook_body(event: str, data: dict[str, Any], *, token: str, ts: int) -> bytes:
    auth = auth_block(WEBHOOK_TOKEN_PREFIX + token, variant="webhook")
    fields = {"event": event, "data": _blank_nulls(data), "ts": ts, "auth": auth}
    return build_query(fields).encode()


def emit(state: PortalState, now: float, bot: Bot, event: str, data: dict[str, Any]) -> int | None:
    """Hand one event to a v2 bot; the `eventId` in fetch mode, None when it goes out by POST."""
    v2 = bot.v2
    if v2 is None:
        raise ValueError(f"bot {bot.id} is a classic bot: it gets no ONIMBOTV2 events")
    if v2.event_mode == "webhook":
        body = webhook_body(
            event, {"bot": {"id": bot.id, "code": bot.code}, **data}, token=v2.token, ts=int(now)
        )
        state.v2.outbox.append(Outgoing(v2.webhook_url, event, body, bot.id))
        return None
    item = {"bot": bot_extended(state, bot), **data}
    queued = QueuedEvent(state.v2.take_event_id(), event, iso(now), item)
    state.v2.queue(bot.id).pending.append(queued)
    return queued.event_id


def conversation(
    state: PortalState, bot: Bot, author_id: int, chat: Chat | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`chat`, `user`) of an event: the group chat, or the 1:1 dialog with the author."""
    author = author_object(state, author_id)
    if chat is not None:
        return group_chat_object(state, chat), author
    chat_id = state.v2.private_chat_id(bot.id, author_id)
    return private_chat_object(chat_id, author), author


def _remember(bot: Bot, author_id: int) -> None:
    if bot.v2 is not None:
        bot.v2.users_seen.add(author_id)


def message_add(
    state: PortalState,
    now: float,
    bot: Bot,
    *,
    author_id: int,
    text: str,
    chat: Chat | None,
    language: str,
    message_id: int | None = None,
) -> tuple[int, int | None]:
    """ONIMBOTV2MESSAGEADD; (message id, event id)."""
    chat_obj, user = conversation(state, bot, author_id, chat)
    mid = state.take_message_id() if message_id is None else message_id
    _remember(bot, author_id)
    data = {
        "message": message_object(mid, chat_obj["id"], author_id, iso(now), text),
        "chat": chat_obj,
        "user": user,
        "language": language,
    }
    return mid, emit(state, now, bot, "ONIMBOTV2MESSAGEADD", data)


def command_add(
    state: PortalState,
    now: float,
    bot: Bot,
    *,
    author_id: int,
    command_id: int,
    command: str,
    params: str,
    context: str,
    chat: Chat | None,
    language: str,
    message_id: int,
) -> int | None:
    """ONIMBOTV2COMMANDADD for a message already numbered `message_id`; the event id."""
    chat_obj, user = conversation(state, bot, author_id, chat)
    text = f"/{command} {params}".strip()
    _remember(bot, author_id)
    invoked = {"id": command_id, "command": f"/{command}", "params": params, "context": context}
    data = {
        "command": invoked,
        "message": message_object(message_id, chat_obj["id"], author_id, iso(now), text),
        "chat": chat_obj,
        "user": user,
        "language": language,
    }
    return emit(state, now, bot, "ONIMBOTV2COMMANDADD", data)


def join_chat(
    state: PortalState, now: float, bot: Bot, *, user_id: int, chat: Chat | None, language: str
) -> int | None:
    """ONIMBOTV2JOINCHAT: added to a group chat, or a user opened the 1:1 dialog."""
    chat_obj, user = conversation(state, bot, user_id, chat)
    data = {"dialogId": chat_obj["dialogId"], "chat": chat_obj, "user": user, "language": language}
    return emit(state, now, bot, "ONIMBOTV2JOINCHAT", data)


def bot_delete(state: PortalState, now: float, bot: Bot) -> int | None:
    """ONIMBOTV2DELETE, the bot's last event: `data` holds the bot and nothing else."""
    return emit(state, now, bot, "ONIMBOTV2DELETE", {})
