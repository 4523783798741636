"""What every part of the chat bot shares: state keys, its per-worker cache, and the reply.

Every request ends in exactly one `bot.reply` job (dedupe key `<event>:reply`), built here.
The askers' departments (`user.get`) and chat titles (`im.dialog.get`) are read in bulk and
cached per worker: a transfer reaches the bot within `USER_TTL`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import PortalError
from bot.executor import WorkContext
from bot.jobs import BOT_REPLY, Job, NewJob
from bot.reconcile.model import Person

log = logging.getLogger("autojoin.bot")

BOT_ID_KEY = "bot.id"  # state keys written by `autojoin register-bot`
BOT_COMMANDS_KEY = "bot.commands"
USER_TTL = 300.0
NAME_TTL = 600.0
USERS_PER_CALL = 50  # user.get pages are 50 rows
_ENVELOPE = ("author", "to", "language", "via")


@dataclass
class BotCache:
    """Per worker: the askers' departments and chat names, each with the time it was read."""

    users: dict[int, tuple[float, tuple[int, ...]]] = field(default_factory=dict)
    chat_names: dict[int, tuple[float, str | None]] = field(default_factory=dict)


def reply_job(job: Job, say: str, **extra: Any) -> NewJob:
    """The one reply of a request; later replies of the same request are duplicates."""
    payload = {k: job.payload[k] for k in _ENVELOPE if k in job.payload}
    return NewJob(
        BOT_REPLY,
        {**payload, "say": say, **extra},
        dedupe_key=f"{job.event_key or job.id}:reply",
        event_key=job.event_key,
    )


def author_of(job: Job) -> int:
    return int(job.payload["author"]["id"])


async def user_departments(ctx: WorkContext, user_ids: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Departments per user from `user.get`; inactive or unknown users have none."""
    cache = ctx.cache(BotCache).users
    now = ctx.clock()
    wanted = sorted(set(user_ids))
    stale = [u for u in wanted if u not in cache or now - cache[u][0] > USER_TTL]
    for start in range(0, len(stale), USERS_PER_CALL):
        chunk = stale[start : start + USERS_PER_CALL]
        reply = await ctx.client.call("user.get", {"FILTER": {"ID": chunk}})
        rows = reply.result if isinstance(reply.result, list) else []
        people = [Person.from_row(r) for r in rows if isinstance(r, Mapping)]
        found = {p.id: p.departments for p in people if p is not None and p.active}
        for user_id in chunk:
            cache[user_id] = (now, found.get(user_id, ()))
    return {u: cache[u][1] for u in wanted}


async def chat_names(ctx: WorkContext, chats: Sequence[int]) -> dict[int, str]:
    """Chat titles from `im.dialog.get` (one batch, cached); a chat we cannot read has none."""
    now = ctx.clock()
    cache = ctx.cache(BotCache).chat_names
    stale = [c for c in dict.fromkeys(chats) if c not in cache or now - cache[c][0] > NAME_TTL]
    if stale:
        commands = {f"c{c}": ("im.dialog.get", {"DIALOG_ID": f"chat{c}"}) for c in stale[:50]}
        try:
            reply = await ctx.client.batch(commands)
        except PortalError as exc:
            log.info("bot: chat names unavailable (%s); replying with chat ids", exc.code)
        else:
            for chat in stale[:50]:
                card = reply.result.get(f"c{chat}")
                name = card.get("name") if isinstance(card, Mapping) else None
                cache[chat] = (now, str(name) if name else None)
    return {c: name for c in chats if c in cache and (name := cache[c][1])}
