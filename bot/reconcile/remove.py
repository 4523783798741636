"""The `chat.remove` executor: `im.chat.user.delete`, up to 50 in one `batch`.

Only `sync` and the scheduled reconcile queue removals, and only for people a rule added
(see `bot.reconcile.planner`). Someone who is no longer in the chat (`USER_NOT_FOUND`) counts
as removed: the goal is reached either way. On success the ledger forgets the person's rows
for the chat, so a rule that meets them again treats them as new.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.errors import PortalError
from bot.executor import WorkContext, failure
from bot.jobs import ChatRemove, Job, audit_entry
from bot.outcomes import Dead, Done, Result
from bot.rest import MAX_BATCH

log = logging.getLogger("autojoin.reconcile")

GONE = "USER_NOT_FOUND"


async def _forget(remove: ChatRemove, ctx: WorkContext) -> None:
    for rule, chat in remove.forget:
        await ctx.store.ledger_remove(rule, chat, remove.user_id)


async def remove_from_chats(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    for start in range(0, len(jobs), MAX_BATCH):
        chunk = [(job, ChatRemove.from_job(job)) for job in jobs[start : start + MAX_BATCH]]
        commands: dict[str, tuple[str, Mapping[str, Any]]] = {
            f"r{i}": ("im.chat.user.delete", {"CHAT_ID": rm.chat_id, "USER_ID": rm.user_id})
            for i, (_, rm) in enumerate(chunk)
        }
        try:
            reply = await ctx.client.batch(commands)
        except PortalError as exc:
            result = failure(exc)
            results.update({job.id: result for job, _ in chunk})
            continue
        now = ctx.clock()
        for i, (job, rm) in enumerate(chunk):
            error = reply.errors.get(f"r{i}")
            if error is None or error.code.upper() == GONE:
                await _forget(rm, ctx)
                code = None if error is None else GONE
                results[job.id] = Done(audit=(audit_entry(job, rm, now, "removed", code),))
                log.info(
                    "chat %s: user %s removed%s",
                    rm.chat_id,
                    rm.user_id,
                    " (was not a member)" if code else "",
                )
                continue
            settled = failure(error)
            if isinstance(settled, Dead):
                audit = (audit_entry(job, rm, now, "dead", settled.code),)
                settled = Dead(settled.code, settled.error, audit)
            results[job.id] = settled
    return results
