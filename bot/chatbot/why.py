"""The bot's `/why`: what `autojoin explain --user` says, told to the person it is about.

Only ever about the author of the request: the handler ignores whatever `/why` is followed
by, and the author id comes from the event, never from the text. The answer names the
person's departments and chats, so it is given only in their private dialog with the bot;
in a group chat they are asked to come there. It is cut to a few dozen lines (a message may
hold 20,000 characters; a person reads far fewer).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.chatbot import texts
from bot.chatbot.runtime import author_of, chat_names, reply_job
from bot.departments import DepartmentTree
from bot.errors import PortalError
from bot.executor import WorkContext, failure
from bot.jobs import ADD_TO_CHAT, DEAD, Job
from bot.outcomes import Done, Result
from bot.reconcile.explain import Explanation, explain_user

MAX_DEPARTMENTS = 5
MAX_CHATS = 15
MAX_JOBS = 3
MAX_KEYWORD_CHATS = 10
MAX_CHARS = 4000


async def answer_why(job: Job, ctx: WorkContext) -> Result:
    """Explain the author to the author; portal errors retry the request like a join's."""
    if str(job.payload.get("to", {}).get("dialog_id", "")).startswith("chat"):
        return Done(followups=(reply_job(job, "why_private"),))
    author = author_of(job)
    try:
        tree = await ctx.directory.tree()
        explanation = await _explain(ctx, author, tree)
        unknown = [d.id for d in explanation.departments if not tree.contains(d.id)]
        if unknown:  # moved into a department newer than the cached tree: not "no rule"
            tree = await ctx.directory.tree(unknown)  # soon, not at once: may ask to retry
            explanation = await _explain(ctx, author, tree)
    except PortalError as exc:
        return failure(exc)
    names = await chat_names(ctx, chats_named(explanation))
    text = why_text(str(job.payload.get("language") or ""), explanation, names)
    return Done(followups=(reply_job(job, "why", text=text),))


async def _explain(ctx: WorkContext, user_id: int, tree: DepartmentTree) -> Explanation:
    return await explain_user(ctx.client, ctx.store, ctx.rules(), user_id, tree=tree, history=0)


def chats_named(e: Explanation) -> list[int]:
    """Every chat the answer may mention, in the order it mentions them."""
    jobs = [j.chat_id for j in e.jobs if j.chat_id is not None]
    keyword = [c for r in e.keyword_rules for c in r.chats]
    return list(dict.fromkeys([c.chat_id for c in e.chats] + jobs + keyword))


def why_text(lang: str, e: Explanation, names: Mapping[int, str]) -> str:
    """Departments, each chat with its status and rules, open work, keyword chats."""

    def label(chat: int) -> str:
        return texts.chat_label(lang, chat, names.get(chat))

    say = texts.say
    lines: list[str] = []
    if not e.active:
        lines.append(say(lang, "why_inactive"))
    elif e.departments:
        paths = [d.path for d in e.departments[:MAX_DEPARTMENTS]]
        lines.append(say(lang, "why_departments", departments="; ".join(paths)))
    else:
        lines.append(say(lang, "why_no_departments"))
    if e.active and not e.rules:
        lines.append(say(lang, "why_no_rules"))
    if e.chats:
        lines.append(say(lang, "why_chats"))
    for c in e.chats[:MAX_CHATS]:
        key = "why_rule" if len(c.rules) == 1 else "why_rules"
        rules = f" ({say(lang, key, rules=', '.join(c.rules))})" if c.rules else ""
        lines.append(f"• {label(c.chat_id)}: {say(lang, 'state_' + c.state)}{rules}")
    lines += _more(lang, len(e.chats) - MAX_CHATS)
    work = [(j.chat_id, j) for j in e.jobs if j.chat_id is not None]
    if work:
        lines.append(say(lang, "why_work"))
    for chat, j in work[:MAX_JOBS]:
        if j.state == DEAD:
            what = texts.reason(lang, "failed", j.code)
        else:
            what = say(lang, "why_adding" if j.kind == ADD_TO_CHAT else "why_removing")
        lines.append(f"• {label(chat)}: {what}")
    lines += _more(lang, len(work) - MAX_JOBS)
    keyword = list(dict.fromkeys(c for r in e.keyword_rules for c in r.chats))
    if keyword:
        offered = texts.enumerate_names(lang, [label(c) for c in keyword[:MAX_KEYWORD_CHATS]])
        lines.append(say(lang, "why_keywords", chats=offered))
    return _fit("\n".join(lines))


def _more(lang: str, count: int) -> list[str]:
    return [texts.say(lang, "why_more", count=str(count))] if count > 0 else []


def _fit(text: str) -> str:
    """At most MAX_CHARS, cut at a line end: chat titles are the portal's, of any length."""
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind("\n", 0, MAX_CHARS - 2)
    return text[: cut if cut > 0 else MAX_CHARS - 2].rstrip() + "\n…"
