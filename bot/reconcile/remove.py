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

from bot.actions import WorkContext, failure
from bot.errors import PortalError
from bot.jobs import Job
from bot.membership import audit_entry
from bot.outcomes import Dead, Done, Result
from bot.rest import MAX_BATCH

log = logging.getLogger("autojoin.reconcile")

GONE = "USER_NOT_FOUND"


async def _forget(job: Job, ctx: WorkContext) -> None:
    store = ctx.store
    if store is None:
        log.warning("job %s: no store in the work context; ledger rows kept", job.id)
        return
    user = int(job.payload["user_id"])
    for rule, chat in job.payload.get("forget", []):
        await store.ledger_remove(str(rule), int(chat), user)


async def remove_from_chats(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    for start in range(0, len(jobs), MAX_BATCH):
        chunk = jobs[start : start + MAX_BATCH]
        commands: dict[str, tuple[str, Mapping[str, Any]]] = {
            f"r{i}": (
                "im.chat.user.delete",
                {"CHAT_ID": int(job.payload["chat_id"]), "USER_ID": int(job.payload["user_id"])},
            )
            for i, job in enumerate(chunk)
        }
        try:
            reply = await ctx.client.batch(commands)
        except PortalError as exc:
            result = failure(exc)
            results.update({job.id: result for job in chunk})
            continue
        now = ctx.clock()
        for i, job in enumerate(chunk):
            error = reply.errors.get(f"r{i}")
            if error is None or error.code.upper() == GONE:
                await _forget(job, ctx)
                code = None if error is None else GONE
                results[job.id] = Done(audit=(audit_entry(job, now, "removed", code),))
                log.info(
                    "chat %s: user %s removed%s",
                    job.payload["chat_id"],
                    job.payload["user_id"],
                    " (was not a member)" if code else "",
                )
                continue
            settled = failure(error)
            if isinstance(settled, Dead):
                audit = (audit_entry(job, now, "dead", settled.code),)
                settled = Dead(settled.code, settled.error, audit)
            results[job.id] = settled
    return results
