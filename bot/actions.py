"""Job kind → executor: the registry the worker runs.

The executors live in their feature modules; the types they share are in `bot.executor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot import membership
from bot.chatbot import replies, requests
from bot.executor import Executor
from bot.jobs import ADD_TO_CHAT, BOT_REPLY, BOT_REQUEST, REMOVE_FROM_CHAT, RESOLVE_USER
from bot.reconcile import remove

EXECUTORS: Mapping[str, Executor] = {
    RESOLVE_USER: membership.resolve_users,
    ADD_TO_CHAT: membership.add_to_chats,
    REMOVE_FROM_CHAT: remove.remove_from_chats,
    BOT_REQUEST: requests.handle_requests,
    BOT_REPLY: replies.send_replies,
}

SETTLE_EACH: Final = frozenset({BOT_REPLY})
"""Kinds whose repetition a person would notice (a reply, a command answer, the "queued"
notice): the worker runs and settles them one at a time, each right after its own call.
Adds and removals are verified against the member list, so a rerun repeats nothing."""
