"""The `bot.request` executor: budget, departments, rules, then the adds and one reply.

The handler recorded which keyword rules the words matched; here the person's departments
(from the event for a Chatbots 2.0 bot, else `user.get`, cached) decide which of those rules
they may use (`only_departments`, with subdepartments). Allowed chats become `ChatAdd` jobs,
the same payload as the department path's, so coalescing, verification and the audit are the
same; the person asking is the only user ever added. `why` asks for the explanation of the
author (`why`). Every request ends in exactly one `bot.reply` job, which answers once the
adds have finished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.chatbot import limits
from bot.chatbot.runtime import (
    BOT_COMMANDS_KEY,
    BOT_ID_KEY,
    author_of,
    reply_job,
    user_departments,
)
from bot.chatbot.why import answer_why
from bot.errors import PortalError
from bot.executor import WorkContext, failure
from bot.jobs import ChatAdd, Job, event_id
from bot.outcomes import Dead, Done, Result
from bot.rules import CompiledRules, Rule

log = logging.getLogger("autojoin.bot")


async def handle_requests(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    joins: list[Job] = []
    for job in jobs:
        action = job.payload.get("action")
        if action == "forget":
            results[job.id] = await _forget(job, ctx)
        elif action not in {"join", "nomatch", "help", "why"}:
            results[job.id] = Dead("BAD_PAYLOAD", f"unknown bot action {action!r}")
        elif (refusal := await _over_budget(job, ctx)) is not None:
            results[job.id] = refusal
        elif action == "join":
            joins.append(job)
        elif action == "why":
            results[job.id] = await answer_why(job, ctx)
        else:
            results[job.id] = Done(followups=(reply_job(job, str(action)),))
    if joins:
        results.update(await _joins(joins, ctx))
    return results


async def _over_budget(job: Job, ctx: WorkContext) -> Result | None:
    admission = await limits.admit(
        ctx.store,
        author_of(job),
        job.event_key or f"job:{job.id}",
        job.created_at,
        ctx.clock(),
        per_user=ctx.settings.bot_user_limit,
        overall=ctx.settings.bot_global_limit,
    )
    if admission.ok:
        return None
    log.warning(
        "bot: request from user %s refused (%s)%s",
        author_of(job),
        "per-user limit" if admission.verdict == "limited" else "portal-wide limit",
        "" if admission.notify else "; already told, not answered",
        extra={"event_id": event_id(job.event_key), "job_id": str(job.id)},
    )
    if not admission.notify:
        return Done()
    return Done(followups=(reply_job(job, admission.verdict),))


async def _forget(job: Job, ctx: WorkContext) -> Result:
    """ONIMBOTDELETE: the stored registration no longer exists on the portal."""
    bot_id = str(job.payload.get("bot_id"))
    if await ctx.store.get_state(BOT_ID_KEY) != bot_id:
        log.info("bot %s was deleted; it is not the registered one, nothing to forget", bot_id)
        return Done()
    now = ctx.clock()
    await ctx.store.set_state(BOT_ID_KEY, None, now)
    await ctx.store.set_state(BOT_COMMANDS_KEY, None, now)
    log.warning("bot %s was deleted on the portal; `autojoin register-bot` recreates it", bot_id)
    return Done()


async def _joins(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    known = {author_of(j): _event_departments(j) for j in jobs}
    try:
        asked = {a for a, ds in known.items() if ds is None}
        departments = await user_departments(ctx, asked) if asked else {}
        departments |= {a: ds for a, ds in known.items() if ds is not None}
        compiled = await ctx.compiled(sorted({d for ds in departments.values() for d in ds}))
    except PortalError as exc:
        result = failure(exc)
        return {job.id: result for job in jobs}
    return {job.id: grant(job, compiled, departments.get(author_of(job), ())) for job in jobs}


def _event_departments(job: Job) -> tuple[int, ...] | None:
    """The author's departments as the event told them (Chatbots 2.0), else None."""
    given = job.payload.get("author", {}).get("departments")
    return None if given is None else tuple(int(d) for d in given)


def grant(job: Job, compiled: CompiledRules, departments: Sequence[int]) -> Result:
    """Allowed rules become adds of the author alone; refused ones are logged, not named."""
    author = author_of(job)
    mid = job.payload.get("to", {}).get("message_id")
    allowed: list[Rule] = []
    for name in job.payload.get("rules", []):
        rule = compiled.rule(str(name))
        if rule is not None and rule.kind == "keywords" and compiled.allowed(rule, departments):
            allowed.append(rule)
            continue
        why = (
            "it is disabled, removed or unresolved"
            if rule is None or rule.kind != "keywords"
            else f"only_departments {list(rule.only_departments)} does not cover their "
            f"departments {list(departments) or '(none)'}"
        )
        log.info(
            "bot: user %s may not join by rule %s: %s",
            author,
            name,
            why,
            extra={"event_id": event_id(job.event_key), "job_id": str(job.id)},
        )
    refused = len(allowed) < len(job.payload.get("rules", []))
    if not allowed:
        return Done(followups=(reply_job(job, "refused"),))
    chats: dict[int, tuple[bool, list[str], list[str]]] = {}
    for rule in allowed:
        for chat in rule.chats:
            hide, names, reasons = chats.setdefault(chat, (False, [], []))
            names.append(rule.name)
            reasons.append(f"asked the bot (message {mid}); keyword rule {rule.name} allows it")
            chats[chat] = (hide or rule.hide_history, names, reasons)
    key = job.event_key or str(job.id)
    adds = tuple(
        ChatAdd(chat, author, hide, tuple(names), tuple(reasons), job.created_at).to_job(
            key, job.event_key
        )
        for chat, (hide, names, reasons) in sorted(chats.items())
    )
    templates = [[r.reply, list(r.chats)] for r in allowed if r.reply]
    answer = reply_job(
        job,
        "result",
        chats=sorted(chats),
        templates=templates,
        refused_some=refused,
        requested_at=job.created_at,
    )
    return Done(followups=(*adds, answer))
