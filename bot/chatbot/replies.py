"""The `bot.reply` executor: say what really happened, in the dialog the request came from.

A request's reply waits for that request's `chat.add` jobs (found by its event key) and
reads their audit rows, so it can tell added, already a member and failed apart, with the
reason. While adds are still retrying after `QUEUED_AFTER` seconds (from when the request
arrived, by the injected clock), the person is told once that the request is queued; the
flag lives in the store so a restart does not repeat it.

The worker settles each reply right after its call (`bot.actions.SETTLE_EACH`), so a crash
repeats at most the reply whose commit it interrupted; `templateId` deduplication is not
relied on (undocumented).

Commands are answered with `imbot.command.answer`, everything else with `imbot.message.add`
to the event's DIALOG_ID (the author for private dialogs, `chatNNN` for groups). Every call
carries the CLIENT_ID the bot was registered with. A request that came from a Chatbots 2.0
bot is answered the same way through `imbot.v2.Command.answer` / `imbot.v2.Chat.Message.send`
with the botToken (B24_BOT_TOKEN).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.chatbot import texts
from bot.chatbot.runtime import author_of, chat_names
from bot.errors import PortalError
from bot.executor import WorkContext, failure
from bot.jobs import ADD_TO_CHAT, DEAD, DONE, AuditEntry, Job, event_id
from bot.outcomes import Dead, Done, Result, Retry
from bot.rules import RuleSet

WAIT_POLL = 2.0  # seconds between looks at a request's adds

log = logging.getLogger("autojoin.bot")

QUEUED_AFTER = 10.0
QUEUED_KEY = "bot.queued:{}"
EXAMPLES = 5


async def send_replies(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    results: dict[int, Result] = {}
    for job in jobs:
        auth = _auth(job, ctx)
        if isinstance(auth, Dead):
            results[job.id] = auth
            continue
        try:
            results[job.id] = await _reply(job, ctx, auth)
        except PortalError as exc:
            results[job.id] = failure(exc)
    return results


def _auth(job: Job, ctx: WorkContext) -> dict[str, str] | Dead:
    """The credential the bot that received the request proves ownership with."""
    if job.payload.get("to", {}).get("api") == "v2":
        if ctx.settings.bot_token is None:
            return Dead("BOT_TOKEN_MISSING", "set B24_BOT_TOKEN to the Chatbots 2.0 bot's token")
        return {"botToken": ctx.settings.bot_token.reveal()}
    if ctx.settings.bot_client_id is None:
        return Dead("BOT_CLIENT_ID_MISSING", "set B24_BOT_CLIENT_ID to the bot's CLIENT_ID")
    return {"CLIENT_ID": ctx.settings.bot_client_id.reveal()}


async def _reply(job: Job, ctx: WorkContext, auth: Mapping[str, str]) -> Result:
    say = str(job.payload.get("say"))
    lang = str(job.payload.get("language") or "")
    if say == "result":
        return await _result(job, ctx, auth)
    examples = public_keywords(ctx.rules())
    if say in {"welcome", "help"}:
        text = texts.help_text(lang, examples, greeting=say == "welcome")
    elif say == "nomatch":
        text = f"{texts.say(lang, 'nomatch')} {texts.help_text(lang, examples)}"
    elif say == "why" and job.payload.get("text"):
        text = str(job.payload["text"])  # written by `why` in the person's language
    elif say in {"refused", "limited", "busy", "why_private"}:
        text = texts.say(lang, say)
    else:
        return Dead("BAD_PAYLOAD", f"unknown reply {say!r}")
    await send(ctx, job, auth, text, mention=say != "welcome")
    return Done()


def public_keywords(rules: RuleSet) -> list[str]:
    """The first keyword of each rule anyone may use: help never hints at restricted chats."""
    return [
        r.keywords[0]
        for r in rules.rules
        if r.enabled and r.kind == "keywords" and r.keywords and not r.only_departments
    ][:EXAMPLES]


async def send(
    ctx: WorkContext, job: Job, auth: Mapping[str, str], text: str, *, mention: bool
) -> None:
    to: Mapping[str, Any] = job.payload["to"]
    dialog = str(to["dialog_id"])
    author = job.payload.get("author", {})
    if mention and dialog.startswith("chat") and author.get("id"):
        name = str(author.get("first_name") or author.get("name") or "")
        text = f"{texts.mention(int(author['id']), name)}, {text}"
    method, params = _message(to, dialog, text)
    await ctx.client.call(method, {**params, **auth})
    log.info(
        "bot: replied in %s (%s)",
        dialog,
        job.payload.get("say"),
        extra={"event_id": event_id(job.event_key), "job_id": str(job.id)},
    )


def _message(to: Mapping[str, Any], dialog: str, text: str) -> tuple[str, dict[str, Any]]:
    """The answer to a command where it was typed, else a message to the dialog."""
    command = bool(to.get("command_id") and to.get("message_id"))
    if to.get("api") == "v2":
        params: dict[str, Any] = {"botId": to["bot_id"], "dialogId": dialog}
        if command:
            params |= {"commandId": to["command_id"], "messageId": to["message_id"]}
        method = "imbot.v2.Command.answer" if command else "imbot.v2.Chat.Message.send"
        return method, {**params, "fields": {"message": text}}
    if command:
        ids = {"COMMAND_ID": to["command_id"], "MESSAGE_ID": to["message_id"]}
        return "imbot.command.answer", {**ids, "MESSAGE": text}
    return "imbot.message.add", {"BOT_ID": to["bot_id"], "DIALOG_ID": dialog, "MESSAGE": text}


async def _result(job: Job, ctx: WorkContext, auth: Mapping[str, str]) -> Result:
    author = author_of(job)
    chats = [int(c) for c in job.payload.get("chats", [])]
    event_key = job.event_key or ""
    adds = {
        int(j.payload["chat_id"]): j
        for j in await ctx.store.jobs_for_event(event_key)
        if j.kind == ADD_TO_CHAT and int(j.payload.get("user_id", 0)) == author
    }
    waiting = [c for c in chats if c in adds and adds[c].state not in (DONE, DEAD)]
    notice = QUEUED_KEY.format(event_key)
    now = ctx.clock()
    if waiting:
        requested_at = float(job.payload.get("requested_at") or job.created_at)
        if now - requested_at >= QUEUED_AFTER and await ctx.store.get_state(notice) is None:
            lang = str(job.payload.get("language") or "")
            await send(ctx, job, auth, texts.say(lang, "queued"), mention=True)
            await ctx.store.set_state(notice, "sent", now)
        return Retry(
            "WAITING_FOR_ADDS", f"waiting for the adds to chat(s) {waiting}", poll=WAIT_POLL
        )
    # One query for the whole request: its audit rows, newest first.
    rows = await ctx.store.history(user_id=author, event_key=event_key, limit=4 * len(chats) + 8)
    results = [_chat_result(chat, adds.get(chat), rows) for chat in chats]
    text = await _result_text(job, ctx, results)
    # Cleared before the send, so the send is followed only by this job's settlement: the
    # flag is not read again once no add is waiting.
    await ctx.store.set_state(notice, None, now)
    await send(ctx, job, auth, text, mention=True)
    return Done()


def _chat_result(
    chat: int, add: Job | None, rows: Sequence[AuditEntry]
) -> tuple[int, str, str | None]:
    """(chat, outcome, code): the audit row of a finished add, or the dead job's code."""
    if add is None:
        return chat, "failed", "NOT_QUEUED"
    if add.state == DEAD:
        return chat, "failed", add.last_code
    outcome = next((e.outcome for e in rows if e.job_id == add.id), None)
    return (chat, outcome, None) if outcome else (chat, "failed", "NO_AUDIT")


async def _result_text(
    job: Job, ctx: WorkContext, results: Sequence[tuple[int, str, str | None]]
) -> str:
    lang = str(job.payload.get("language") or "")
    names = await chat_names(ctx, [chat for chat, _, _ in results])
    author = job.payload.get("author", {})
    return texts.result_text(
        lang,
        [
            texts.ChatResult(chat, texts.chat_label(lang, chat, names.get(chat)), out, code)
            for chat, out, code in results
        ],
        [(str(t), [int(c) for c in cs]) for t, cs in job.payload.get("templates", [])],
        name=str(author.get("name") or ""),
        first_name=str(author.get("first_name") or author.get("name") or ""),
        refused_some=bool(job.payload.get("refused_some")),
    )
