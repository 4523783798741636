"""`imbot.v2.Bot.*` and `imbot.v2.Revision.get` (reference §2) for a webhook caller.

With webhook auth the "application" is the `botToken`: a code registered again with the same
token returns that bot unchanged, with another token `BOT_CODE_ALREADY_TAKEN`; `Bot.list`
lists the bots sharing the caller's token. Register validates every field before it looks for
an existing bot, so a malformed request is refused even when the code is already registered.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final

from bot.sandbox import events_v2
from bot.sandbox.entities_v2 import bot_brief, bot_extended, bot_user
from bot.sandbox.methods import Context, Params, Reply, to_int
from bot.sandbox.methods_v2 import (
    MAX_TOKEN_LENGTH,
    caller_token,
    fields_of,
    flag,
    owned_bot,
    text_of,
    token_matches,
    v2_error,
)
from bot.sandbox.state import Bot, PortalState
from bot.sandbox.state_v2 import BotV2

BOT_TYPES: Final = frozenset({"bot", "supervisor", "personal", "openline", "network"})
EVENT_MODES: Final = frozenset({"fetch", "webhook"})
BACKGROUNDS: Final = frozenset(
    {"azure", "mint", "steel", "slate", "teal", "cornflower", "sky", "peach", "frost"}
)
MAX_BOTS_PER_TOKEN: Final = 100
REVISION: Final = {"rest": 33, "web": 130, "mobile": 23, "desktop": 6}
_PROPERTY_KEYS: Final = ("name", "lastName", "workPosition", "color", "gender", "avatar")
_IMAGE_MAGIC: Final = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")


def _answer(state: PortalState, bot: Bot) -> Reply:
    return Reply({"bot": bot_extended(state, bot), "users": [bot_user(bot, full=True)]})


def _properties(raw: Any, *, required: bool) -> dict[str, Any]:
    props = {k: raw[k] for k in _PROPERTY_KEYS if isinstance(raw, dict) and k in raw}
    if required and not text_of(props.get("name")):
        raise v2_error("BOT_PROPERTIES_REQUIRED")
    avatar = props.pop("avatar", None)
    if avatar is not None:
        try:
            image = base64.b64decode(str(avatar), validate=True)
        except (binascii.Error, ValueError):
            image = b""
        if not image.startswith(_IMAGE_MAGIC):
            raise v2_error("BOT_AVATAR_INCORRECT_TYPE")
    return props


def _mode(fields: dict[str, Any], current: BotV2 | None) -> tuple[str, str]:
    """(eventMode, webhookUrl) after applying `fields` to the current values."""
    mode = text_of(fields.get("eventMode")) or (current.event_mode if current else "fetch")
    if mode not in EVENT_MODES:
        raise v2_error("BOT_INVALID_EVENT_MODE")
    url = text_of(fields["webhookUrl"]) if "webhookUrl" in fields else ""
    if not url and current is not None:
        url = current.webhook_url
    if url and not re.match(r"https?://[^\s/]+", url):
        raise v2_error("BOT_INVALID_CALLBACK")
    if mode == "webhook" and not url:
        raise v2_error("BOT_WEBHOOK_URL_REQUIRED")
    return mode, url


def _background(value: Any) -> str | None:
    text = text_of(value)
    return text if text in BACKGROUNDS else None  # an unknown id is normalised to null


def _apply_flags(v2: BotV2, fields: dict[str, Any]) -> None:
    v2.is_hidden = flag(fields.get("isHidden"), v2.is_hidden)
    v2.is_reactions_enabled = flag(fields.get("isReactionsEnabled"), v2.is_reactions_enabled)
    v2.is_support_openline = flag(fields.get("isSupportOpenline"), v2.is_support_openline)
    if "backgroundId" in fields:
        v2.background_id = _background(fields["backgroundId"])


def register(ctx: Context, params: Params) -> Reply:
    fields = fields_of(params)
    token = text_of(fields.get("botToken"))  # inside `fields` here, top-level everywhere else
    if not token:
        raise v2_error("BOT_TOKEN_NOT_SPECIFIED")
    if len(token) > MAX_TOKEN_LENGTH:
        raise v2_error("BOT_TOKEN_INVALID_LENGTH")
    code = text_of(fields.get("code"))
    if not code:
        raise v2_error("BOT_CODE_REQUIRED")
    props = _properties(fields.get("properties"), required=True)
    bot_type = text_of(fields.get("type")) or "bot"
    if bot_type not in BOT_TYPES:
        raise v2_error("BOT_INVALID_TYPE")
    mode, url = _mode(fields, None)
    bots = ctx.state.bots.values()
    existing = next((b for b in bots if b.code == code), None)
    if existing is not None:
        if not token_matches(existing, token):
            raise v2_error("BOT_CODE_ALREADY_TAKEN")
        return _answer(ctx.state, existing)  # idempotent: returned unchanged
    if sum(token_matches(b, token) for b in bots) >= MAX_BOTS_PER_TOKEN:
        raise v2_error("BOT_LIMIT_EXCEEDED")
    v2 = BotV2(token, mode, url, language=ctx.state.language)
    _apply_flags(v2, fields)
    bot = Bot(ctx.state.next_bot_id, code, "", bot_type, props, v2=v2)
    ctx.state.bots[bot.id] = bot
    ctx.state.next_bot_id += 1
    return _answer(ctx.state, bot)


def update(ctx: Context, params: Params) -> Reply:
    """Properties, flags, mode and URL, and token rotation (`fields.botToken`; blank ignored).

    After a rotation the old token fails at once. A new token must be at most 40 characters
    (the register rule; contradiction 7) and not held by another bot.
    """
    bot = owned_bot(ctx, params)
    assert bot.v2 is not None  # owned_bot checked the token
    fields = fields_of(params)
    new_token = text_of(fields.get("botToken"))
    if new_token and len(new_token) > MAX_TOKEN_LENGTH:
        raise v2_error("BOT_TOKEN_INVALID_LENGTH")
    others = (b for b in ctx.state.bots.values() if b.id != bot.id)
    if new_token and any(token_matches(b, new_token) for b in others):
        raise v2_error("BOT_TOKEN_ROTATION_FAILED")
    props = _properties(fields.get("properties"), required=False)
    mode, url = _mode(fields, bot.v2)
    bot.properties = {**bot.properties, **props}
    bot.v2.event_mode, bot.v2.webhook_url = mode, url
    _apply_flags(bot.v2, fields)
    if new_token:
        bot.v2.token = new_token
    return Reply({"bot": bot_extended(ctx.state, bot), "users": [bot_user(bot, full=False)]})


def get(ctx: Context, params: Params) -> Reply:
    """By `botId` or `code`; extended for the token's owner, brief for anyone else."""
    token = caller_token(params)
    bot_id, code = to_int(params.get("botId")), text_of(params.get("code"))
    if not bot_id and not code:
        raise v2_error("PARAMS_REQUIRED")
    bots = ctx.state.bots
    bot = bots.get(bot_id) if bot_id else next((b for b in bots.values() if b.code == code), None)
    if bot is None:
        raise v2_error("BOT_NOT_FOUND")
    shown = bot_extended(ctx.state, bot) if token_matches(bot, token) else bot_brief(bot)
    return Reply({"bot": shown, "users": [bot_user(bot, full=False)]})


