"""The `bot.request` executor: budget, departments, rules, then the adds and one reply.

The handler recorded which keyword rules the words matched; here the person's departments
(`user.get`, cached) decide which of those rules they may use (`only_departments`, with
subdepartments). Allowed chats become `chat.add` jobs shaped exactly like the department
path's, so coalescing, verification and the audit are the same; the person asking is the
only user ever added. `why` asks for the explanation of the author (`bot.botwhy`). Every
request ends in exactly one `bot.reply` job (dedupe key `<event>:reply`), which answers once
the adds have finished.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot import botlimits
from bot.errors import PortalError
from bot.jobs import ADD_TO_CHAT, BOT_REPLY, Job, NewJob, event_id
from bot.outcomes import Dead, Done, Result
from bot.rules import CompiledRules, Rule

if TYPE_CHECKING:  # bot.actions imports this module to build its registry
    from bot.actions import WorkContext
    from bot.settings import Settings
    from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.bot")

BOT_ID_KEY = "bot.id"  # state keys written by `autojoin register-bot`
BOT_COMMANDS_KEY = "bot.commands"
USER_TTL = 300.0  # a transfer reaches the bot within five minutes
USERS_PER_CALL = 50  # user.get pages are 50 rows
_ENVELOPE = ("author", "to", "language", "via")


@dataclass
class BotCache:
    """Per worker: the askers' departments and chat names, each with the time it was read."""

    users: dict[int, tuple[float, tuple[int, ...]]] = field(default_factory=dict)
    chat_names: dict[int, tuple[float, str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BotRuntime:
    store: AsyncStore
    settings: Settings
    cache: BotCache


def runtime(ctx: WorkContext) -> BotRuntime | None:
    """What bot executors need beyond REST; None until the composition root provides it."""
    if ctx.store is None or ctx.settings is None:
        return None
    cache = ctx.caches.get("bot")
    if not isinstance(cache, BotCache):
        cache = ctx.caches["bot"] = BotCache()
    return BotRuntime(ctx.store, ctx.settings, cache)


def failure(exc: PortalError) -> Result:
    """`bot.actions.failure`, imported late: `bot.actions` imports the executor modules."""
    from bot.actions import failure as mapped

    return mapped(exc)


NOT_WIRED = Dead(
    "BOT_NOT_WIRED",
    "the worker's WorkContext has no store/settings; the composition root must pass them",
)


async def handle_requests(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    bot = runtime(ctx)
    if bot is None:
        return {job.id: NOT_WIRED for job in jobs}
    results: dict[int, Result] = {}
    joins: list[Job] = []
    for job in jobs:
        action = job.payload.get("action")
        if action == "forget":
            results[job.id] = await _forget(job, bot, ctx.clock())
        elif action not in {"join", "nomatch", "help", "why"}:
            results[job.id] = Dead("BAD_PAYLOAD", f"unknown bot action {action!r}")
        elif (refusal := await _over_budget(job, bot, ctx.clock())) is not None:
            results[job.id] = refusal
        elif action == "join":
            joins.append(job)
        elif action == "why":
            from bot.botwhy import answer_why  # it imports bot.botreply, which imports us

            results[job.id] = await answer_why(job, ctx, bot)
        else:
            results[job.id] = Done(followups=(reply_job(job, str(action)),))
    if joins:
        results.update(await _joins(joins, ctx, bot))
    return results


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


async def _over_budget(job: Job, bot: BotRuntime, now: float) -> Result | None:
    admission = await botlimits.admit(
        bot.store,
        author_of(job),
        job.event_key or f"job:{job.id}",
        job.created_at,
        now,
        per_user=bot.settings.bot_user_limit,
        overall=bot.settings.bot_global_limit,
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


async def _forget(job: Job, bot: BotRuntime, now: float) -> Result:
    """ONIMBOTDELETE: the stored registration no longer exists on the portal."""
    bot_id = str(job.payload.get("bot_id"))
    if await bot.store.get_state(BOT_ID_KEY) != bot_id:
        log.info("bot %s was deleted; it is not the registered one, nothing to forget", bot_id)
        return Done()
    await bot.store.set_state(BOT_ID_KEY, None, now)
    await bot.store.set_state(BOT_COMMANDS_KEY, None, now)
    log.warning("bot %s was deleted on the portal; `autojoin register-bot` recreates it", bot_id)
    return Done()


async def _joins(jobs: Sequence[Job], ctx: WorkContext, bot: BotRuntime) -> dict[int, Result]:
    try:
        departments = await user_departments(ctx, bot.cache, {author_of(j) for j in jobs})
        compiled = await ctx.compiled(sorted({d for ds in departments.values() for d in ds}))
    except PortalError as exc:
        result = failure(exc)
        return {job.id: result for job in jobs}
    return {job.id: grant(job, compiled, departments.get(author_of(job), ())) for job in jobs}


async def user_departments(
    ctx: WorkContext, cache: BotCache, user_ids: Iterable[int]
) -> dict[int, tuple[int, ...]]:
    """Departments per user from `user.get`; inactive or unknown users have none."""
    now = ctx.clock()
    wanted = sorted(set(user_ids))
    stale = [u for u in wanted if u not in cache.users or now - cache.users[u][0] > USER_TTL]
    for start in range(0, len(stale), USERS_PER_CALL):
        chunk = stale[start : start + USERS_PER_CALL]
        reply = await ctx.client.call("user.get", {"FILTER": {"ID": chunk}})
        rows = reply.result if isinstance(reply.result, list) else []
        found = dict(_row(r) for r in rows if isinstance(r, Mapping))
        for user_id in chunk:
            cache.users[user_id] = (now, found.get(user_id, ()))
    return {u: cache.users[u][1] for u in wanted}


def _row(row: Mapping[str, Any]) -> tuple[int, tuple[int, ...]]:
    active = row.get("ACTIVE") in (True, "Y", "1", "true")
    raw = row.get("UF_DEPARTMENT")
    values = raw if isinstance(raw, list) else [] if raw in (None, "", False) else [raw]
    departments = tuple(int(v) for v in values if str(v).isdigit() and int(v) > 0)
    return int(str(row.get("ID", "0")) or 0), departments if active else ()


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
        NewJob(
            ADD_TO_CHAT,
            {
                "chat_id": chat,
                "user_id": author,
                "hide_history": hide,
                "rules": names,
                "reasons": reasons,
                "accepted_at": job.created_at,
            },
            dedupe_key=f"{key}:add:{chat}:{author}",
            event_key=job.event_key,
            group=f"{chat}:{'Y' if hide else 'N'}",
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
