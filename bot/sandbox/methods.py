"""What every fake REST method shares: the error it raises, its context and PHP-ish coercions.

Parameters arrive either from JSON (typed) or from a PHP form (all strings), so every method
reads them through these helpers and behaves the same either way, as the real portal does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.sandbox.state import Bot, Chat, PortalState

Params = dict[str, Any]
PAGE_SIZE: Final = 50
_CHAT_DIALOG = re.compile(r"chat(\d+)")


class RestError(Exception):
    """A Bitrix-shaped method error: `{"error": code, "error_description": description}`."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status


def error_body(error: RestError) -> dict[str, Any]:
    return {"error": error.code, "error_description": error.description}


@dataclass(frozen=True, slots=True)
class Reply:
    result: Any
    total: int | None = None
    next: int | None = None


@dataclass(frozen=True, slots=True)
class Context:
    state: PortalState
    user_id: int  # the webhook owner: every permission check runs as this user
    now: float


Method = Callable[[Context, Params], Reply]


def upper_keys(params: Mapping[str, Any]) -> Params:
    """Top-level names are case-insensitive on the portal (`filter` and `FILTER` both work)."""
    return {str(k).upper(): v for k, v in params.items()}


def to_int(value: Any) -> int | None:
    """PHP `intval` for the values we care about; None when there is no number at all."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = re.match(r"\s*([+-]?\d+)", value)
        return int(match.group(1)) if match else None
    return None


def php_bool(value: Any) -> bool:
    """PHP `(bool)` cast: "", "0", 0, empty arrays and null are false, anything else true."""
    if isinstance(value, str):
        return value not in ("", "0")
    if isinstance(value, dict | list):
        return bool(value)
    return bool(value)


def truthy_flag(value: Any) -> bool:
    """Filter-style booleans: true, "Y", "1", "true" (any case)."""
    if isinstance(value, str):
        return value.strip().upper() in ("Y", "1", "TRUE")
    return bool(value)


def yes_no(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    return truthy_flag(value)


def as_list(value: Any) -> list[Any]:
    """A scalar, a list, or an ID-keyed map (`USERS[5]=5`) as a flat list of values."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def php_array(items: Mapping[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    """How PHP's json_encode prints an array: `[]` when empty, a list when keyed 0..n-1."""
    if isinstance(items, list):
        return items
    if not items:
        return []
    if list(items) == [str(i) for i in range(len(items))]:
        return list(items.values())
    return dict(items)


def page(rows: list[Any], start: Any) -> Reply:
    """List-method paging: 50 per page, `next` only when more remain, `start=-1` skips counting."""
    offset = to_int(start) or 0
    if offset == -1:
        return Reply(rows[:PAGE_SIZE])
    offset = max(offset, 0)
    chunk = rows[offset : offset + PAGE_SIZE]
    more = offset + PAGE_SIZE < len(rows)
    return Reply(chunk, total=len(rows), next=offset + PAGE_SIZE if more else None)


def chat_id_param(params: Params) -> int:
    """`CHAT_ID`, or `DIALOG_ID=chatN` as the source also accepts."""
    if params.get("CHAT_ID") is None and params.get("DIALOG_ID") is not None:
        match = _CHAT_DIALOG.fullmatch(str(params["DIALOG_ID"]))
        if not match:
            raise RestError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
        return int(match.group(1))
    chat_id = to_int(params.get("CHAT_ID"))
    if chat_id is None or chat_id <= 0:
        raise RestError("CHAT_ID_EMPTY", "Chat ID can't be empty")
    return chat_id


def find_chat(ctx: Context, params: Params) -> Chat:
    chat = ctx.state.chats.get(chat_id_param(params))
    if chat is None:
        # The reference does not say what an unknown id gives; the chat-id error names the
        # problem (a wrong id in the rules) better than a permission error would.
        raise RestError("CHAT_ID_EMPTY", "Chat ID can't be empty")
    return chat


def client_id(params: Params) -> str:
    value = params.get("CLIENT_ID")
    if value is None or str(value) == "":
        raise RestError("ACCESS_DENIED", "Client ID not specified", 403)
    return str(value)


def owned_bot(ctx: Context, params: Params, bot_id: Any) -> Bot:
    """The bot, provided the caller passed the CLIENT_ID it was registered with (§5.2)."""
    caller = client_id(params)
    bot = ctx.state.bots.get(to_int(bot_id) or 0)
    if bot is None:
        raise RestError("BOT_ID_ERROR", "Bot not found")
    if bot.client_id != caller:
        raise RestError("APP_ID_ERROR", "Bot was installed by another rest application")
    return bot
