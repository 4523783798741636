"""`autojoin sync`: plan, guard, confirm, queue, drain, report.

The jobs go into the shared queue, so a running `serve` may pick some of them up; this
process drains the queue with its own `Worker` next to it (claims are leased, so each job
runs once) and waits for its own jobs by their run-scoped dedupe keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.jobs import DEAD, DONE, PENDING, RUNNING, Job
from bot.reconcile.apply import apply_plan, by_chat, own_jobs
from bot.reconcile.chats import name_plan_chats
from bot.reconcile.engine import full_plan
from bot.reconcile.ledger import load_ledger
from bot.reconcile.model import Plan
from bot.reconcile.planner import department_rules
from bot.reconcile.progress import Progress
from bot.reconcile.reader import Reader
from bot.reconcile.render import render_plan, render_results
from bot.reconcile.session import Session
from bot.reconcile.state import Cursor, load_cursor, record_synced, save_cursor
from bot.rules import CompiledRules, RuleSet

POLL_CAP = 5.0


@dataclass(frozen=True, slots=True)
class SyncOptions:
    yes: bool = False
    allow_removals: int | None = None
    limit: int = 20


def removal_refusal(count: int, max_removals: int, allowed: int | None) -> str | None:
    """Why the blast-radius guard refuses `count` removals, or None if they may go ahead."""
    if count <= max_removals or (allowed is not None and count <= allowed):
        return None
    return (
        f"refusing to remove {count} people: more than AUTOJOIN_MAX_REMOVALS={max_removals}"
        + (f" and --allow-removals {allowed}" if allowed is not None else "")
        + f"; review the plan, then run `autojoin sync --allow-removals {count}`"
    )


async def run_sync(
    session: Session, ruleset: RuleSet, options: SyncOptions, confirm: Callable[[str], bool]
) -> int:
    runtime = session.runtime
    store, clock = session.store, runtime.clock
    names = [rule.name for rule in ruleset.rules]
    ledger = await load_ledger(store, names, clock(), write=True)
    progress = Progress(runtime.err, "sync: reading the portal", unit="reads")
    reader = Reader(session.client, progress, progress.note)
    plan, snapshot, compiled = await full_plan(
        reader, ruleset, ledger, webhook_user=session.webhook_user
    )
    await name_plan_chats(Reader(session.client, notice=progress.note), plan)
    progress.finish()
    for problem in plan.problems:
        runtime.warn(str(problem))
    for line in render_plan(plan, ruleset, limit=options.limit):
        runtime.print(line)
    refusal = removal_refusal(
        plan.remove_count, runtime.settings.max_removals, options.allow_removals
    )
    if refusal:
        runtime.warn(f"autojoin: {refusal}")
        return 1
    if plan.changed and not options.yes:
        if not runtime.stdin.isatty():
            runtime.warn("autojoin: no terminal to confirm on; pass --yes to apply")
            return 1
        question = f"Apply {plan.add_count} additions and {plan.remove_count} removals? [y/N] "
        if not confirm(question):
            runtime.warn("autojoin: nothing applied")
            return 1
    scope = f"sync:{uuid.uuid4().hex[:12]}"
    queued = await apply_plan(store, plan, scope, clock())
    jobs = await drain(session, scope, queued) if queued else []
    if jobs and any(job.state in (PENDING, RUNNING) for job in jobs):
        return 1  # the queue paused: drain() said why; the jobs stay queued
    rows = await outcomes(session, jobs)
    for line in render_results(rows, reader.requests, plan.cards):
        runtime.print(line)
    await _record(session, compiled, plan, snapshot.newest_stamp)
    dead = any(job.state == DEAD for job in jobs)
    return 1 if dead or plan.unreadable else 0


async def drain(session: Session, scope: str, expected: int) -> list[Job]:
    """Run the worker until every job of `scope` is done or dead (or the queue pauses)."""
    runtime, worker = session.runtime, session.worker
    progress = Progress(runtime.err, "sync: applying", unit="jobs")
    handled = 0
    while True:
        count = await worker.step()
        if count:
            handled += count
            progress(min(handled, expected), expected)
            continue
        jobs = await own_jobs(session.store, scope, expected)
        waiting = [job for job in jobs if job.state in (PENDING, RUNNING)]
        progress(expected - len(waiting), expected)
        if not waiting:
            progress.finish()
            return jobs
        paused = await worker.pause_state()
        if paused is not None:
            progress.note(
                f"the queue is paused ({paused.code}: {paused.reason}); "
                f"{len(waiting)} jobs stay queued for the service's worker"
            )
            return jobs
        now = runtime.clock()
        due = min(
            (job.lease_until or now) if job.state == RUNNING else job.run_after for job in waiting
        )
        await runtime.sleep(min(POLL_CAP, max(0.01, due - now)))


async def outcomes(session: Session, jobs: Sequence[Job]) -> dict[int, dict[str, int]]:
    """Per chat: audit outcomes of these jobs (added, already_member, dropped, removed, dead)."""
    rows: dict[int, dict[str, int]] = {}
    for chat, group in by_chat(jobs).items():
        ids = {job.id for job in group}
        seen: set[int] = set()
        counts = rows.setdefault(chat, {})
        for entry in await session.store.history(chat_id=chat, limit=3 * len(group) + 50):
            if entry.job_id in ids and entry.job_id not in seen:
                seen.add(entry.job_id)
                counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
        for job in group:
            if job.id not in seen:
                outcome = (
                    "dead" if job.state == DEAD else "done" if job.state == DONE else job.state
                )
                counts[outcome] = counts.get(outcome, 0) + 1
    return rows


async def _record(session: Session, compiled: CompiledRules, plan: Plan, stamp: str | None) -> None:
    """Remember which rule definitions are now applied (not those with an unreadable chat)."""
    now = session.runtime.clock()
    rules = [
        rule
        for rule in department_rules(compiled).values()
        if not any(chat in plan.unreadable for chat in rule.chats)
    ]
    await record_synced(session.store, rules, now)
    cursor = await load_cursor(session.store)
    await save_cursor(session.store, Cursor(stamp or cursor.stamp, cursor.pass_at, now), now)
