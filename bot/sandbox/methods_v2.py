"""What every `imbot.v2.*` method shares: `botToken` ownership, parameters and errors (§1).

A webhook caller proves it owns a bot with the `botToken` it invented at registration: the
token is top-level on every call except `Bot.register` (where it sits in `fields`) and
`Revision.get` (none). Choices where the reference is silent, made once here:

- Checks run token → `botId` → bot exists → ownership, so a call without a token gets
  `BOT_TOKEN_NOT_SPECIFIED` whatever else is wrong (authentication before arguments).
- Parameter names are case-sensitive camelCase (`botId`, `fields.eventMode`): v2 methods are
  controller actions, not the classic case-insensitive `$_REQUEST` readers. `BOTID` is absent.
- A classic bot has no token, so to v2 it belongs to "another application":
  `BOT_OWNERSHIP_ERROR`.
- Statuses: the docs list "400, 403" for every method; ownership and access errors are 403,
  everything else 400 (clients must switch on `error`, never on the status).
"""

from __future__ import annotations

import hmac
import re
from typing import Any, Final

from bot.sandbox.methods import Context, Params, RestError, to_int
from bot.sandbox.state import Bot

MAX_TOKEN_LENGTH: Final = 40
DESCRIPTIONS: Final = {
    "BOT_TOKEN_NOT_SPECIFIED": "Bot token is not specified",
    "BOT_TOKEN_INVALID_LENGTH": "Bot token must not be longer than 40 characters",
    "BOT_ID_REQUIRED": "Bot ID is required",
    "BOT_NOT_FOUND": "Bot not found",
    "BOT_OWNERSHIP_ERROR": "Bot is registered by another application",
    "BOT_CODE_REQUIRED": "Bot code is required",
    "BOT_PROPERTIES_REQUIRED": "Bot properties are required",
    "BOT_CODE_ALREADY_TAKEN": "Bot code is already taken",
    "BOT_INVALID_TYPE": "Invalid bot type",
    "BOT_INVALID_EVENT_MODE": "Invalid event mode",
    "BOT_WEBHOOK_URL_REQUIRED": "Webhook URL is required",
    "BOT_INVALID_CALLBACK": "Invalid callback URL",
    "BOT_LIMIT_EXCEEDED": "Bot limit exceeded",
    "BOT_AVATAR_INCORRECT_TYPE": "Avatar must be an image",
    "BOT_TOKEN_ROTATION_FAILED": "Bot token rotation failed",
    "PARAMS_REQUIRED": "Required parameters are missing",
    "COMMAND_REQUIRED": "Command is required",
    "COMMAND_NAME_INVALID": "Command name is invalid",
    "COMMAND_NAME_EMPTY": "Command name is empty",
    "COMMAND_TITLE_REQUIRED": "Command title is required",
    "COMMAND_NOT_FOUND": "Command not found",
    "COMMAND_ALREADY_EXISTS": "Command already exists",
    "COMMAND_ANSWER_FAILED": "Command answer failed",
    "ACCESS_DENIED": "Access denied",
    "EMPTY_MESSAGE": "Message is empty",
    "DIALOG_ID_EMPTY": "Dialog ID can't be empty",
    "USER_NOT_SUBSCRIBED": "User not subscribed",
    "SCOPE_ERROR": "Scope error",
}
_FORBIDDEN: Final = frozenset({"BOT_OWNERSHIP_ERROR", "ACCESS_DENIED"})
HIDDEN: Final = "<hidden>"
_TOKEN_IN_QUERY: Final = re.compile(r"(botToken(?:\]|%5D)?=)[^&]*")


def v2_error(code: str, detail: str = "") -> RestError:
    description = DESCRIPTIONS.get(code, code)
    if detail:
        description = f"{description}: {detail}"
    return RestError(code, description, 403 if code in _FORBIDDEN else 400)


def flag(value: Any, default: bool) -> bool:
    """v2 booleans: JSON true/false, or "Y"/"N" (and PHP-form "1"/"0", "true"/"false")."""
    if value is None:
        return default
    if isinstance(value, str):
        text = value.strip().upper()
        if text in ("Y", "1", "TRUE"):
            return True
        if text in ("N", "0", "FALSE", ""):
            return False
        return default
    return bool(value)


def fields_of(params: Params, key: str = "fields") -> dict[str, Any]:
    value = params.get(key)
    return dict(value) if isinstance(value, dict) else {}


def text_of(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def caller_token(params: Params) -> str:
    token = text_of(params.get("botToken"))
    if not token:
        raise v2_error("BOT_TOKEN_NOT_SPECIFIED")
    return token


def token_matches(bot: Bot, token: str) -> bool:
    return bot.v2 is not None and hmac.compare_digest(bot.v2.token, token)


def bot_id_param(params: Params, key: str = "botId") -> int:
    bot_id = to_int(params.get(key))
    if bot_id is None or bot_id <= 0:
        raise v2_error("BOT_ID_REQUIRED")
    return bot_id


def owned_bot(ctx: Context, params: Params) -> Bot:
    """The bot named by `botId`, provided the caller's `botToken` is the bot's own."""
    token = caller_token(params)
    bot = ctx.state.bots.get(bot_id_param(params))
    if bot is None:
        raise v2_error("BOT_NOT_FOUND")
    if not token_matches(bot, token):
        raise v2_error("BOT_OWNERSHIP_ERROR")
    return bot


def redacted(node: Any) -> Any:
    """A copy with every botToken hidden (JSON keys and batch query strings), for the call log."""
    if isinstance(node, dict):
        return {k: HIDDEN if k == "botToken" else redacted(v) for k, v in node.items()}
    if isinstance(node, list):
        return [redacted(v) for v in node]
    if isinstance(node, str) and "botToken" in node:
        return _TOKEN_IN_QUERY.sub(lambda m: m.group(1) + HIDDEN, node)
    return node
