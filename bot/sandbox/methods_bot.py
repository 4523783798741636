"""Classic chat-bot methods (§5) as a webhook caller sees them: every call needs the CLIENT_ID."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from bot.sandbox.methods import (
    Context,
    Params,
    Reply,
    RestError,
    client_id,
    owned_bot,
    php_array,
    to_int,
    upper_keys,
    yes_no,
)
from bot.sandbox.state import Bot, Command, Message

# Registration parameter → the event its URL receives.
_BOT_EVENTS: Final = {
    "EVENT_MESSAGE_ADD": "ONIMBOTMESSAGEADD",
    "EVENT_WELCOME_MESSAGE": "ONIMBOTJOINCHAT",
    "EVENT_BOT_DELETE": "ONIMBOTDELETE",
    "EVENT_MESSAGE_UPDATE": "ONIMBOTMESSAGEUPDATE",
    "EVENT_MESSAGE_DELETE": "ONIMBOTMESSAGEDELETE",
}
_REQUIRED_EVENTS: Final = ("EVENT_MESSAGE_ADD", "EVENT_WELCOME_MESSAGE", "EVENT_BOT_DELETE")
_MAX_BOTS_PER_CLIENT: Final = 5
_MAX_BLOCK_BYTES: Final = 30 * 1024
_COMMAND: Final = re.compile(r"[A-Za-z0-9_\-]+")


def _url(value: Any, code: str) -> str:
    text = "" if value is None else str(value)
    if not re.match(r"https?://", text):
        raise RestError(f"{code}_ERROR", "Wrong handler URL")
    return text


def _handlers(params: Params, *, required: bool) -> dict[str, str]:
    common = params.get("EVENT_HANDLER")
    handlers: dict[str, str] = {}
    for key, event in _BOT_EVENTS.items():
        value = params.get(key, common)
        if value is None and not (required and key in _REQUIRED_EVENTS):
            continue
        handlers[event] = _url(value, key)
    return handlers


def _properties(raw: Any) -> dict[str, Any]:
    props = upper_keys(raw) if isinstance(raw, dict) else {}
    if not str(props.get("NAME") or props.get("LAST_NAME") or "").strip():
        raise RestError("NAME_ERROR", "Bot name is not specified")
    return props


def _check_code(ctx: Context, code: str, *, except_id: int | None = None) -> None:
    if not code:
        raise RestError("CODE_ERROR", "Bot code is not specified")
    if any(b.code == code and b.id != except_id for b in ctx.state.bots.values()):
        raise RestError("CODE_ERROR", "Bot with this code is already registered")


def register(ctx: Context, params: Params) -> Reply:
    client = client_id(params)
    code = str(params.get("CODE") or "")
    _check_code(ctx, code)
    handlers = _handlers(params, required=True)
    props = _properties(params.get("PROPERTIES"))
    if sum(b.client_id == client for b in ctx.state.bots.values()) >= _MAX_BOTS_PER_CLIENT:
        raise RestError("MAX_COUNT_ERROR", "Has reached the maximum number of bots for application")
    bot_type = str(params.get("TYPE") or "B").upper()
    bot = Bot(ctx.state.next_bot_id, code, client, bot_type if bot_type in "BOHS" else "B")
    bot.properties, bot.handlers = props, handlers
    ctx.state.bots[bot.id] = bot
    ctx.state.next_bot_id += 1
    return Reply(bot.id)


def unregister(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params, params.get("BOT_ID"))
    del ctx.state.bots[bot.id]
    for command_id in [c.id for c in ctx.state.commands.values() if c.bot_id == bot.id]:
        del ctx.state.commands[command_id]
    for chat in ctx.state.chats.values():
        chat.members.discard(bot.id)
    return Reply(True)


def update(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params, params.get("BOT_ID"))
    fields = upper_keys(params["FIELDS"]) if isinstance(params.get("FIELDS"), dict) else {}
    if not fields:
        raise RestError("WRONG_REQUEST", "Update fields can't be empty")
    if "CODE" in fields:
        _check_code(ctx, str(fields["CODE"] or ""), except_id=bot.id)
        bot.code = str(fields["CODE"])
    bot.handlers.update(_handlers(fields, required=False))
    if "PROPERTIES" in fields:
        bot.properties = {**bot.properties, **_properties(fields["PROPERTIES"])}
    return Reply(True)


def bot_list(ctx: Context, params: Params) -> Reply:
    client = client_id(params)
    bots = {
        str(b.id): {
            "ID": b.id,
            "NAME": str(b.properties.get("NAME") or b.properties.get("LAST_NAME") or ""),
            "CODE": b.code,
            "OPENLINE": "Y" if b.type == "O" else "N",
        }
        for b in sorted(ctx.state.bots.values(), key=lambda b: b.id)
        if b.client_id == client
    }
    return Reply(php_array(bots))


def _lang(raw: Any) -> list[dict[str, Any]]:
    entries = list(raw.values()) if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise RestError("LANG_ERROR", "Lang set can't be empty")
    langs = [upper_keys(e) for e in entries if isinstance(e, dict)]
    if len(langs) != len(entries) or any(not e.get("LANGUAGE_ID") for e in langs):
        raise RestError("LANG_ERROR", "Lang set is not valid")
    return langs


def _command_name(value: Any) -> str:
    name = "" if value is None else str(value)
    if not _COMMAND.fullmatch(name):
        raise RestError(
            "COMMAND_ERROR", "Command can't be empty and may hold only a-z, 0-9, _ or -"
        )
    return name


def command_register(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params, params.get("BOT_ID"))
    name = _command_name(params.get("COMMAND"))
    handler = _url(params.get("EVENT_COMMAND_ADD"), "EVENT_COMMAND_ADD")
    lang = _lang(params.get("LANG"))
    for existing in ctx.state.commands.values():
        if existing.bot_id == bot.id and existing.command == name:
            # [src] im/lib/command.php register(): a bot's command name is registered once;
            # asking again returns the existing id and changes nothing.
            return Reply(existing.id)
    command = Command(ctx.state.next_command_id, bot.id, name, lang, handler)
    command.common = yes_no(params.get("COMMON"))
    command.hidden = yes_no(params.get("HIDDEN"))
    command.extranet_support = yes_no(params.get("EXTRANET_SUPPORT"))
    ctx.state.commands[command.id] = command
    ctx.state.next_command_id += 1
    return Reply(command.id)


def _owned_command(ctx: Context, params: Params) -> Command:
    client_id(params)
    command = ctx.state.commands.get(to_int(params.get("COMMAND_ID")) or 0)
    if command is None:
        raise RestError("COMMAND_ID_ERROR", "Command not found")
    owned_bot(ctx, params, command.bot_id)
    return command


def command_update(ctx: Context, params: Params) -> Reply:
    command = _owned_command(ctx, params)
    fields = upper_keys(params["FIELDS"]) if isinstance(params.get("FIELDS"), dict) else {}
    if not fields:
        raise RestError("WRONG_REQUEST", "Update fields can't be empty")
    if "COMMAND" in fields:
        command.command = _command_name(fields["COMMAND"])
    if "EVENT_COMMAND_ADD" in fields:
        command.handler = _url(fields["EVENT_COMMAND_ADD"], "EVENT_COMMAND_ADD")
    if "LANG" in fields:
        command.lang = _lang(fields["LANG"])
    for flag in ("COMMON", "HIDDEN", "EXTRANET_SUPPORT"):
        if flag in fields:
            setattr(command, flag.lower(), yes_no(fields[flag]))
    return Reply(True)


def command_unregister(ctx: Context, params: Params) -> Reply:
    command = _owned_command(ctx, params)
    del ctx.state.commands[command.id]
    return Reply(True)


def _message_text(params: Params) -> str:
    text = str(params.get("MESSAGE") or "").strip()
    if not text and not params.get("ATTACH"):
        raise RestError("MESSAGE_EMPTY", "Message can't be empty")
    for block in ("ATTACH", "KEYBOARD", "MENU"):
        value = params.get(block)
        if value is not None and len(json.dumps(value).encode()) > _MAX_BLOCK_BYTES:
            raise RestError(
                f"{block}_OVERSIZE",
                f"You have exceeded the maximum allowable size of {block.lower()}",
            )
    return text


def command_answer(ctx: Context, params: Params) -> Reply:
    client = client_id(params)
    if params.get("COMMAND_ID") is None and params.get("COMMAND") is not None:
        mine = {b.id for b in ctx.state.bots.values() if b.client_id == client}
        named = [
            c
            for c in ctx.state.commands.values()
            if c.command == str(params["COMMAND"]) and c.bot_id in mine
        ]
        params = {**params, "COMMAND_ID": named[0].id if named else 0}
    command = _owned_command(ctx, params)
    message_id = to_int(params.get("MESSAGE_ID"))
    if not message_id or message_id <= 0:
        raise RestError("MESSAGE_ID_EMPTY", "Message ID can't be empty")
    text = _message_text(params)
    # The reply lands where the command was typed, which only the real portal knows: the fake
    # records the answered MESSAGE_ID instead of a dialog.
    return Reply(
        _post(
            ctx,
            params,
            "imbot.command.answer",
            command.bot_id,
            client,
            text,
            dialog_id=None,
            command_id=command.id,
            message_id=message_id,
        )
    )


def message_add(ctx: Context, params: Params) -> Reply:
    client = client_id(params)
    if params.get("BOT_ID") is None:
        # Default: the first bot of the application (§5.5).
        mine = sorted(b.id for b in ctx.state.bots.values() if b.client_id == client)
        params = {**params, "BOT_ID": mine[0] if mine else 0}
    bot = owned_bot(ctx, params, params.get("BOT_ID"))
    dialog = params.get("DIALOG_ID")
    if dialog is None or str(dialog) == "":
        to_user = to_int(params.get("TO_USER_ID"))
        if not (to_int(params.get("FROM_USER_ID")) and to_user):
            raise RestError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
        dialog = to_user
    text = _message_text(params)
    return Reply(
        _post(ctx, params, "imbot.message.add", bot.id, client, text, dialog_id=str(dialog))
    )


def _post(
    ctx: Context,
    params: Params,
    method: str,
    bot_id: int,
    client: str,
    text: str,
    *,
    dialog_id: str | None,
    command_id: int | None = None,
    message_id: int | None = None,
) -> int:
    message = Message(
        ctx.state.take_message_id(),
        method,
        bot_id,
        dialog_id,
        text,
        client,
        command_id=command_id,
        message_id=message_id,
        keyboard=params.get("KEYBOARD"),
        attach=params.get("ATTACH"),
        at=ctx.now,
    )
    ctx.state.messages.append(message)
    return message.id
