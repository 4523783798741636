"""One shape for every chat-bot event, whichever API version delivered it.

Classic bots get `ONIMBOT*`/`ONIMCOMMANDADD` with upper-case `data[PARAMS]`, `data[USER]`,
`data[BOT][<id>]`, `data[COMMAND][<id>]` (reference §2.5–2.8); Chatbots 2.0 get `ONIMBOTV2*`
with camelCase `data[message]`, `data[chat]`, `data[user]`, `data[bot]`, `data[command]`
(§2.9). Handlers read `BotRequest` and never the raw event, so the version is decided here
and only here. Parsing is strict about what reaches REST calls later (ids, the dialog).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.errors import MalformedEvent
from bot.events import Event

BotKind = Literal["message", "command", "join_chat", "delete"]

_DIALOG = re.compile(r"(?:chat)?[1-9][0-9]{0,17}")
_COMMAND = re.compile(r"/([^\s/]{1,64})(?:\s+(.*))?", re.DOTALL)
_BBCODE = re.compile(r"\[/?[A-Za-z]{1,10}(?:=[^\]]{0,200})?\]")


@dataclass(frozen=True, slots=True)
class BotRequest:
    """What one chat event asks of the bot. `text` is plain (BB-code tags removed)."""

    kind: BotKind
    dialog_id: str = ""  # "27": private dialog with user 27; "chat1157": group chat 1157
    chat_type: str = ""  # CHAT_TYPE: P private, C group, O open, ...
    chat_id: int | None = None  # group chats only
    message_id: int | None = None
    author_id: int | None = None
    author_name: str = ""
    author_first_name: str = ""
    author_last_name: str = ""
    author_is_bot: bool = False
    system: bool = False
    text: str = ""
    command: str = ""  # lower case, without the slash
    command_id: int | None = None
    command_params: str = ""
    bot_id: int | None = None
    bot_code: str = ""
    language: str = ""
    api: str = "v1"  # which API answers: classic `imbot.*` or Chatbots 2.0 `imbot.v2.*`
    author_departments: tuple[int, ...] | None = None  # None: not in the event (ask user.get)

    @classmethod
    def parse(cls, event: Event) -> BotRequest:
        """Whichever version delivered it."""
        return cls.from_v2(event) if event.name.startswith("ONIMBOTV2") else cls.from_v1(event)

    @property
    def private(self) -> bool:
        return not self.dialog_id.startswith("chat")

    @classmethod
    def from_v1(cls, event: Event) -> BotRequest:
        name = event.name
        if name == "ONIMBOTDELETE":
            return cls("delete", bot_id=event.get_int("BOT_ID"), bot_code=_s(event, "BOT_CODE"))
        if name not in {"ONIMBOTMESSAGEADD", "ONIMCOMMANDADD", "ONIMBOTJOINCHAT"}:
            raise MalformedEvent(f"{name} is not a classic chat-bot event")
        params = ("PARAMS",)
        chat_type = (_s(event, *params, "CHAT_TYPE") or _s(event, *params, "MESSAGE_TYPE")).upper()
        author = (
            event.get_int(*params, "AUTHOR_ID")
            or event.get_int(*params, "FROM_USER_ID")
            or event.get_int(*params, "USER_ID")
            or event.get_int("USER", "ID")
        )
        request = cls(
            "message",
            chat_type=chat_type,
            message_id=event.get_int(*params, "MESSAGE_ID"),
            author_id=author,
            author_name=_s(event, "USER", "NAME"),
            author_first_name=_s(event, "USER", "FIRST_NAME"),
            author_last_name=_s(event, "USER", "LAST_NAME"),
            author_is_bot=bool(event.get_flag("USER", "IS_BOT")),
            system=bool(event.get_flag(*params, "SYSTEM")),
            language=_s(event, *params, "LANGUAGE").lower(),
        )
        chat_id = None if chat_type == "P" else event.get_int(*params, "CHAT_ID")
        chat_id = chat_id or (None if chat_type == "P" else event.get_int(*params, "TO_CHAT_ID"))
        dialog = _dialog(_s(event, *params, "DIALOG_ID"), chat_type, chat_id, author)
        request = replace(request, dialog_id=dialog, chat_id=chat_id)
        if name == "ONIMBOTJOINCHAT":
            bot_id = event.get_int(*params, "BOT_ID")
            bot = _item(event, "BOT", prefer=bot_id)
            return replace(
                request,
                kind="join_chat",
                bot_id=bot_id or _int(bot.get("BOT_ID")),
                bot_code=_str(bot.get("BOT_CODE")),
            )
        if name == "ONIMCOMMANDADD":
            item = _item(event, "COMMAND")
            return replace(
                request,
                kind="command",
                text=_plain(_s(event, *params, "MESSAGE")),
                message_id=request.message_id or _int(item.get("MESSAGE_ID")),
                command=_str(item.get("COMMAND")).lstrip("/").casefold(),
                command_id=_int(item.get("COMMAND_ID")),
                command_params=_plain(_str(item.get("COMMAND_PARAMS"))),
                bot_id=_int(item.get("BOT_ID")),
                bot_code=_str(item.get("BOT_CODE")),
            )
        bot = _item(event, "BOT", prefer=event.get_int(*params, "TO_USER_ID"))
        bot_id = _int(bot.get("BOT_ID"))
        return replace(
            request,
            text=_plain(_s(event, *params, "MESSAGE"), bot_id),
            bot_id=bot_id,
            bot_code=_str(bot.get("BOT_CODE")),
        )

    @classmethod
    def from_v2(cls, event: Event) -> BotRequest:
        """Chatbots 2.0 (`ONIMBOTV2*`): one bot per POST, camelCase objects, `"1"`/`"0"` flags."""
        kinds: dict[str, BotKind] = {
            "ONIMBOTV2MESSAGEADD": "message",
            "ONIMBOTV2COMMANDADD": "command",
            "ONIMBOTV2JOINCHAT": "join_chat",
            "ONIMBOTV2DELETE": "delete",
        }
        kind = kinds.get(event.name)
        if kind is None:
            raise MalformedEvent(f"{event.name} is not a Chatbots 2.0 event")
        bot_id, bot_code = event.get_int("bot", "id"), _s(event, "bot", "code")
        if kind == "delete":
            return cls(kind, bot_id=bot_id, bot_code=bot_code, api="v2")
        user = event.get_map("user")
        departments = (
            tuple(event.get_ints("user", "departments")) if "departments" in user else None
        )
        author = event.get_int("message", "authorId") or event.get_int("user", "id")
        raw_dialog = _s(event, "chat", "dialogId") or _s(event, "dialogId")
        chat_type = _s(event, "chat", "messageType").upper() or (
            "P" if raw_dialog.isdigit() else "C"
        )
        chat_id = None if chat_type == "P" else event.get_int("chat", "id")
        command = _s(event, "command", "command")
        return cls(
            kind,
            dialog_id=_dialog(raw_dialog, chat_type, chat_id, author),
            chat_type=chat_type,
            chat_id=chat_id,
            message_id=event.get_int("message", "id"),
            author_id=author,
            author_name=_s(event, "user", "name"),
            author_first_name=_s(event, "user", "firstName"),
            author_last_name=_s(event, "user", "lastName"),
            author_is_bot=bool(event.get_flag("user", "bot")) or _s(event, "user", "type") == "bot",
            system=bool(event.get_flag("message", "isSystem")),
            text=_plain(_s(event, "message", "text"), bot_id),
            command=command.lstrip("/").casefold(),
            command_id=event.get_int("command", "id"),
            command_params=_plain(_s(event, "command", "params")),
            bot_id=bot_id,
            bot_code=bot_code,
            language=_s(event, "language").lower(),
            api="v2",
            author_departments=departments,
        )

    def as_command(self) -> BotRequest:
        """A message that starts with `/cmd` is that command (the same MESSAGE_ID may also
        arrive as a command event; whichever comes first is the one acted on)."""
        if self.kind != "message":
            return self
        match = _COMMAND.fullmatch(self.text.strip())
        if match is None:
            return self
        return replace(self, command=match[1].casefold(), command_params=(match[2] or "").strip())


def _s(event: Event, *path: str) -> str:
    return event.get_str(*path) or ""


def _str(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEvent("a chat-bot field must be a plain value")
    return value


def _int(value: Any) -> int | None:
    text = _str(value)
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) <= 0:
        raise MalformedEvent("a chat-bot id must be a positive integer")
    return int(text)


def _item(event: Event, key: str, prefer: int | None = None) -> Mapping[str, Any]:
    """One entry of an ID-keyed map (`data[BOT][567]`): the preferred id, else the lowest."""
    entries = event.get_map(key)
    preferred = entries.get(str(prefer)) if prefer is not None else None
    if isinstance(preferred, Mapping):
        return preferred
    for _, value in sorted(entries.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if isinstance(value, Mapping):
            return value
    return {}


def _dialog(raw: str, chat_type: str, chat_id: int | None, author: int | None) -> str:
    """The reply target, checked: it goes into REST calls as DIALOG_ID."""
    if not raw:
        if chat_id is not None:
            raw = f"chat{chat_id}"
        elif chat_type == "P" and author is not None:
            raw = str(author)
    if raw and not _DIALOG.fullmatch(raw):
        raise MalformedEvent("DIALOG_ID must be a user id or chat<id>")
    return raw


def _plain(text: str, bot_id: int | None = None) -> str:
    """Drop the bot's own mention and BB-code tags (keeping their text) before matching."""
    if bot_id is not None:
        text = re.sub(rf"\[USER={bot_id}\].*?\[/USER\]", " ", text, flags=re.IGNORECASE)
    return _BBCODE.sub(" ", text).strip()
