"""Membership executors: resolve a new user's departments, and add people to chats.

Adds are coalesced: every claimed add for the same chat and HIDE_HISTORY becomes one
`im.chat.user.add` with many USERS, and the member list is read before and after it in
the same `batch`, so one request both adds and proves what happened (`true` alone cannot
tell added, already a member, and silently dropped apart).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.errors import PortalError
from bot.executor import WorkContext, failure
from bot.jobs import ChatAdd, Job, audit_entry, event_id
from bot.outcomes import Dead, Done, Result, Retry
from bot.rest import chat_user_add_params

log = logging.getLogger("autojoin.membership")

GROUPS_PER_BATCH = 16  # three commands per chat group, at most 50 commands per batch


async def resolve_users(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    """Department IDs → the chats the rules grant, as one add job per (chat, user)."""
    results: dict[int, Result] = {}
    wanted = sorted({d for job in jobs for d in job.payload["departments"]})
    try:
        compiled = await ctx.compiled(wanted)
    except PortalError as exc:
        result = failure(exc)
        return {job.id: result for job in jobs}
    for job in jobs:
        user_id = int(job.payload["user_id"])
        grants = compiled.grants_for_departments(job.payload["departments"])
        accepted_at = float(job.payload.get("accepted_at", job.created_at))
        followups = tuple(
            ChatAdd(
                grant.chat_id, user_id, grant.hide_history, grant.rules, grant.reasons, accepted_at
            ).to_job(job.event_key or str(job.id), job.event_key)
            for grant in grants
        )
        results[job.id] = Done(followups=followups)
    return results


def _members(value: Any, webhook_user: int) -> set[int] | None:
    """A member list without the webhook user is unreadable, not empty."""
    if not isinstance(value, list):
        return None
    members = {int(v) for v in value if str(v).isdigit()}
    return members if webhook_user in members else None


async def add_to_chats(jobs: Sequence[Job], ctx: WorkContext) -> dict[int, Result]:
    groups: dict[tuple[int, bool], list[tuple[Job, ChatAdd]]] = {}
    for job in jobs:
        add = ChatAdd.from_job(job)
        groups.setdefault((add.chat_id, add.hide_history), []).append((job, add))
    items = list(groups.items())
    results: dict[int, Result] = {}
    for start in range(0, len(items), GROUPS_PER_BATCH):
        chunk = items[start : start + GROUPS_PER_BATCH]
        results.update(await _add_chunk(chunk, ctx))
    return results


async def _add_chunk(
    chunk: Sequence[tuple[tuple[int, bool], list[tuple[Job, ChatAdd]]]], ctx: WorkContext
) -> dict[int, Result]:
    commands: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for i, ((chat_id, hide), group) in enumerate(chunk):
        users = sorted({add.user_id for _, add in group})
        commands[f"b{i}"] = ("im.chat.user.list", {"CHAT_ID": chat_id})
        commands[f"a{i}"] = ("im.chat.user.add", chat_user_add_params(chat_id, users, hide))
        commands[f"c{i}"] = ("im.chat.user.list", {"CHAT_ID": chat_id})
    try:
        reply = await ctx.client.batch(commands)
    except PortalError as exc:
        result = failure(exc)
        return {job.id: result for _, group in chunk for job, _ in group}
    now = ctx.clock()
    webhook_user = ctx.client.webhook.user_id
    results: dict[int, Result] = {}
    for i, ((chat_id, _), group) in enumerate(chunk):
        error = reply.errors.get(f"a{i}")
        if error is not None:
            settled = failure(error)
            for job, add in group:
                if isinstance(settled, Dead):
                    audit = (audit_entry(job, add, now, "dead", settled.code),)
                    results[job.id] = Dead(settled.code, settled.error, audit)
                else:
                    results[job.id] = settled
            log.warning("chat %s: add failed: %s", chat_id, error.code)
            continue
        before = _members(reply.result.get(f"b{i}"), webhook_user)
        after = _members(reply.result.get(f"c{i}"), webhook_user)
        if before is None or after is None:
            for job, _ in group:
                results[job.id] = Retry(
                    "MEMBER_LIST_UNREADABLE",
                    f"chat {chat_id}: the member list does not include the webhook user",
                )
            continue
        said: list[tuple[Job, int, str]] = []
        for job, add in group:
            user_id = add.user_id
            outcome = (
                "already_member"
                if user_id in before
                else "added"
                if user_id in after
                else "dropped"
            )
            ledger = (
                tuple((rule, chat_id, user_id) for rule in add.rules) if outcome == "added" else ()
            )
            results[job.id] = Done(audit=(audit_entry(job, add, now, outcome),), ledger=ledger)
            said.append((job, user_id, outcome))
            if outcome == "added" and add.accepted_at is not None:
                ctx.metrics.latency.observe(max(0.0, now - add.accepted_at))
        _log_outcomes(chat_id, group[0][1].hide_history, said)
    return results


def _log_outcomes(chat_id: int, hide: bool, said: Sequence[tuple[Job, int, str]]) -> None:
    """One line per chat and request, naming every user with their event and job, so each
    event ID stays traceable; a line per user cost the worker more than the request."""
    history = "hidden" if hide else "visible"
    if len(said) == 1:
        [(job, user_id, outcome)] = said
        extra = {"event_id": event_id(job.event_key), "job_id": str(job.id)}
        log.info(
            "chat %s: user %s %s (history %s)", chat_id, user_id, outcome, history, extra=extra
        )
        return
    ids = [event_id(job.event_key) for job, _, _ in said]
    users = ", ".join(
        f"user {user_id} {outcome} [{ids[i]} job {job.id}]"
        for i, (job, user_id, outcome) in enumerate(said)
    )
    log.info("chat %s (history %s): %s", chat_id, history, users, extra={"event_ids": ids})
