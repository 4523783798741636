"""Operator commands over the store: `jobs`, `retry`, `history`, `prune`."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from bot.errors import NothingDone, PortalError, SettingsError, UsageError
from bot.jobs import DEAD, PENDING, RUNNING
from bot.logsafe import SECRETS
from bot.reconcile.chats import titles_once
from bot.reconcile.session import Runtime, open_client
from bot.settings import Settings
from bot.store import open_existing_store
from bot.worker import PAUSE_KEY, PauseState

DAY = 86_400.0


def register(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="pending, retrying, dead and paused work")
    jobs.add_argument("--all", action="store_true", help="include finished jobs")
    jobs.add_argument("-n", type=int, default=50, help="at most N rows (default 50)")
    jobs.set_defaults(func=cmd_jobs)
    retry = sub.add_parser("retry", help="queue dead jobs again")
    retry.add_argument("ids", nargs="*", type=int)
    retry.add_argument("--dead", action="store_true", help="every dead job")
    retry.set_defaults(func=cmd_retry)
    history = sub.add_parser("history", help="the audit trail of membership changes")
    history.add_argument("--user", type=int)
    history.add_argument("--chat", type=int)
    history.add_argument("-n", type=int, default=50)
    history.set_defaults(func=cmd_history)
    prune = sub.add_parser("prune", help="delete old finished jobs, dedupe keys and audit rows")
    prune.add_argument("--jobs-days", type=float, help="default AUTOJOIN_KEEP_JOBS_DAYS (7)")
    prune.add_argument("--events-days", type=float, help="default AUTOJOIN_KEEP_EVENTS_DAYS (90)")
    prune.add_argument("--audit-days", type=float, help="default AUTOJOIN_KEEP_AUDIT_DAYS (365)")
    prune.set_defaults(func=cmd_prune)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_jobs(args: argparse.Namespace) -> int:
    store = open_existing_store(Settings.load().require_database_url())
    try:
        pause = PauseState.load(store.get_state(PAUSE_KEY))
        if pause is not None:
            print(
                f"QUEUE PAUSED since {when(pause.since)}: {pause.code}: {pause.reason}"
                f" (next probe {when(pause.next_probe)})"
            )
        states = None if args.all else (PENDING, RUNNING, DEAD)
        rows = store.jobs(states, limit=args.n)
        print(f"{'ID':>6}  {'STATE':<9} {'KIND':<12} {'TRY':>3}  {'NEXT ATTEMPT':<19}  DETAIL")
        for job in rows:
            state = "retrying" if job.state == PENDING and job.last_code else job.state
            detail = " ".join(
                f"{k}={v}" for k, v in sorted(job.payload.items()) if k in {"chat_id", "user_id"}
            )
            if job.last_code:
                detail += f" [{job.last_code}] {job.last_error or ''}"
            nxt = when(job.run_after) if job.state == PENDING else "-"
            print(f"{job.id:>6}  {state:<9} {job.kind:<12} {job.attempts:>3}  {nxt:<19}  {detail}")
        counts = store.counts()
        print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    finally:
        store.close()
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.ids and not args.dead:
        raise UsageError("name job IDs or use --dead")
    store = open_existing_store(Settings.load().require_database_url())
    try:
        if args.dead:
            n = store.revive(None, time.time())
            print(f"{n} job(s) queued again" if n else "no dead jobs: nothing to queue again")
            return 0
        # one at a time, so the answer can name each ID that was not a dead job
        missed = [i for i in dict.fromkeys(args.ids) if not store.revive([i], time.time())]
    finally:
        store.close()
    revived = len(dict.fromkeys(args.ids)) - len(missed)
    if revived:
        print(f"{revived} job(s) queued again")
    if missed:
        listed = ", ".join(map(str, missed))
        raise NothingDone(
            f"no dead job with ID {listed} (no such job, or it is not dead); "
            "`autojoin jobs` lists the dead ones"
        )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    settings = Settings.load()
    store = open_existing_store(settings.require_database_url())
    try:
        rows = store.history(user_id=args.user, chat_id=args.chat, limit=args.n)
    finally:
        store.close()
    if not rows:
        print("no audit entries" + (" match these filters" if args.user or args.chat else " yet"))
        return 0
    titles = chat_titles(settings, {row.chat_id for row in rows})
    print(f"{'TIME (UTC)':<19}  {'OUTCOME':<14} {'CHAT':>6} {'USER':>6} HIST  RULE / DETAIL")
    for row in rows:
        hist = "hide" if row.hide_history else "show"
        detail = row.rule or "-"
        if row.code:
            detail += f" [{row.code}]"
        cells = f"{row.outcome:<14} {row.chat_id:>6} {row.user_id:>6} {hist}"
        title = f"  “{titles[row.chat_id]}”" if row.chat_id in titles else ""
        print(f"{when(row.at):<19}  {cells}  {detail}{title}")
    return 0


def chat_titles(settings: Settings, chats: set[int]) -> dict[int, str]:
    """Titles from the portal when a webhook is set; history works without them (one try)."""
    if settings.webhook_url is None:
        return {}

    async def read() -> dict[int, str]:
        async with open_client(Runtime(settings)) as client:
            return await titles_once(client, chats)

    try:
        return anyio.run(read)
    except (PortalError, SettingsError) as exc:
        print(f"note: chat titles unavailable ({SECRETS.mask(str(exc))})", file=sys.stderr)
        return {}


def cmd_prune(args: argparse.Namespace) -> int:
    now = time.time()
    settings = Settings.load()
    jobs_days = settings.keep_jobs_days if args.jobs_days is None else args.jobs_days
    events_days = settings.keep_events_days if args.events_days is None else args.events_days
    audit_days = settings.keep_audit_days if args.audit_days is None else args.audit_days
    if settings.max_event_age and events_days * DAY <= settings.max_event_age:
        raise UsageError(
            "--events-days must outlive AUTOJOIN_MAX_EVENT_AGE, or a replay inside the "
            "window would be taken for a new event"
        )
    store = open_existing_store(settings.require_database_url())
    try:
        counts = store.prune(
            now,
            done_jobs_before=now - jobs_days * DAY,
            events_before=now - events_days * DAY,
            audit_before=now - audit_days * DAY,
        )
    finally:
        store.close()
    print("pruned: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0
