"""Chat membership methods (§3), with the permission rules and the silent outcomes of the source."""

from __future__ import annotations

import re
from typing import Any, Final

from bot.sandbox.methods import (
    Context,
    Params,
    Reply,
    RestError,
    as_list,
    chat_id_param,
    find_chat,
    php_bool,
    to_int,
    yes_no,
)
from bot.sandbox.state import Chat, PortalState

_GROUP_ENTRY: Final = re.compile(r"(?:department|structure)(\d+)")
_DIALOG: Final = re.compile(r"chat(\d+)")
_TYPE_NAMES: Final = {"C": "chat", "O": "open", "general": "general"}
RECENT_LIMIT: Final = 50  # default page; the maximum is 200 (docs: im.recent.list)
RECENT_MAX: Final = 200


def _refuse_general(chat: Chat) -> None:
    if chat.type == "general":
        raise RestError("ACCESS_ERROR", "Action unavailable", 403)


def hide_history(params: Params) -> bool:
    """`N` shows history, anything else is PHP-cast (`'false'` hides!); omitted shows."""
    if "HIDE_HISTORY" not in params:
        return False
    value = params["HIDE_HISTORY"]
    if value == "N":
        return False
    return php_bool(value)


def _user_ids(state: PortalState, entries: list[Any]) -> list[int]:
    """USERS entries: ids, plus `department<ID>` for that department's direct active members."""
    ids: list[int] = []
    for entry in entries:
        group = _GROUP_ENTRY.fullmatch(str(entry))
        if group:
            dept = int(group.group(1))
            ids.extend(sorted(u.id for u in state.users.values() if dept in u.departments))
            continue
        number = to_int(entry)
        if number is not None and number > 0:
            ids.append(number)
    return ids


def chat_user_add(ctx: Context, params: Params) -> Reply:
    chat = find_chat(ctx, params)
    _refuse_general(chat)
    if chat.extend_forbidden:
        raise RestError("ACCESS_ERROR", "It is forbidden to add users to this chat", 403)
    if not chat.may(ctx.user_id, chat.manage_users_add):
        raise RestError(
            "ACCESS_DENIED_EXTEND", "You don't have enough permissions to add users to this chat"
        )
    hidden = hide_history(params)
    for user_id in _user_ids(ctx.state, as_list(params.get("USERS"))):
        if user_id in chat.members or not ctx.state.is_active_member_candidate(user_id):
            continue  # already a member: no-op; unknown or dismissed: dropped, still `true`
        user = ctx.state.users.get(user_id)
        chat.members.add(user_id)
        chat.joins.append((user_id, ctx.now))
        # Extranet users always join with the history hidden [src].
        chat.history_hidden[user_id] = hidden or (user is not None and user.user_type == "extranet")
    return Reply(True)


def chat_user_delete(ctx: Context, params: Params) -> Reply:
    chat = find_chat(ctx, params)
    user_id = to_int(params.get("USER_ID"))
    if user_id is None or user_id <= 0:
        raise RestError("USER_ID_EMPTY", "User ID can't be empty")
    _refuse_general(chat)
    if user_id not in chat.members:
        raise RestError("USER_NOT_FOUND", "User not found in this chat")
    if user_id != ctx.user_id and not chat.may(ctx.user_id, chat.manage_users_delete):
        raise RestError("ACCESS_DENIED_KICK", "You don't have enough permissions to kick users")
    chat.members.discard(user_id)
    chat.managers.discard(user_id)
    chat.history_hidden.pop(user_id, None)
    return Reply(True)


def chat_user_list(ctx: Context, params: Params) -> Reply:
    chat = ctx.state.chats.get(chat_id_param(params))
    # A caller who may not see the members gets an empty list, not an error (§3.3).
    if chat is None or ctx.user_id not in chat.members:
        return Reply([])
    return Reply(sorted(chat.members))


def dialog_get(ctx: Context, params: Params) -> Reply:
    raw = params.get("DIALOG_ID")
    if raw is None or str(raw) == "":
        raise RestError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    match = _DIALOG.fullmatch(str(raw))
    chat = ctx.state.chats.get(int(match.group(1))) if match else None
    role = chat.role_of(ctx.user_id) if chat else "none"
    # Unknown chats and closed chats the caller is not in look the same on a real portal:
    # "You do not have access to the specified dialog" (ACCESS_ERROR, 403). Open and general
    # chats are readable by anyone, so those come back with `role: none`. Private dialogs
    # (`DIALOG_ID=<user id>`) are outside what autojoin needs and get the same error.
    if chat is None or (role == "none" and chat.type == "C"):
        raise RestError("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
    return Reply(dialog_card(chat, role))


def dialog_card(chat: Chat, role: str) -> dict[str, Any]:
    return {
        "id": chat.id,
        "name": chat.title,
        "owner": chat.owner,
        "type": _TYPE_NAMES.get(chat.type, "chat"),
        "message_type": "O" if chat.type in ("O", "general") else "C",
        "entity_type": "GENERAL" if chat.type == "general" else "",
        "entity_id": "",
        "user_counter": len(chat.members),
        "role": role,
        "restrictions": {
            "extend": not chat.extend_forbidden and chat.type != "general",
            "leave": chat.type != "general",
        },
        "permissions": {
            "manage_users_add": chat.manage_users_add,
            "manage_users_delete": chat.manage_users_delete,
            "manage_ui": "member",
            "manage_settings": "owner",
            "manage_messages": "member",
            "can_post": "member",
        },
    }


def recent_list(ctx: Context, params: Params) -> Reply:
    """`im.recent.list`: the caller's conversations, paged by OFFSET/LIMIT with `hasMore`.

    The sandbox has group chats only (no one-to-one dialogs or open lines), newest first by
    ID. Each item carries the `chat` card with the caller's `role` in capitals, as the docs'
    example shows; `total` is -1 there, so it is left out here.
    """
    if yes_no(params.get("SKIP_CHAT")):
        return Reply({"items": [], "hasMore": False, "hasMorePages": False})
    offset = max(0, to_int(params.get("OFFSET")) or 0)
    limit = to_int(params.get("LIMIT")) or RECENT_LIMIT
    limit = min(max(1, limit), RECENT_MAX)
    mine = sorted(
        (c for c in ctx.state.chats.values() if ctx.user_id in c.members),
        key=lambda c: c.id,
        reverse=True,
    )
    items = []
    for chat in mine[offset : offset + limit]:
        card = dialog_card(chat, chat.role_of(ctx.user_id))
        card["role"] = str(card["role"]).upper()
        items.append(
            {"id": f"chat{chat.id}", "chat_id": chat.id, "type": "chat", "title": chat.title}
            | {"chat": card}
        )
    more = offset + limit < len(mine)
    return Reply({"items": items, "hasMore": more, "hasMorePages": more})
