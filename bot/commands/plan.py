"""`plan`, `sync` and `explain`: rules applied to everyone, with the diff first.

Each command is an async `run_*` on a `Runtime` (so tests drive it in-process against the fake
portal) behind a thin synchronous entry point for the CLI.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import anyio

from bot.errors import NothingDone
from bot.logsafe import configure_logging
from bot.reconcile.chats import name_plan_chats
from bot.reconcile.engine import full_plan
from bot.reconcile.explain import explain_user, render_explanation
from bot.reconcile.ledger import load_ledger
from bot.reconcile.progress import Progress
from bot.reconcile.reader import Reader
from bot.reconcile.render import render_plan
from bot.reconcile.session import Runtime
from bot.reconcile.sync import SyncOptions, run_sync
from bot.rules import load_rules
from bot.settings import Settings
from bot.wiring import open_session

NO_CHANGES, CHANGES = 0, 2


def register(sub: Any) -> None:
    plan = sub.add_parser(
        "plan", help="show who sync would add and remove, per chat; changes nothing"
    )
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.add_argument(
        "--rules", type=Path, help="plan this file instead of AUTOJOIN_RULES (review an edit first)"
    )
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there is nothing to do, 2 when changes are pending, 1 on error",
    )
    _limit(plan)
    plan.set_defaults(func=_entry, run=run_plan)
    sync = sub.add_parser("sync", help="apply the plan through the job queue, then report")
    sync.add_argument("--yes", action="store_true", help="apply without asking")
    sync.add_argument(
        "--allow-removals",
        type=int,
        metavar="N",
        help="allow up to N removals (over AUTOJOIN_MAX_REMOVALS)",
    )
    _limit(sync)
    sync.set_defaults(func=_entry, run=run_sync_command)
    explain = sub.add_parser("explain", help="why a person is, or is not, in each chat")
    explain.add_argument("--user", type=int, required=True, metavar="ID")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(func=_entry, run=run_explain)


def _limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, default=20, help="people listed per chat in text output (0: all)"
    )


def _entry(args: argparse.Namespace) -> int:
    settings = Settings.load()
    # `plan --rules FILE` reads that file instead; the loader names it if it is missing
    settings.require(webhook=True, database=True, rules=getattr(args, "rules", None) is None)
    level = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"
    configure_logging(level, settings.log_format)  # progress and results are the output
    code: int = anyio.run(args.run, args, Runtime(settings))
    return code


async def run_plan(args: argparse.Namespace, runtime: Runtime) -> int:
    ruleset = load_rules(args.rules or runtime.settings.rules_path)
    async with open_session(runtime, ruleset, read_only=True) as session:
        names = [rule.name for rule in ruleset.rules]
        ledger = await load_ledger(session.store, names, runtime.clock(), write=False)
        progress = Progress(runtime.err, "plan: reading the portal", unit="reads")
        reader = Reader(session.client, progress, progress.note)
        plan, _, _ = await full_plan(reader, ruleset, ledger, webhook_user=session.webhook_user)
        await name_plan_chats(Reader(session.client, notice=progress.note), plan)
        progress.finish()
    for problem in plan.problems:
        runtime.warn(str(problem))
    if args.format == "json":
        body = {"rules": {"path": ruleset.path, "sha256": ruleset.digest}, **plan.to_json()}
        runtime.print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        for line in render_plan(plan, ruleset, limit=args.limit):
            runtime.print(line)
    if plan.unreadable or any(p.severity == "error" for p in plan.problems):
        return 1  # a disabled rule or an unreadable chat: the plan is not the whole story
    return CHANGES if args.detailed_exitcode and plan.changed else NO_CHANGES


async def run_sync_command(args: argparse.Namespace, runtime: Runtime) -> int:
    ruleset = load_rules(runtime.settings.rules_path)
    options = SyncOptions(args.yes, args.allow_removals, args.limit)

    def confirm(question: str) -> bool:
        runtime.err.write(question)
        runtime.err.flush()
        return runtime.stdin.readline().strip().lower() in {"y", "yes"}

    async with open_session(runtime, ruleset) as session:
        return await run_sync(session, ruleset, options, confirm)


async def run_explain(args: argparse.Namespace, runtime: Runtime) -> int:
    ruleset = load_rules(runtime.settings.rules_path)
    async with open_session(runtime, ruleset, read_only=True) as session:
        progress = Progress(runtime.err, "explain: reading the portal")
        explanation = await explain_user(
            session.client, session.store, ruleset, args.user, notice=progress.note
        )
    known = explanation.chats or explanation.jobs or explanation.history
    if explanation.active is None and not known:  # a removed user with a past is still shown
        raise NothingDone(
            f"user {args.user} does not exist on the portal (user.get found no such ID); "
            "`autojoin history` and the portal's staff list show the IDs"
        )
    if session.no_database:
        runtime.warn(f"note: {session.no_database}")
    if args.format == "json":
        runtime.print(json.dumps(explanation.to_json(), ensure_ascii=False, indent=2))
    else:
        for line in render_explanation(explanation):
            runtime.print(line)
    return 0
