"""Turning a plan into queued work: the same jobs, store, rate limit and audit as events.

Adds become `chat.add` jobs grouped like the event path's (`chat:Y|N`), so the executor
merges them into one verified `im.chat.user.add` per chat; removals become `chat.remove`
jobs. Dedupe keys carry a scope (`sync:<run>` or `reconcile:<slot>`): one run never queues
the same change twice, and two processes running the same scheduled slot cannot either.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bot.jobs import (
    ADD_TO_CHAT,
    DEAD,
    PENDING,
    REMOVE_FROM_CHAT,
    RUNNING,
    ChatAdd,
    ChatRemove,
    Job,
    NewJob,
)
from bot.reconcile.model import Change, Plan
from bot.store.aio import AsyncStore

OPEN_LIMIT = 1_000_000

OpenPair = tuple[str, int, int]  # (job kind, chat, user)


def add_job(change: Change, scope: str) -> NewJob:
    add = ChatAdd(change.chat_id, change.user_id, change.hide_history, change.rules, change.reasons)
    return add.to_job(scope, scope)


def remove_job(change: Change, scope: str) -> NewJob:
    remove = ChatRemove(change.chat_id, change.user_id, change.rules, change.reasons, change.forget)
    return remove.to_job(scope, scope)


def jobs_for(plan: Plan, scope: str, skip: Collection[OpenPair] = ()) -> list[NewJob]:
    jobs = [
        add_job(c, scope) for c in plan.adds() if (ADD_TO_CHAT, c.chat_id, c.user_id) not in skip
    ]
    jobs += [
        remove_job(c, scope)
        for c in plan.removes()
        if (REMOVE_FROM_CHAT, c.chat_id, c.user_id) not in skip
    ]
    return jobs


async def apply_plan(
    store: AsyncStore, plan: Plan, scope: str, now: float, skip: Collection[OpenPair] = ()
) -> int:
    """Record who was found already in place, then queue the changes; returns jobs queued."""
    if plan.adopt:
        await store.ledger_add(plan.adopt, now)
    jobs = jobs_for(plan, scope, skip)
    return await store.enqueue(jobs, now) if jobs else 0


async def open_pairs(store: AsyncStore) -> set[OpenPair]:
    """(kind, chat, user) of every add or removal still queued, running or dead.

    The schedule leaves these alone: a dead job waits for `autojoin retry`, and one pass
    should not pile a second job onto work that is still in flight.
    """
    jobs = await store.jobs((PENDING, RUNNING, DEAD), limit=OPEN_LIMIT)
    return {
        (job.kind, int(job.payload["chat_id"]), int(job.payload["user_id"]))
        for job in jobs
        if job.kind in (ADD_TO_CHAT, REMOVE_FROM_CHAT)
    }


async def own_jobs(store: AsyncStore, scope: str, expected: int) -> list[Job]:
    """The jobs queued under `scope` (newest jobs first; widen until all are found)."""
    limit = expected + 1000
    prefix = scope + ":"
    while True:
        jobs = await store.jobs(None, limit=limit)
        mine = [job for job in jobs if (job.dedupe_key or "").startswith(prefix)]
        if len(mine) >= expected or len(jobs) < limit:
            return mine
        limit *= 4


def by_chat(jobs: Sequence[Job]) -> dict[int, list[Job]]:
    grouped: dict[int, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(int(job.payload["chat_id"]), []).append(job)
    return dict(sorted(grouped.items()))
