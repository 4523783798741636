"""Chatbots 2.0 objects (Bot, User, Chat, Message, Command) in their JSON shapes (reference §4.3).

Method answers and fetch-mode events use these real JSON types; webhook mode flattens the very
same trees (`events_v2.webhook_body`). Fields the fake cannot know (avatars, presence) carry the
documented "nothing" values: `""`, `false`, `null`.
"""

from __future__ import annotations

from typing import Any, Final

from bot.sandbox.state import Bot, Chat, Command, PortalState, User

MODULE_ID: Final = "rest"
_COLORS: Final = ("#df532d", "#ab7761", "#1eb4aa", "#4ba984", "#f76187", "#7e57c2", "#29619b")
_CHAT_TYPES: Final = {"C": "chat", "O": "open", "general": "general"}


def color(seed: int) -> str:
    return _COLORS[seed % len(_COLORS)]


def bot_name(bot: Bot) -> tuple[str, str]:
    props = bot.properties
    first = str(props.get("name") or props.get("NAME") or "")
    last = str(props.get("lastName") or props.get("LAST_NAME") or "")
    return first, last


def bot_brief(bot: Bot) -> dict[str, Any]:
    """The public Bot: what anyone but the owner sees."""
    v2 = bot.v2
    return {
        "id": bot.id,
        "code": bot.code,
        "type": bot.type if v2 is not None else "bot",
        "isHidden": v2.is_hidden if v2 else False,
        "isSupportOpenline": v2.is_support_openline if v2 else bot.type == "O",
        "isReactionsEnabled": v2.is_reactions_enabled if v2 else True,
        "backgroundId": v2.background_id if v2 else None,
        "language": v2.language if v2 else "en",
    }


def bot_extended(state: PortalState, bot: Bot) -> dict[str, Any]:
    """The owner's Bot, with counters. `appId` was removed (change log FIX-0501-3)."""
    v2 = bot.v2
    return {
        **bot_brief(bot),
        "moduleId": MODULE_ID,
        "eventMode": v2.event_mode if v2 else "webhook",
        "countMessage": sum(m.bot_id == bot.id for m in state.messages),
        "countCommand": sum(c.bot_id == bot.id for c in state.commands.values()),
        "countChat": sum(bot.id in c.members for c in state.chats.values()),
        "countUser": len(v2.users_seen) if v2 else 0,
    }


def bot_user(bot: Bot, *, full: bool) -> dict[str, Any]:
    first, last = bot_name(bot)
    brief = {
        "id": bot.id,
        "active": True,
        "name": f"{first} {last}".strip(),
        "bot": True,
        "type": "bot",
    }
    if not full:
        return brief
    return {
        **brief,
        "firstName": first,
        "lastName": last,
        "workPosition": str(bot.properties.get("workPosition") or ""),
        "color": color(bot.id),
        "avatar": "",
        "gender": str(bot.properties.get("gender") or ""),
        "birthday": "",
        "extranet": False,
        "connector": False,
        "externalAuthId": "bot",
        "status": "online",
        "idle": False,
        "lastActivityDate": False,
        "mobileLastDate": False,
        "desktopLastDate": False,
        "absent": False,
        "departments": [],
        "phones": False,
        "website": "",
        "email": "",
    }


def user_object(user: User) -> dict[str, Any]:
    """A person as bot events carry them; presence fields are `false` in events (entities.md)."""
    extranet = user.user_type == "extranet"
    return {
        "id": user.id,
        "active": user.active,
        "name": f"{user.name} {user.last_name}".strip(),
        "firstName": user.name,
        "lastName": user.last_name,
        "workPosition": "",
        "color": color(user.id),
        "avatar": "",
        "gender": "",
        "birthday": "",
        "extranet": extranet,
        "bot": False,
        "connector": False,
        "externalAuthId": "default",
        "status": "online",
        "idle": False,
        "lastActivityDate": False,
        "mobileLastDate": False,
        "desktopLastDate": False,
        "absent": False,
        "departments": list(user.departments),
        "phones": False,
        "type": user.user_type,
        "website": "",
        "email": user.email,
    }


def author_object(state: PortalState, author_id: int) -> dict[str, Any]:
    """The author of a message: a person, or a bot (`bot: true`, `type: "bot"`)."""
    if author_id in state.bots:
        return bot_user(state.bots[author_id], full=True)
    return user_object(state.users[author_id])


def _chat_common(chat_id: int, dialog_id: str, name: str, owner: int) -> dict[str, Any]:
    return {
        "id": chat_id,
        "dialogId": dialog_id,
        "name": name,
        "owner": owner,
        "color": color(chat_id),
        "avatar": "",
        "description": "",
        "extranet": False,
        "containsCollaber": False,
        "entityType": "",
        "entityId": "",
    }


def group_chat_object(state: PortalState, chat: Chat) -> dict[str, Any]:
    """A group chat in events: no `role` and no `muteList` (they depend on the reader)."""
    kind = _CHAT_TYPES.get(chat.type, "chat")
    common = _chat_common(chat.id, f"chat{chat.id}", chat.title, chat.owner)
    extranet = any(
        (u := state.users.get(m)) is not None and u.user_type == "extranet" for m in chat.members
    )
    return {
        **common,
        "type": kind,
        "messageType": "O" if chat.type in ("O", "general") else "C",
        "extranet": extranet,
        "entityType": "GENERAL" if chat.type == "general" else "",
    }


def private_chat_object(chat_id: int, counterpart: dict[str, Any]) -> dict[str, Any]:
    """A 1:1 dialog seen by the bot: `dialogId` is the counterpart's user id, type "private"."""
    common = _chat_common(chat_id, str(counterpart["id"]), str(counterpart["name"]), 0)
    return {**common, "type": "private", "messageType": "P"}


def message_object(
    message_id: int, chat_id: int, author_id: int, date: str, text: str
) -> dict[str, Any]:
    return {
        "id": message_id,
        "chatId": chat_id,
        "authorId": author_id,
        "date": date,
        "text": text,
        "isSystem": False,
        "uuid": "",
        "forward": None,
        "params": {},
        "viewedByOthers": False,
    }


def lang_map(command: Command, key: str) -> dict[str, str]:
    """The `{lang: text}` map of a command's TITLE or PARAMS, from the shared lang list."""
    return {
        str(e["LANGUAGE_ID"]): str(e[key]) for e in command.lang if e.get(key) not in (None, "")
    }


def command_object(command: Command) -> dict[str, Any]:
    return {
        "id": command.id,
        "botId": command.bot_id,
        "command": f"/{command.command}",
        "common": command.common,
        "hidden": command.hidden,
        "extranetSupport": command.extranet_support,
    }


def command_listing(state: PortalState, command: Command) -> dict[str, Any]:
    """`Command.list` adds title/params in the portal language (falling back to any)."""

    def localized(key: str) -> str:
        texts = lang_map(command, key)
        return texts.get(state.language) or next(iter(texts.values()), "")

    bot = state.bots.get(command.bot_id)
    category = " ".join(bot_name(bot)).strip() if bot is not None else ""
    return {
        **command_object(command),
        "title": localized("TITLE"),
        "params": localized("PARAMS"),
        "category": category,
        "context": "",
    }
