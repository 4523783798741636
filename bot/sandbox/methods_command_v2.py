"""`imbot.v2.Command.*` (reference §3): slash commands of a v2 bot, and answers to them.

Commands share the classic command table (and its ids); the `{lang: text}` maps of `title` and
`params` are kept as its lang list. Choices where the reference is silent:

- A name is letters, digits, `_` and `-`; a leading `/` is refused with `COMMAND_NAME_INVALID`
  (the docs say "without the `/`"), so a client that sends "/join" learns it here.
- The old flat form (`command`, `title`… top-level) is accepted until 30.09.2026 by the
  portal's clock, as the change log promises; after that only `fields` counts.
- `Command.answer` needs an invocation the portal saw: this `commandId` typed as `messageId`
  in `dialogId`. Anything else is `COMMAND_ANSWER_FAILED` (the temporary access the method
  grants comes from that pair, nothing else).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from bot.sandbox.entities_v2 import command_listing, command_object, lang_map
from bot.sandbox.methods import Context, Params, Reply, to_int
from bot.sandbox.methods_message_v2 import post
from bot.sandbox.methods_v2 import fields_of, flag, owned_bot, text_of, v2_error
from bot.sandbox.state import Bot, Command

FLAT_FORM_UNTIL: Final = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
_NAME: Final = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_FLAT_KEYS: Final = ("command", "title", "params", "common", "hidden", "extranetSupport")


def _name(value: Any, *, empty: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise v2_error(empty)
    if not isinstance(value, str) or not _NAME.fullmatch(value.strip()):
        raise v2_error("COMMAND_NAME_INVALID")
    return value.strip()


def _texts(raw: Any) -> dict[str, str | None]:
    """A `{lang: text}` map; a bare string is taken as the portal language's text."""
    if isinstance(raw, str):
        return {"en": raw}
    if not isinstance(raw, dict):
        return {}
    return {str(k): None if v is None else str(v) for k, v in raw.items()}


def _lang(titles: dict[str, str], params: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"LANGUAGE_ID": lang, "TITLE": title, "PARAMS": params.get(lang, "")}
        for lang, title in titles.items()
    ]


def _fields(ctx: Context, params: Params) -> dict[str, Any]:
    fields = fields_of(params)
    if not fields and ctx.now < FLAT_FORM_UNTIL:
        fields = {k: params[k] for k in _FLAT_KEYS if k in params}
    return fields


def register(ctx: Context, params: Params) -> Reply:
    """Idempotent per (bot, command): the existing command comes back unchanged."""
    bot = owned_bot(ctx, params)
    fields = _fields(ctx, params)
    name = _name(fields.get("command"), empty="COMMAND_REQUIRED")
    hidden = flag(fields.get("hidden"), False)
    titles = {k: v for k, v in _texts(fields.get("title")).items() if v}
    if not titles and not hidden:
        raise v2_error("COMMAND_TITLE_REQUIRED")
    for existing in ctx.state.commands.values():
        if existing.bot_id == bot.id and existing.command == name:
            return Reply({"command": command_object(existing)})
    hints = {k: v for k, v in _texts(fields.get("params")).items() if v}
    command = Command(ctx.state.next_command_id, bot.id, name, _lang(titles, hints), "")
    command.common = flag(fields.get("common"), False)
    command.hidden = hidden
    command.extranet_support = flag(fields.get("extranetSupport"), False)
    ctx.state.commands[command.id] = command
    ctx.state.next_command_id += 1
    return Reply({"command": command_object(command)})


def command_list(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params)
    mine = [c for _, c in sorted(ctx.state.commands.items()) if c.bot_id == bot.id]
    return Reply({"commands": [command_listing(ctx.state, c) for c in mine]})


def _owned_command(ctx: Context, bot: Bot, params: Params) -> Command:
    command = ctx.state.commands.get(to_int(params.get("commandId")) or 0)
    if command is None or command.bot_id != bot.id:
        raise v2_error("COMMAND_NOT_FOUND")
    return command


def update(ctx: Context, params: Params) -> Reply:
    """Only the keys given change; `title.xx = null` removes that language."""
    bot = owned_bot(ctx, params)
    command = _owned_command(ctx, bot, params)
    fields = fields_of(params)
    if "command" in fields:
        name = _name(fields["command"], empty="COMMAND_NAME_EMPTY")
        taken = any(
            c.bot_id == bot.id and c.command == name and c.id != command.id
            for c in ctx.state.commands.values()
        )
        if taken:
            raise v2_error("COMMAND_ALREADY_EXISTS")
        command.command = name
    titles, hints = lang_map(command, "TITLE"), lang_map(command, "PARAMS")
    for lang, text in _texts(fields.get("title")).items():
        if text is None:
            titles.pop(lang, None)
            hints.pop(lang, None)
        else:
            titles[lang] = text
    for lang, text in _texts(fields.get("params")).items():
        if lang in titles:
            hints[lang] = text or ""
    command.lang = _lang(titles, hints)
    command.common = flag(fields.get("common"), command.common)
    command.hidden = flag(fields.get("hidden"), command.hidden)
    command.extranet_support = flag(fields.get("extranetSupport"), command.extranet_support)
    return Reply({"command": command_object(command)})


def unregister(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params)
    command = _owned_command(ctx, bot, params)
    del ctx.state.commands[command.id]
    return Reply(True)


def answer(ctx: Context, params: Params) -> Reply:
    """Recorded like a message, tied to `commandId` + `messageId`; may post where the bot
    is not a member (shown as a system message on the real portal)."""
    bot = owned_bot(ctx, params)
    command_id, message_id = to_int(params.get("commandId")), to_int(params.get("messageId"))
    dialog_id = text_of(params.get("dialogId"))
    invocation = ctx.state.v2.invocations.get(message_id or 0)
    if not command_id or not message_id or not dialog_id:
        raise v2_error("COMMAND_ANSWER_FAILED", "commandId, messageId and dialogId are required")
    if invocation is None or (invocation.command_id, invocation.bot_id) != (command_id, bot.id):
        raise v2_error("COMMAND_ANSWER_FAILED", "no such command invocation")
    if invocation.dialog_id != dialog_id:
        raise v2_error("COMMAND_ANSWER_FAILED", "the command was not sent in this dialog")
    fields = fields_of(params)
    if not text_of(fields.get("message")) and not fields.get("attach"):
        raise v2_error("COMMAND_ANSWER_FAILED", "the answer is empty")
    post(
        ctx,
        bot,
        "imbot.v2.Command.answer",
        dialog_id,
        fields,
        command_id=command_id,
        message_id=message_id,
    )
    return Reply({"result": True})
