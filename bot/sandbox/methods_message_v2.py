"""`imbot.v2.Chat.Message.send` and `imbot.v2.Event.get` (reference §5, §6).

`Event.get` is the fetch-mode queue: `offset=N` acknowledges (removes) every event with
`eventId < N`, the answer holds the oldest unacknowledged events, `nextOffset` is the last
one's id + 1, and an empty queue answers `nextOffset: 0` (the platform's quirk: a client
must keep its stored offset then). Choices where the reference is silent:

- `limit` outside 1–1000 is clamped, not refused.
- `withUserEvents` answers `USER_NOT_SUBSCRIBED`: the fake has no `im.v2.Event.subscribe`.
- A message longer than 20,000 characters is cut there and gets " (...)" appended.
- `dialogId` missing is `DIALOG_ID_EMPTY`; an unknown user or chat is `ACCESS_DENIED`, like a
  chat the bot is not in. A 1:1 dialog with any existing user needs no membership.
"""

from __future__ import annotations

import re
from typing import Any, Final

from bot.sandbox.methods import Context, Params, Reply, to_int
from bot.sandbox.methods_v2 import fields_of, flag, owned_bot, text_of, v2_error
from bot.sandbox.state import Bot, Message

MAX_MESSAGE: Final = 20_000
TRUNCATED: Final = " (...)"
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1_000
_CHAT: Final = re.compile(r"chat([1-9][0-9]*)")


def post(
    ctx: Context,
    bot: Bot,
    method: str,
    dialog_id: str,
    fields: dict[str, Any],
    *,
    command_id: int | None = None,
    message_id: int | None = None,
) -> int:
    """Record one bot post (a message or a command answer); its new message id."""
    text = "" if fields.get("message") is None else str(fields["message"])
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + TRUNCATED
    template = fields.get("templateId")
    message = Message(
        ctx.state.take_message_id(),
        method,
        bot.id,
        dialog_id,
        text,
        None,
        command_id=command_id,
        message_id=message_id,
        keyboard=fields.get("keyboard"),
        attach=fields.get("attach"),
        at=ctx.now,
        template_id=None if template is None else str(template),
        system=flag(fields.get("system"), False),
        url_preview=flag(fields.get("urlPreview"), True),
    )
    ctx.state.messages.append(message)
    return message.id


def _may_post(ctx: Context, bot: Bot, dialog_id: str) -> bool:
    chat = _CHAT.fullmatch(dialog_id)
    if chat is not None:
        found = ctx.state.chats.get(int(chat.group(1)))
        return found is not None and bot.id in found.members
    return dialog_id.isdigit() and int(dialog_id) in ctx.state.users


def message_send(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params)
    dialog_id = text_of(params.get("dialogId"))
    if not dialog_id:
        raise v2_error("DIALOG_ID_EMPTY")
    if not _may_post(ctx, bot, dialog_id):
        raise v2_error("ACCESS_DENIED", "the bot is not a participant of this dialog")
    fields = fields_of(params)
    if not text_of(fields.get("message")) and not fields.get("attach"):
        raise v2_error("EMPTY_MESSAGE")
    message_id = post(ctx, bot, "imbot.v2.Chat.Message.send", dialog_id, fields)
    return Reply({"id": message_id, "uuidMap": {}})


def event_get(ctx: Context, params: Params) -> Reply:
    bot = owned_bot(ctx, params)
    if flag(params.get("withUserEvents"), False):
        raise v2_error("USER_NOT_SUBSCRIBED")
    queue = ctx.state.v2.queue(bot.id)
    offset = to_int(params.get("offset"))
    if offset is not None:
        done = [e for e in queue.pending if e.event_id < offset]
        queue.pending = [e for e in queue.pending if e.event_id >= offset]
        queue.acknowledged.extend(done)
    asked = to_int(params.get("limit"))
    limit = DEFAULT_LIMIT if asked is None else min(MAX_LIMIT, max(1, asked))
    events = queue.pending[:limit]
    return Reply(
        {
            "events": [e.item() for e in events],
            "nextOffset": events[-1].event_id + 1 if events else 0,
            "hasMore": len(queue.pending) > limit,
        }
    )