def bot_list(ctx: Context, params: Params) -> Reply:
    """The caller's bots; an unknown `filter.type` is an empty list, never an error."""
    token = caller_token(params)
    wanted = text_of(fields_of(params, "filter").get("type"))
    limit = max(1, to_int(params.get("limit")) or 50)
    offset = max(0, to_int(params.get("offset")) or 0)
    mine = [
        b
        for _, b in sorted(ctx.state.bots.items())
        if token_matches(b, token) and (not wanted or b.type == wanted)
    ]
    chunk = mine[offset : offset + limit]
    return Reply(
        {
            "bots": [bot_extended(ctx.state, b) for b in chunk],
            "users": [bot_user(b, full=False) for b in chunk],
            "hasNextPage": offset + limit < len(mine),
        }
    )


def unregister(ctx: Context, params: Params) -> Reply:
    """Gone with its commands and memberships; ONIMBOTV2DELETE is its last event.

    For a fetch-mode bot that event stays in the (now unreadable) queue: `Event.get` answers
    `BOT_NOT_FOUND` once the bot is gone. The admin queue view still shows it.
    """
    bot = owned_bot(ctx, params)
    events_v2.bot_delete(ctx.state, ctx.now, bot)
    del ctx.state.bots[bot.id]
    for command_id in [c.id for c in ctx.state.commands.values() if c.bot_id == bot.id]:
        del ctx.state.commands[command_id]
    for chat in ctx.state.chats.values():
        chat.members.discard(bot.id)
    return Reply({"result": True})


def revision(_: Context, __: Params) -> Reply:
    return Reply(dict(REVISION))
