"""Chats as people know them: a title, a member count, and whether autojoin may add to them.

`im.dialog.get` gives one chat's card by ID (plan, sync, explain, history, `check --portal`);
`im.recent.list` lists the webhook user's chats with the same card (`autojoin chats`). Both
go through `card_from`, so a chat is described in the same words everywhere, and a chat that
cannot be read gets one diagnosis: a chat that does not exist and a chat the webhook user
cannot see look the same to the portal (ACCESS_ERROR), and say so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from bot.errors import PortalError
from bot.reconcile.model import ChatCard, Plan
from bot.reconcile.reader import Command, Reader, ReadResult
from bot.rest import PortalClient

ROLE_RANK: Final = {"none": 0, "member": 1, "manager": 2, "owner": 3}


def dialog_call(chat_id: int) -> Command:
    return (f"c{chat_id}", "im.dialog.get", {"DIALOG_ID": f"chat{chat_id}"})


def not_found(chat_id: int) -> str:
    return (
        f"chat {chat_id} does not exist or the webhook user cannot see it (ACCESS_ERROR); "
        "check the ID (`autojoin chats` lists the chats it can see) and add the webhook user "
        "to the chat"
    )


def _role_issue(chat: int, role: str, needed: object, what: str) -> str | None:
    need = ROLE_RANK.get(str(needed)) if needed is not None else ROLE_RANK["member"]
    if need is None:
        return f"chat {chat}: unknown {what} permission {needed!r}; cannot tell who may do it"
    have = ROLE_RANK.get(role, 0)
    if have >= need:
        return None
    who = "is not a member of" if have == 0 else f"is only {role} in"
    verb = "adding" if what == "manage_users_add" else "removing"
    return (
        f"the webhook user {who} chat {chat}, and {verb} members needs {needed} "
        f"({what}); give the webhook user that role in the chat"
    )


def card_from(chat_id: int, raw: object) -> ChatCard:
    """A card from an `im.dialog.get` result or an `im.recent.list` item's `chat`."""
    if not isinstance(raw, Mapping):
        return ChatCard(chat_id, add_problem=f"chat {chat_id}: the portal gave no chat card")
    role = str(raw.get("role") or "none").lower()
    raw_permissions = raw.get("permissions")
    permissions: Mapping[str, Any] = raw_permissions if isinstance(raw_permissions, Mapping) else {}
    restrictions = raw.get("restrictions")
    if raw.get("type") == "general" or raw.get("entity_type") == "GENERAL":
        add: str | None = f"chat {chat_id} is the company-wide general chat, which takes no members"
    elif isinstance(restrictions, Mapping) and restrictions.get("extend") is False:
        add = f"chat {chat_id} takes no new members (its type forbids adding; ACCESS_ERROR)"
    else:
        add = _role_issue(chat_id, role, permissions.get("manage_users_add"), "manage_users_add")
    remove = _role_issue(
        chat_id, role, permissions.get("manage_users_delete"), "manage_users_delete"
    )
    counter = raw.get("user_counter")
    members = int(counter) if isinstance(counter, int | str) and str(counter).isdigit() else None
    title = str(raw.get("name") or raw.get("title") or "").strip()
    return ChatCard(chat_id, title, members, role, add, remove)


def unseen(chat_id: int, error: PortalError) -> ChatCard:
    if error.code.upper() == "ACCESS_ERROR":
        return ChatCard(chat_id, add_problem=not_found(chat_id), seen=False)
    problem = f"chat {chat_id}: im.dialog.get failed ({error.code})"
    return ChatCard(chat_id, add_problem=problem, seen=False)


def cards_from(result: ReadResult, chats: Iterable[int]) -> dict[int, ChatCard]:
    cards: dict[int, ChatCard] = {}
    for chat in chats:
        key = dialog_call(chat)[0]
        error = result.errors.get(key)
        cards[chat] = unseen(chat, error) if error else card_from(chat, result.calls.get(key))
    return cards


async def read_cards(reader: Reader, chats: Iterable[int]) -> dict[int, ChatCard]:
    """Cards of `chats`, 50 to a batch request (none when there are no chats)."""
    wanted = sorted(set(chats))
    if not wanted:
        return {}
    result = await reader.read([], [dialog_call(c) for c in wanted])
    return cards_from(result, wanted)


def label(chat_id: int, cards: Mapping[int, ChatCard]) -> str:
    card = cards.get(chat_id)
    return card.label if card is not None else str(chat_id)


async def name_plan_chats(reader: Reader, plan: Plan) -> None:
    """Cards (titles, and the diagnosis of an unreadable chat) for the chats a plan shows.

    Read after the plan, in requests of their own (`plan.card_requests`), so the plan's
    read cost stays the documented formula; nothing to show costs nothing."""
    shown = {c.chat_id for c in plan.chats.values() if c.changed} | set(plan.unreadable)
    before = reader.requests
    plan.cards.update(await read_cards(reader, shown))
    plan.card_requests += reader.requests - before


RECENT_PAGE: Final = 200  # im.recent.list's largest LIMIT
MAX_PAGES: Final = 100


async def list_chats(client: PortalClient) -> list[ChatCard]:
    """The group chats the webhook user is in, from `im.recent.list`, by ID.

    Bitrix24 has no "all chats" method: this is the webhook user's own chat list (a chat it
    is not in cannot be a rule's target anyway). Pages may overlap (docs), so IDs are merged.
    """
    cards: dict[int, ChatCard] = {}
    params = {"SKIP_DIALOG": "Y", "SKIP_OPENLINES": "Y", "LIMIT": RECENT_PAGE}
    for page in range(MAX_PAGES):
        reply = await client.call("im.recent.list", {**params, "OFFSET": page * RECENT_PAGE})
        result = reply.result if isinstance(reply.result, Mapping) else {}
        items = result.get("items")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping) or item.get("type") != "chat":
                continue
            raw = item.get("chat")
            chat_id = item.get("chat_id") or (raw.get("id") if isinstance(raw, Mapping) else None)
            if isinstance(chat_id, int | str) and str(chat_id).isdigit():
                card = card_from(int(chat_id), raw)
                if not card.title:
                    card = dataclasses.replace(card, title=str(item.get("title") or ""))
                cards[int(chat_id)] = card
        if not result.get("hasMore"):
            break
    return [cards[c] for c in sorted(cards)]


async def titles_once(client: PortalClient, chats: Iterable[int]) -> dict[int, str]:
    """Titles for a report that works without them (`history`): one try, no retries."""
    wanted = sorted(set(chats))
    titles: dict[int, str] = {}
    for start in range(0, len(wanted), 50):
        chunk = wanted[start : start + 50]
        reply = await client.batch({key: (m, p) for key, m, p in map(dialog_call, chunk)})
        result = ReadResult(calls=reply.result, errors=reply.errors)
        titles |= {c: card.title for c, card in cards_from(result, chunk).items() if card.title}
    return titles
